import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from '../kysely.js';
import type { Schema } from '../schema.js';
import { migrate, openSqlite } from './open.js';
import { preparedAll, preparedFirst } from './prepared.js';

async function database(): Promise<Kysely<Schema>> {
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) });
  await migrate(db, 'sqlite');
  await db
    .insertInto('repositories')
    .values([
      { name: 'team/app', created_at: 1 },
      { name: 'team/db', created_at: 2 },
    ])
    .execute();
  return db;
}

describe('prepared queries', () => {
  it('answers each call from its own arguments, keeping constants, in the order the SQL binds them', async () => {
    const db = await database();
    try {
      // The constant 0 is bound before the two arguments, and the arguments bind in the other order.
      const find = preparedFirst((d, createdAt: number, name: string) =>
        d.selectFrom('repositories').select(['id', 'name']).where('created_at', '>', 0).where('name', '=', name).where('created_at', '=', createdAt),
      );
      assert.equal((await find(db, 1, 'team/app'))?.name, 'team/app');
      assert.equal((await find(db, 2, 'team/db'))?.name, 'team/db');
      assert.equal(await find(db, 2, 'team/app'), undefined, 'both arguments bind, not only the first compiled');
      assert.equal(await find(db, 1, 'no/such'), undefined);
    } finally {
      await db.destroy();
    }
  });

  it("answers every row in the query's order, and an empty list for none", async () => {
    const db = await database();
    try {
      const since = preparedAll((d, createdAt: number) =>
        d.selectFrom('repositories').select('name').where('created_at', '>=', createdAt).orderBy('name', 'desc'),
      );
      assert.deepEqual(await since(db, 1), [{ name: 'team/db' }, { name: 'team/app' }]);
      assert.deepEqual(await since(db, 2), [{ name: 'team/db' }]);
      assert.deepEqual(await since(db, 3), []);
    } finally {
      await db.destroy();
    }
  });

  it('compiles once per database, so two databases do not share a compiled statement', async () => {
    const [a, b] = [await database(), await database()];
    try {
      await b.deleteFrom('repositories').where('name', '=', 'team/db').execute();
      const byName = preparedFirst((d, name: string) => d.selectFrom('repositories').select('name').where('name', '=', name));
      assert.equal((await byName(a, 'team/db'))?.name, 'team/db');
      assert.equal(await byName(b, 'team/db'), undefined);
    } finally {
      await Promise.all([a.destroy(), b.destroy()]);
    }
  });

  it('refuses a query that transforms an argument or leaves one unbound, on its first call', async () => {
    const db = await database();
    try {
      const transformed = preparedFirst((d, name: string) => d.selectFrom('repositories').select('name').where('name', '=', name.toUpperCase()));
      await assert.rejects(transformed(db, 'team/app'), /must bind each of its arguments, unchanged/);
      const extended = preparedFirst((d, name: string) => d.selectFrom('repositories').select('name').where('name', 'like', `${name}%`));
      await assert.rejects(extended(db, 'team/'), /must bind each of its arguments, unchanged/);
      const unbound = preparedFirst((d, name: string, _unused: string) => d.selectFrom('repositories').select('name').where('name', '=', name));
      await assert.rejects(unbound(db, 'team/app', 'x'), /must bind each of its arguments, unchanged/);
    } finally {
      await db.destroy();
    }
  });

  describe('on SQLite, read directly while the connection is free', () => {
    async function opened(): Promise<Kysely<Schema>> {
      const db = await openSqlite(':memory:');
      await db.insertInto('repositories').values({ name: 'team/app', created_at: 1 }).execute();
      return db;
    }
    const byName = preparedFirst((d, name: string) => d.selectFrom('repositories').select(['name', 'created_at']).where('name', '=', name));

    it('answers as Kysely would, rows and misses alike', async () => {
      const db = await opened();
      try {
        assert.deepEqual(await byName(db, 'team/app'), { name: 'team/app', created_at: 1 });
        assert.deepEqual(
          await byName(db, 'team/app'),
          await db.selectFrom('repositories').select(['name', 'created_at']).where('name', '=', 'team/app').executeTakeFirst(),
        );
        assert.equal(await byName(db, 'no/such'), undefined);
      } finally {
        await db.destroy();
      }
    });

    it('answers every row as Kysely would', async () => {
      const db = await opened();
      try {
        await db.insertInto('repositories').values({ name: 'team/db', created_at: 2 }).execute();
        const all = preparedAll((d, createdAt: number) =>
          d.selectFrom('repositories').select(['name', 'created_at']).where('created_at', '>=', createdAt).orderBy('name'),
        );
        assert.deepEqual(await all(db, 1), [
          { name: 'team/app', created_at: 1 },
          { name: 'team/db', created_at: 2 },
        ]);
        assert.deepEqual(
          await all(db, 1),
          await db.selectFrom('repositories').select(['name', 'created_at']).where('created_at', '>=', 1).orderBy('name').execute(),
        );
        assert.deepEqual(await all(db, 3), []);
      } finally {
        await db.destroy();
      }
    });

    it('never reads inside a transaction in progress: it waits for its end, and sees only what was committed', async () => {
      const db = await opened();
      try {
        for (const outcome of ['commit', 'rollback'] as const) {
          const name = `team/${outcome}`;
          let finish!: () => void;
          const held = new Promise<void>((resolve) => (finish = resolve));
          let inserted!: () => void;
          const written = new Promise<void>((resolve) => (inserted = resolve));
          const transaction = db
            .transaction()
            .execute(async (trx) => {
              await trx.insertInto('repositories').values({ name, created_at: 2 }).execute();
              inserted();
              await held;
              if (outcome === 'rollback') throw new Error('rolled back');
            })
            .catch((err: unknown) => {
              if (!(err instanceof Error && err.message === 'rolled back')) throw err;
            });
          await written;
          let answered = false;
          const read = byName(db, name).then((row) => {
            answered = true;
            return row;
          });
          // Give a read that wrongly ran at once every chance to be seen as answered.
          for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
          assert.equal(answered, false, 'the read waits for the transaction');
          finish();
          await transaction;
          assert.deepEqual(await read, outcome === 'commit' ? { name, created_at: 2 } : undefined);
        }
      } finally {
        await db.destroy();
      }
    });

    it('fails as Kysely would once the database is closed', async () => {
      const db = await opened();
      await db.destroy();
      await assert.rejects(byName(db, 'team/app'), /not open|destroyed/);
    });
  });
});
