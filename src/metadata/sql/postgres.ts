/**
 * Opens the PostgreSQL metadata database (`metadata.driver: postgres`): the same indexes and
 * migrations as SQLite over a `pg` pool, so several stateless replicas can share one database.
 *
 * Contracts:
 * - int8 (bigint, count(*)) and numeric come back as JS numbers, as SQLite gives them. This is set
 *   on this pool only (not pg's process-wide parsers). Every value Berth stores in a bigint is a
 *   millisecond timestamp, a size or an id, all far below 2^53.
 * - Startup against a database that cannot be reached or refuses us fails with one line naming
 *   host, port, database and user and what to check, never the password or a stack.
 * - Concurrent replicas may migrate at once: Kysely's migrator takes a row lock in PostgreSQL.
 */
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { Kysely, PostgresDialect } from '../kysely.js';
import type { Config } from '../../config/schema.js';
import type { Schema } from '../schema.js';
import type { Metadata } from '../store.js';
import { migrate, sqlMetadata } from './open.js';

const int8Oid = 20;
const numericOid = 1700;

/** How long a connection attempt may take before startup gives up (a firewall that drops packets). */
const connectTimeoutMs = 10_000;

/** Parsers for this pool: int8 and numeric as numbers, everything else pg's defaults. */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === int8Oid || oid === numericOid) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format ?? 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};

export async function openPostgresMetadata(settings: Config['metadata']): Promise<Metadata> {
  if (!settings.url) throw new Error('metadata.driver postgres needs metadata.url (or env BERTH_METADATA_URL)');
  const target = describeTarget(settings.url);
  const password = settings.passwordFile ? await readPasswordFile(settings.passwordFile) : undefined;
  const pool = new pg.Pool({
    connectionString: password === undefined ? settings.url : withPassword(settings.url, password),
    max: settings.poolSize,
    connectionTimeoutMillis: connectTimeoutMs,
    types,
  });
  // An idle connection the server drops (restart, failover) emits 'error' on the pool; unhandled,
  // that would end the process. The pool discards the client and the next query opens a new one.
  pool.on('error', () => {});
  // The same for a connection in use when the server goes away: its query fails (and Kysely
  // reports that), but the client also emits 'error', which without a listener ends the process.
  pool.on('connect', (client) => client.on('error', () => {}));
  try {
    await pool.query('select 1');
  } catch (err) {
    await pool.end().catch(() => {});
    // No `cause` on purpose (test/metadata/postgres.test.ts pins it): the one-line message says what
    // failed without the password, and an attached driver error, with its connection details, would
    // be printed by whatever logs the error with its causes.
    // eslint-disable-next-line preserve-caught-error
    throw new Error(connectFailure(target, err));
  }
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrate(db, 'postgres');
  } catch (err) {
    await db.destroy().catch(() => {});
    throw err;
  }
  return sqlMetadata(db, 'postgres', () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: settings.poolSize }));
}

async function readPasswordFile(file: string): Promise<string> {
  try {
    // Trailing newlines only: a password may legitimately start or end with a space.
    return (await readFile(file, 'utf8')).replace(/[\r\n]+$/, '');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new Error(`metadata.passwordFile ${file}: cannot read it (${code})`, { cause: err });
  }
}

/**
 * The URL with the file's password in it. pg lets every field of a connection string override the
 * separate options (an absent password included), so the string is the only reliable carrier.
 * It stays in memory: nothing logs or reports it.
 */
function withPassword(url: string, password: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('metadata.passwordFile needs metadata.url in URL form (postgres://user@host:5432/database)');
  }
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}

interface Target {
  host: string;
  port: string;
  database: string;
  user: string;
}

/** Where the URL points, for messages (the password is never part of it); rejects a non-URL. */
function describeTarget(url: string): Target {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:')) {
    // Quote nothing of it: a key=value connection string may hold a password.
    throw new Error('metadata.url must be a postgres:// URL (postgres://user@host:5432/database)');
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  const user = decodeURIComponent(parsed.username) || process.env['PGUSER'] || 'the current OS user';
  return {
    host: parsed.hostname || parsed.searchParams.get('host') || 'localhost',
    port: parsed.port || '5432',
    database: database || user,
    user,
  };
}

function connectFailure(target: Target, err: unknown): string {
  const where = `PostgreSQL metadata database "${target.database}" on ${target.host}${target.port ? `:${target.port}` : ''} as user "${target.user}"`;
  const e = err as { code?: string; message?: string };
  const reason = oneLine(e.message ?? String(err));
  const hint = hintFor(e.code);
  return `cannot open the ${where}: ${reason}; ${hint}`;
}

function hintFor(code: string | undefined): string {
  switch (code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
      return 'check the host and port in metadata.url (env BERTH_METADATA_URL) and that the server is running and reachable';
    case '28P01':
    case '28000':
      return 'check the user in metadata.url and the password (metadata.passwordFile or env PGPASSWORD) and pg_hba.conf';
    case '3D000':
      return 'create the database first (CREATE DATABASE), or fix its name in metadata.url';
    default:
      return 'check metadata.url (env BERTH_METADATA_URL), the credentials and that the server accepts connections';
  }
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim() || 'connection failed';
}
