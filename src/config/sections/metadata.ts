import { z } from 'zod';

export const metadataSection = () =>
  z
    .object({
      driver: z
        .enum(['sqlite', 'postgres'])
        .default('sqlite')
        .describe('Metadata database: `sqlite` (one process) or `postgres` (shared by several replicas).'),
      path: z.string().optional().describe('SQLite database file; default `<dataDir>/metadata.db`.'),
      url: z
        .string()
        .optional()
        .describe(
          'PostgreSQL connection URL (`postgres://user@host:5432/db`). Env BERTH_METADATA_URL. Put the password in `passwordFile` or env PGPASSWORD, not in the URL.',
        ),
      passwordFile: z.string().optional().describe('File holding the PostgreSQL password.'),
      poolSize: z.number().int().min(1).max(200).default(10).describe('PostgreSQL connections per process.'),
    })
    .default({})
    .refine((m) => m.driver !== 'postgres' || m.url !== undefined, {
      message: 'metadata.driver postgres needs metadata.url (or env BERTH_METADATA_URL)',
      path: ['url'],
    })
    .describe('Where repositories, tags, manifests and upload sessions are recorded.');
