/**
 * Opens the metadata database and brings its schema up to date.
 * SQLite (better-sqlite3, WAL) is the single-process default; PostgreSQL (postgres.ts) shares
 * `migrate` and `sqlMetadata` from here, so both run the same indexes.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DatabaseConnection, Driver, SqliteDatabase, SqliteDialectConfig, SqliteStatement } from 'kysely';
import { CompiledQuery, Kysely, Migrator, SqliteDialect, SqliteDriver } from '../kysely.js';
import type { Schema } from '../schema.js';
import type { Metadata } from '../store.js';
import type { PoolStats } from '../operations-store.js';
import { migrationProvider, type Dialect } from '../migrations/index.js';
import { busy, readDirectly, writeDirectly, type BoundStatement } from './prepared.js';
import { SqlAuditExportIndex } from './audit-export-index.js';
import { SqlAnonymousPullIndex, SqlAuditIndex } from './audit-index.js';
import { SqlAttestationKeyIndex } from './attestation-key-index.js';
import { SqlBlobIndex } from './blob-index.js';
import { sqlConsoleMetadata } from './console-index.js';
import { sqlCacheMetadata } from './cache-index.js';
import { SqlContext } from './context.js';
import { SqlDeliveryIndex } from './delivery-index.js';
import { EventNotifier, SqlEventIndex } from './event-index.js';
import { SqlFederatedCredentialIndex } from './federated-credential-index.js';
import { SqlGcIndex } from './gc-index.js';
import { SqlImportJobIndex } from './import-index.js';
import { sqlLifecycleMetadata } from './lifecycle-index.js';
import { SqlManifestIndex } from './manifest-index.js';
import { SqlOperationsIndex } from './operations-index.js';
import { SqlCredentialIndex, SqlGrantIndex, SqlPrincipalIndex } from './principal-index.js';
import { SqlRepositoryIndex } from './repository-index.js';
import { SqlScheduledTaskIndex } from './scheduled-task-index.js';
import { sqlSyncMetadata } from './sync-index.js';
import { SqlInstanceSettingsIndex, SqlRefreshTokenIndex, SqlSigningKeyIndex } from './token-index.js';
import { SqlUploadIndex } from './upload-index.js';
import { SqlWebhookIndex } from './webhook-index.js';

export async function openSqliteMetadata(file: string): Promise<Metadata> {
  return sqlMetadata(await openSqlite(file), 'sqlite');
}

/** The SQLite database at `file` (`:memory:`: a private one), migrated, with its direct reader (prepared.ts). */
export async function openSqlite(file: string): Promise<Kysely<Schema>> {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const database = new Database(file);
  // WAL lets readers proceed during a write; NORMAL sync is durable across process crashes
  // (the registry's own durability unit), and busy_timeout covers a concurrent `berth gc`.
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('busy_timeout = 5000');
  database.pragma('foreign_keys = ON');
  const statements = withStatementCache(database);
  const dialect = new ImmediateSqliteDialect({ database: statements });
  const db = new Kysely<Schema>({ dialect });
  await migrate(db, 'sqlite');
  // Hot-path reads (prepared.ts) run at once while Kysely does not hold the one connection; the
  // transaction check also covers a BEGIN issued on the connection by anything but Kysely.
  readDirectly(db, (sql, parameters, all) => {
    if (dialect.driver.inUse || database.inTransaction) return busy;
    const statement = statements.statement(sql);
    return all ? statement.all(parameters) : statement.get(parameters);
  });
  // Prepared writes (prepared.ts) likewise, several as one BEGIN IMMEDIATE transaction, as Kysely's
  // transactions here are (see ImmediateSqliteDialect).
  const run = (bound: BoundStatement): unknown[] => {
    const statement = statements.statement(bound.sql);
    if (statement.reader) return statement.all(bound.parameters);
    statement.run(bound.parameters);
    return [];
  };
  const [begin, commit, rollback] = ['begin immediate', 'commit', 'rollback'].map((sql) => database.prepare(sql)) as [
    Database.Statement,
    Database.Statement,
    Database.Statement,
  ];
  writeDirectly(db, (batch) => {
    if (dialect.driver.inUse || database.inTransaction) return busy;
    if (batch.length === 1) return batch.map(run);
    begin.run();
    try {
      const rows = batch.map(run);
      commit.run();
      return rows;
    } catch (err) {
      // A failed COMMIT (SQLITE_BUSY) leaves the transaction open, as any failed statement can.
      if (database.inTransaction) rollback.run();
      throw err;
    }
  });
  return db;
}

