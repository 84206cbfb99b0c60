/**
 * The configuration schema: one place, every field described. `docs/configuration.md` is generated
 * from these descriptions (`npm run docs:config`). Sizes are bytes, durations milliseconds.
 */
import { z } from 'zod';

const duration = (description: string, fallback: number) => z.number().int().positive().default(fallback).describe(description);

export const configSchema = z
  .object({
    addr: z
      .string()
      .default('127.0.0.1:5000')
      .describe('Address to listen on, HOST:PORT (port 0 picks a free port). Env BERTH_ADDR, flag --addr.'),
    dataDir: z
      .string()
      .default('./data')
      .describe('Directory for blobs and the SQLite metadata database. Env BERTH_DATA, flag --data.'),
    logLevel: z
      .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
      .default('info')
      .describe('Log level; `debug` logs every request. Env BERTH_LOG_LEVEL.'),
    tls: z
      .object({
        cert: z.string().describe('PEM certificate chain file.'),
        key: z.string().describe('PEM private key file.'),
      })
      .optional()
      .describe('Serve HTTPS with this certificate. Without it Berth serves plain HTTP (fine on loopback or behind a TLS proxy).'),
    storage: z
      .object({
        driver: z.literal('filesystem').default('filesystem').describe('Blob storage driver.'),
        root: z.string().optional().describe('Root directory for the filesystem driver; default `<dataDir>/storage`.'),
      })
      .default({})
      .describe('Where blob bytes live.'),
    metadata: z
      .object({
        driver: z.literal('sqlite').default('sqlite').describe('Metadata database.'),
        path: z.string().optional().describe('SQLite database file; default `<dataDir>/metadata.db`.'),
      })
      .default({})
      .describe('Where repositories, tags, manifests and upload sessions are recorded.'),
    limits: z
      .object({
        maxManifestBytes: z
          .number()
          .int()
          .positive()
          .default(4 * 1024 * 1024)
          .describe('Largest manifest accepted; larger ones get 413 SIZE_INVALID.'),
        uploadTtlMs: duration('An upload session idle this long is abandoned and removed.', 24 * 3600 * 1000),
        uploadSweepIntervalMs: duration('How often the server removes abandoned upload sessions.', 10 * 60 * 1000),
      })
      .default({})
      .describe('Bounds on what clients may send and how long unfinished work is kept.'),
    gc: z
      .object({
        graceMs: duration('`berth gc` keeps unreferenced blobs pushed more recently than this.', 3600 * 1000),
      })
      .default({})
      .describe('Garbage collection (`berth gc`).'),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
