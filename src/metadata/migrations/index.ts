/**
 * The metadata schema's migrations, in order: one file per migration, each written once for both
 * dialects (`columns.ts`). Kysely's migrator runs the ones a database has not recorded yet, in name
 * order, and records each name in `kysely_migration`.
 *
 * Adding a migration (features in parallel branches each add their own):
 * 1. Create `NNNN-short-name.ts` here, NNNN one above the highest number, exporting a function that
 *    takes `MigrationColumns` and returns `{ up }`. Use `text`, `autoId` and `bytes` from it so both
 *    dialects get the same schema, and change `schema.ts` to match.
 * 2. Append one line to `migrations` below. The list must stay in name order (a test checks it).
 * 3. Two branches that both took the next number conflict here on purpose: keep both lines and give
 *    the later-merged file the next number (rename file and entry) before either is released.
 * Never edit, rename or reorder a released migration: its name is recorded in every database it ran
 * on, and Kysely refuses to open a database whose recorded names are not a prefix of this list. The
 * PostgreSQL forms were first run (and their text columns given the "C" collation) before any
 * release used PostgreSQL, so no PostgreSQL database exists with the earlier forms.
 */
import type { Migration, MigrationProvider } from 'kysely';
import { migrationColumns, type Dialect, type MigrationColumns } from './columns.js';
import { registryCore } from './0001-registry-core.js';
import { auth } from './0002-auth.js';
import { federationAndProvenance } from './0003-federation-and-provenance.js';
import { webhooks } from './0004-webhooks.js';
import { importJobs } from './0005-import-jobs.js';
import { sync } from './0006-sync.js';
import { retention } from './0007-retention.js';
import { tokenBounds } from './0011-token-bounds.js';
import { operability } from './0020-operability.js';
import { consoleSessions } from './0030-console.js';
import { lifecycle } from './0040-lifecycle.js';
import { cache } from './0050-cache.js';
import { attestations } from './0060-attestations.js';
import { flatUploads } from './0070-flat-uploads.js';

export type { Dialect } from './columns.js';

/** Every migration: its recorded name and how to build it for a dialect. */
export const migrations: ReadonlyArray<readonly [name: string, build: (columns: MigrationColumns) => Migration]> = [
  ['0001-registry-core', registryCore],
  ['0002-auth', auth],
  ['0003-federation-and-provenance', federationAndProvenance],
  ['0004-webhooks', webhooks],
  ['0005-import-jobs', importJobs],
  ['0006-sync', sync],
  ['0007-retention', retention],
  ['0011-token-bounds', tokenBounds],
  ['0020-operability', operability],
  ['0030-console', consoleSessions],
  ['0040-lifecycle', lifecycle],
  ['0050-cache', cache],
  ['0060-attestations', attestations],
  ['0070-flat-uploads', flatUploads],
];

export function migrationProvider(dialect: Dialect): MigrationProvider {
  const columns = migrationColumns(dialect);
  return { getMigrations: async () => Object.fromEntries(migrations.map(([name, build]) => [name, build(columns)])) };
}
