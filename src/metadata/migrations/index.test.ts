import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openSqliteMetadata } from '../sql/open.js';
import { migrationProvider, migrations } from './index.js';

/** Names recorded in databases already in use: they never change (append only). */
const released = ['0001-registry-core', '0002-auth', '0003-federation-and-provenance', '0004-webhooks', '0005-import-jobs', '0006-sync'];

describe('metadata migrations', () => {
  const names = migrations.map(([name]) => name);

  it('keeps every released name, in place', () => {
    assert.deepEqual(names.slice(0, released.length), released);
  });

  it('lists them in name order (the order Kysely runs them), one file each', () => {
    for (let i = 1; i < names.length; i++) assert.ok(names[i - 1]! < names[i]!, `${names[i - 1]} before ${names[i]}`);
    for (const name of names) assert.match(name, /^\d{4}-[a-z0-9]+(?:-[a-z0-9]+)*$/);
    const numbers = names.map((name) => name.slice(0, 4));
    assert.equal(new Set(numbers).size, numbers.length, 'two migrations share a number');
    // Source (.ts) or build output (.js, .d.ts): one name per migration either way.
    const files = [
      ...new Set(
        readdirSync(new URL('.', import.meta.url))
          .map((file) => /^(\d{4}-[^.]+)\.(?:d\.ts|ts|js)$/.exec(file)?.[1])
          .filter((name) => name !== undefined),
      ),
    ].sort();
    assert.deepEqual(files, names, 'each migration file is listed in index.ts, and nothing else is');
  });

  it('builds the same names for both dialects', async () => {
    for (const dialect of ['sqlite', 'postgres'] as const) assert.deepEqual(Object.keys(await migrationProvider(dialect).getMigrations()), names);
  });

  it('migrates an empty SQLite database, records every name, and a reopen runs nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-migrations-'));
    try {
      const file = join(dir, 'metadata.db');
      await (await openSqliteMetadata(file)).close();
      const recorded = () => {
        const db = new Database(file, { readonly: true });
        try {
          return db.prepare('select name, timestamp from kysely_migration order by name').all() as Array<{ name: string; timestamp: string }>;
        } finally {
          db.close();
        }
      };
      const first = recorded();
      assert.deepEqual(
        first.map((row) => row.name),
        names,
      );
      await (await openSqliteMetadata(file)).close();
      assert.deepEqual(recorded(), first);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
