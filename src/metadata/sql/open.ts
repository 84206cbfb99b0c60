/**
 * Opens the metadata database and brings its schema up to date.
 * SQLite (better-sqlite3, WAL) is the single-process default; PostgreSQL plugs in here for
 * scale-out with the same indexes (only the dialect and the binary column type differ).
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import type { Schema } from '../schema.js';
import type { Metadata } from '../store.js';
import { migrationProvider } from '../migrations.js';
import { SqlAnonymousPullIndex, SqlAuditIndex } from './audit-index.js';
import { SqlBlobIndex } from './blob-index.js';
import { SqlContext } from './context.js';
import { SqlFederatedCredentialIndex } from './federated-credential-index.js';
import { SqlGcIndex } from './gc-index.js';
import { SqlManifestIndex } from './manifest-index.js';
import { SqlCredentialIndex, SqlGrantIndex, SqlPrincipalIndex } from './principal-index.js';
import { SqlRepositoryIndex } from './repository-index.js';
import { SqlRefreshTokenIndex, SqlSigningKeyIndex } from './token-index.js';
import { SqlUploadIndex } from './upload-index.js';

export async function openSqliteMetadata(file: string): Promise<Metadata> {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const database = new Database(file);
  // WAL lets readers proceed during a write; NORMAL sync is durable across process crashes
  // (the registry's own durability unit), and busy_timeout covers a concurrent `berth gc`.
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('busy_timeout = 5000');
  database.pragma('foreign_keys = ON');
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database }) });
  await migrate(db, 'sqlite');
  return sqlMetadata(db);
}

async function migrate(db: Kysely<Schema>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  const migrator = new Migrator({ db, provider: migrationProvider(dialect) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    if (String(error).includes('corrupted migrations')) {
      throw new Error('the metadata database was written by a newer Berth: run that version, or restore a backup', { cause: error });
    }
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`metadata migration ${failed} failed: ${String(error)}`, { cause: error });
  }
}

function sqlMetadata(db: Kysely<Schema>): Metadata {
  const ctx = new SqlContext(db);
  return {
    repositories: new SqlRepositoryIndex(ctx),
    blobs: new SqlBlobIndex(ctx),
    uploads: new SqlUploadIndex(ctx),
    manifests: new SqlManifestIndex(ctx),
    gc: new SqlGcIndex(ctx),
    auth: {
      principals: new SqlPrincipalIndex(ctx),
      credentials: new SqlCredentialIndex(ctx),
      grants: new SqlGrantIndex(ctx),
      refreshTokens: new SqlRefreshTokenIndex(ctx),
      signingKeys: new SqlSigningKeyIndex(ctx),
      audit: new SqlAuditIndex(ctx),
      anonymousPull: new SqlAnonymousPullIndex(ctx),
      federatedCredentials: new SqlFederatedCredentialIndex(ctx),
    },
    close: () => db.destroy(),
  };
}