/**
 * Transactions start with BEGIN IMMEDIATE: the write lock is taken (waiting up to busy_timeout) at
 * the start, not at the first write. With a deferred BEGIN a transaction that reads and then writes
 * fails at once with SQLITE_BUSY_SNAPSHOT when another connection (`berth gc`, a CLI) wrote in
 * between, and a check-then-write (GC's "still unreferenced", a blob link) needs the lock held
 * from its check on. Within the process Kysely runs one query at a time on the one connection, so
 * this costs nothing there.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  readonly driver: ImmediateSqliteDriver;

  constructor(settings: SqliteDialectConfig) {
    super(settings);
    this.driver = new ImmediateSqliteDriver(settings);
  }

  override createDriver(): Driver {
    return this.driver;
  }
}

class ImmediateSqliteDriver extends SqliteDriver {
  /** True from the moment Kysely holds the one connection (a query, a transaction, a stream) until it lets go. */
  inUse = false;

  override async acquireConnection(): Promise<DatabaseConnection> {
    const connection = await super.acquireConnection();
    this.inUse = true;
    return connection;
  }

  override async releaseConnection(): Promise<void> {
    this.inUse = false;
    await super.releaseConnection();
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

/** Distinct SQL texts kept compiled; the registry issues a few dozen, so this never evicts in practice. */
const maxCachedStatements = 500;

/**
 * Kysely prepares every query afresh, and for small indexed queries (a manifest GET) compiling the
 * SQL is most of the cost: profiled at about 40% of the server's CPU. better-sqlite3 statements
 * are reusable and Kysely's driver runs one query at a time, so compiled statements are kept by
 * their SQL text (parameters are bound per call, never part of the text).
 */
function withStatementCache(database: Database.Database): SqliteDatabase & { statement(sql: string): Database.Statement } {
  const statements = new Map<string, Database.Statement>();
  const statement = (sql: string): Database.Statement => {
    let compiled = statements.get(sql);
    if (!compiled) {
      if (statements.size >= maxCachedStatements) statements.clear();
      compiled = database.prepare(sql);
      statements.set(sql, compiled);
    }
    return compiled;
  };
  return {
    close: () => database.close(),
    prepare: (sql: string) => statement(sql) as unknown as SqliteStatement,
    statement,
  };
}

/** Brings the schema up to date; shared by both dialects (see postgres.ts). */
export async function migrate(db: Kysely<Schema>, dialect: Dialect): Promise<void> {
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

/** The Metadata indexes over an open, migrated database of either dialect; `pool` reports a connection pool's use. */
export function sqlMetadata(db: Kysely<Schema>, dialect: Dialect, pool?: () => PoolStats): Metadata {
  const ctx = new SqlContext(db, dialect);
  const eventNotifier = new EventNotifier();
  return {
    repositories: new SqlRepositoryIndex(ctx),
    blobs: new SqlBlobIndex(ctx),
    uploads: new SqlUploadIndex(ctx),
    manifests: new SqlManifestIndex(ctx, eventNotifier),
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
      instance: new SqlInstanceSettingsIndex(ctx),
    },
    sync: sqlSyncMetadata(ctx),
    cache: sqlCacheMetadata(ctx),
    events: {
      webhooks: new SqlWebhookIndex(ctx),
      events: new SqlEventIndex(ctx, eventNotifier),
      deliveries: new SqlDeliveryIndex(ctx),
    },
    imports: new SqlImportJobIndex(ctx),
    tasks: new SqlScheduledTaskIndex(ctx),
    attestationKeys: new SqlAttestationKeyIndex(ctx),
    console: sqlConsoleMetadata(ctx),
    lifecycle: sqlLifecycleMetadata(ctx),
    operations: new SqlOperationsIndex(ctx, pool),
    auditExports: new SqlAuditExportIndex(ctx),
    close: () => db.destroy(),
  };
}
