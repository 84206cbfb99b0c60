/**
 * Which storage and metadata backends the server-level tests run on. Default: the embedded ones
 * (filesystem + SQLite in the test's data directory). `BERTH_TEST_BACKEND=postgres`, `s3` or
 * `postgres+s3` runs the same tests on a real PostgreSQL and/or a real S3-compatible service
 * (scripts/test.sh runs a selection of suites that way). Everything is keyed by the data
 * directory, so servers that share one (a restart, replicas) share a database and a bucket.
 */
import type { ConfigInput } from '../../src/config/schema.js';
import { postgresMetadataFor } from './postgres.js';
import { s3StorageFor } from './s3.js';

export type TestBackend = { postgres: boolean; s3: boolean };

export function testBackend(env: NodeJS.ProcessEnv = process.env): TestBackend {
  const value = env['BERTH_TEST_BACKEND'] ?? '';
  const parts = new Set(value.split('+').filter(Boolean));
  for (const part of parts) {
    if (part !== 'postgres' && part !== 's3')
      throw new Error(`BERTH_TEST_BACKEND: unknown backend ${JSON.stringify(part)} (expected postgres, s3 or postgres+s3)`);
  }
  return { postgres: parts.has('postgres'), s3: parts.has('s3') };
}

/** The `metadata` and `storage` sections for a server on `dataDir` (empty for the defaults). */
export async function backendConfig(dataDir: string): Promise<ConfigInput> {
  const backend = testBackend();
  const config: ConfigInput = {};
  if (backend.postgres) config.metadata = await postgresMetadataFor(dataDir);
  if (backend.s3) config.storage = await s3StorageFor(dataDir);
  return config;
}
