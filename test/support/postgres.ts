/**
 * PostgreSQL for tests. The cluster is `BERTH_TEST_POSTGRES_URL` (an admin URL, e.g.
 * postgres://postgres@127.0.0.1:5432/postgres) if set; otherwise a private throwaway cluster
 * (scripts/postgres/start.sh) started on first use by this process and stopped when it exits.
 *
 * Each key (a test's data directory) gets its own database, named from a hash of the key, so the
 * same key always means the same database, also from another process (a `berth` child started on
 * the same data directory by a process test), and different tests never see each other's rows.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import type { ConfigInput } from '../../src/config/schema.js';

const scripts = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'postgres');

let cluster: Promise<string> | undefined;
const databases = new Map<string, Promise<string>>();

/** `{ driver: 'postgres', url }` for the database dedicated to `key`, created on first use. */
export function postgresMetadataFor(key: string): Promise<NonNullable<ConfigInput['metadata']>> {
  let database = databases.get(key);
  if (!database) {
    database = ensureDatabase(key);
    databases.set(key, database);
    database.catch(() => databases.delete(key));
  }
  return database.then((url) => ({ driver: 'postgres' as const, url }));
}

/** The admin URL of the test cluster (starting the private one if needed). */
export function postgresAdminUrl(): Promise<string> {
  const given = process.env['BERTH_TEST_POSTGRES_URL'];
  if (given) return Promise.resolve(given);
  cluster ??= startCluster();
  return cluster;
}

/** The database name for `key`: stable across processes, a valid unquoted identifier. */
export function databaseNameFor(key: string): string {
  return `berth_test_${createHash('sha256').update(key).digest('hex').slice(0, 24)}`;
}

async function ensureDatabase(key: string): Promise<string> {
  const admin = await postgresAdminUrl();
  const name = databaseNameFor(key);
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    const existing = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (existing.rowCount === 0) {
      try {
        await client.query(`create database ${name}`);
      } catch (err) {
        // Another process created it between our check and our create: that is the database we want.
        // 42P04 duplicate_database; 23505 when both inserts into pg_database race.
        const code = (err as { code?: string }).code;
        if (code !== '42P04' && code !== '23505') throw err;
      }
    }
  } finally {
    await client.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

async function startCluster(): Promise<string> {
  const { stdout } = await promisify(execFile)('bash', [join(scripts, 'start.sh')], { env: { ...process.env, PORT: '' } });
  const field = (name: string): string => {
    const value = stdout.match(new RegExp(`^${name}=(.*)$`, 'm'))?.[1];
    if (!value) throw new Error(`scripts/postgres/start.sh printed no ${name}= line:\n${stdout}`);
    return value;
  };
  const dir = field('DIR');
  const url = field('URL');
  // 'exit' handlers must be synchronous. A test process ends normally, or by SIGINT/SIGTERM (the
  // runner's timeout, ^C): then stop the cluster too, or its server would outlive the tests.
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      execFileSync('bash', [join(scripts, 'stop.sh'), dir], { stdio: 'ignore' });
    } catch {
      // Best effort: nothing useful to report from a process on its way out.
    }
  };
  process.once('exit', stop);
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(signal, () => {
      stop();
      process.exit(code);
    });
  }
  return url;
}

/** A private PostgreSQL cluster a test can stop and start again (same port, same data). */
export interface PrivatePostgres {
  /** An admin URL (user postgres) of the cluster. */
  adminUrl: string;
  /** A database of its own on this cluster (created here), as a `metadata` section. */
  metadataFor(name: string): Promise<NonNullable<ConfigInput['metadata']>>;
  /** Stops the server (fast shutdown): connections are refused until `start`. */
  stopServer(): Promise<void>;
  startServer(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts a cluster of this test's own (scripts/postgres/start.sh), whatever BERTH_TEST_POSTGRES_URL says. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const { stdout } = await promisify(execFile)('bash', [join(scripts, 'start.sh')], { env: { ...process.env, PORT: '' } });
  const field = (name: string): string => {
    const value = stdout.match(new RegExp(`^${name}=(.*)$`, 'm'))?.[1];
    if (!value) throw new Error(`scripts/postgres/start.sh printed no ${name}= line:\n${stdout}`);
    return value;
  };
  const [dir, port, adminUrl] = [field('DIR'), field('PORT'), field('URL')];
  let stopped = false;
  const dispose = () => {
    if (stopped) return;
    stopped = true;
    try {
      execFileSync('bash', [join(scripts, 'stop.sh'), dir], { stdio: 'ignore' });
    } catch {
      // Best effort, as for the shared cluster.
    }
  };
  process.once('exit', dispose);
  const bindir = execFileSync('bash', ['-c', 'ls -d /usr/lib/postgresql/*/bin | sort -V -r | head -1']).toString().trim();
  const asOwner = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
  const pgCtl = async (...args: string[]) => {
    const [file, ...rest] = [...asOwner, join(bindir, 'pg_ctl'), '-D', join(dir, 'data'), ...args];
    await promisify(execFile)(file as string, rest);
  };
  return {
    adminUrl,
    async metadataFor(name) {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`create database ${name}`);
      } finally {
        await client.end();
      }
      const url = new URL(adminUrl);
      url.pathname = `/${name}`;
      return { driver: 'postgres' as const, url: url.toString() };
    },
    stopServer: () => pgCtl('-m', 'fast', '-w', '-t', '30', 'stop'),
    startServer: () =>
      pgCtl(
        '-l',
        join(dir, 'server.log'),
        '-w',
        '-t',
        '30',
        '-o',
        `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300`,
        'start',
      ),
    async stop() {
      process.off('exit', dispose);
      dispose();
    },
  };
}
