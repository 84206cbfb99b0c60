import { z } from 'zod';
import { duration } from '../fields.js';

const importSourceSchema = () =>
  z
    .object({
      registry: z.string().min(1).describe('The source registry as requests name it, HOST[:PORT] (`docker.io` for Docker Hub).'),
      url: z.string().url().optional().describe('Base URL to reach it at, when not `https://HOST` (or `http://` for loopback).'),
      username: z.string().min(1).optional().describe('Basic / Docker token-auth user name; with `passwordFile`.'),
      passwordFile: z.string().optional().describe('File holding the password (read at each use, so it can be rotated).'),
      clientId: z.string().min(1).optional().describe("Federation into another Berth: the service principal's client id; with `tokenFile`."),
      tokenFile: z
        .string()
        .optional()
        .describe('Federation: file holding the OIDC token (e.g. a projected Kubernetes service-account token), read afresh for every login.'),
      requestsPerSecond: z.number().positive().optional().describe('Requests per second to this source; default `import.defaults.requestsPerSecond`.'),
      concurrency: z.number().int().positive().optional().describe('Requests in flight to this source; default `import.defaults.concurrency`.'),
    })
    .strict()
    .refine((s) => (s.username === undefined) === (s.passwordFile === undefined), 'username and passwordFile go together')
    .refine((s) => (s.clientId === undefined) === (s.tokenFile === undefined), 'clientId and tokenFile go together')
    .refine((s) => s.username === undefined || s.clientId === undefined, 'give username/passwordFile or clientId/tokenFile, not both');

const importSchema = () =>
  z
    .object({
      enabled: z
        .boolean()
        .default(true)
        .describe('Run import jobs in this process. Jobs are accepted either way; replicas sharing a database may leave running them to some of them.'),
      concurrency: z.number().int().min(1).max(64).default(2).describe('Import jobs this process runs at once.'),
      blobConcurrency: z.number().int().min(1).max(64).default(4).describe('Blobs one job transfers at once.'),
      pollIntervalMs: duration('How often the runner looks for jobs queued by other replicas (a job accepted by this process starts at once).', 2000),
      leaseMs: duration('A running job not heard from for this long (its process died) is taken over by another runner, which resumes it.', 60_000),
      maxAttempts: z
        .number()
        .int()
        .min(1)
        .max(20)
        .default(3)
        .describe('Runs per job when the source is unreachable or overloaded, before it is marked failed (`POST /api/v1/imports/{id}/retry` starts it again).'),
      retryDelayMs: duration('Wait before the first automatic retry; doubled after each further failure.', 10_000),
      credentialRetentionMs: duration(
        'Source credentials given with a request are forgotten this long after the job ended (at once when it succeeds); a retry after that needs them again.',
        24 * 3600 * 1000,
      ),
      retentionMs: duration('Finished jobs are deleted after this long.', 30 * 24 * 3600 * 1000),
      defaults: z
        .object({
          requestsPerSecond: z
            .number()
            .positive()
            .default(100)
            .describe("Requests per second to one source, on average; bursts of up to one second's worth go at once."),
          concurrency: z.number().int().positive().default(8).describe('Requests in flight to one source (blob transfers hold theirs until done).'),
          retries: z.number().int().min(1).max(10).default(4).describe('Attempts per request on connection errors, 5xx and 429 (after Retry-After).'),
          headersTimeoutMs: duration("Longest wait for a source's response headers.", 30_000),
          bodyTimeoutMs: duration('Longest pause between two chunks of a response body.', 60_000),
        })
        .default({})
        .describe('Per-source request limits and retries.'),
      sources: z
        .array(importSourceSchema())
        .default([])
        .describe(
          'Credentials and limits per source registry. A request without credentials for a listed registry uses these: anyone allowed to import can use them, so list only sources all importers may read.',
        ),
    })
    .default({})
    .describe('Server-side import (`POST /api/v1/import`, `berth import`): digest-preserving copies from other registries, as jobs (docs/import.md).');

export const importSection = importSchema;
