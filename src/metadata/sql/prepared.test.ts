import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from '../kysely.js';
import type { Schema } from '../schema.js';
import { SqlContext } from './context.js';
import { migrate, openSqlite } from './open.js';
import { preparedAll, preparedFirst, preparedRows, preparedStatement } from './prepared.js';

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

/**
 * Starts a transaction on `db` that inserts the repository `name` and then waits: answers once the
 * insert is done, with `end`, which lets the transaction commit or roll back and waits for that.
 */
async function heldTransaction(db: Kysely<Schema>, name: string): Promise<{ end(outcome: 'commit' | 'rollback'): Promise<void> }> {
  let finish!: (outcome: 'commit' | 'rollback') => void;
  const held = new Promise<'commit' | 'rollback'>((resolve) => (finish = resolve));
  let inserted!: () => void;
  const written = new Promise<void>((resolve) => (inserted = resolve));
  const transaction = db
    .transaction()
    .execute(async (trx) => {
      await trx.insertInto('repositories').values({ name, created_at: 2 }).execute();
      inserted();
      if ((await held) === 'rollback') throw new Error('rolled back');
    })
    .catch((err: unknown) => {
      if (!(err instanceof Error && err.message === 'rolled back')) throw err;
    });
  await written;
  return {
    end: async (outcome) => {
      finish(outcome);
      await transaction;
    },
  };
}

/** True if `pending` settles within ten turns of the event loop: every chance for one that wrongly ran at once. */
async function settlesAtOnce(pending: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void pending.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
  return settled;
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
          const transaction = await heldTransaction(db, name);
          const read = byName(db, name);
          assert.equal(await settlesAtOnce(read), false, 'the read waits for the transaction');
          await transaction.end(outcome);
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

  describe('prepared writes (SqlContext.write)', () => {
    const insertRepository = preparedStatement((d, name: string, createdAt: number) => d.insertInto('repositories').values({ name, created_at: createdAt }));
    const renameRepository = preparedStatement((d, from: string, to: string) =>
      d.updateTable('repositories').set({ name: to }).where('name', '=', from).returning(['name', 'created_at']),
    );
    const linkBlob = preparedStatement((d, repositoryId: number, digest: string, now: number) =>
      d.insertInto('repository_blobs').values({ repository_id: repositoryId, digest, created_at: now }),
    );
    /** Runs `body` with a fresh database from `open` and a context over it, and closes the database. */
    async function withContext(open: () => Promise<Kysely<Schema>>, body: (db: Kysely<Schema>, ctx: SqlContext) => Promise<void>): Promise<void> {
      const db = await open();
      try {
        await body(db, new SqlContext(db));
      } finally {
        await db.destroy();
      }
    }
    type Entry = { at: number; event: string; principal_name: string | null; detail: string | null };
    const insertEntries = preparedRows<Entry>(['at', 'event', 'principal_name', 'detail'], (d, rows) => d.insertInto('audit_log').values(rows));
    const entries = async (db: Kysely<Schema>): Promise<Entry[]> =>
      db.selectFrom('audit_log').select(['at', 'event', 'principal_name', 'detail']).orderBy('id').execute();
    const names = async (db: Kysely<Schema>): Promise<string[]> =>
      (await db.selectFrom('repositories').select('name').orderBy('name').execute()).map((row) => row.name);

    // Each test runs on both paths: the direct writer (openSqlite) and Kysely's executor (a database without one).
    const paths: [string, () => Promise<Kysely<Schema>>][] = [
      ['directly', () => openSqlite(':memory:')],
      ['through Kysely', database],
    ];
    for (const [path, open] of paths) {
      describe(path, () => {
        it("binds each call's arguments and answers each statement's rows", async () => {
          await withContext(open, async (db, ctx) => {
            const rows = await ctx.write([insertRepository(db, 'one/a', 5), renameRepository(db, 'one/a', 'one/b'), insertRepository(db, 'one/c', 6)]);
            assert.deepEqual(rows, [[], [{ name: 'one/b', created_at: 5 }], []]);
            assert.deepEqual(await ctx.write([renameRepository(db, 'no/such', 'x/y')]), [[]]);
            assert.ok((await names(db)).includes('one/b') && (await names(db)).includes('one/c'));
          });
        });

        it('writes a list of rows as one statement, in order, nulls included, whatever the number of rows', async () => {
          await withContext(open, async (db, ctx) => {
            const batch = (from: number, count: number): Entry[] =>
              Array.from({ length: count }, (_, i) => ({
                at: from + i,
                event: `e${from + i}`,
                principal_name: i % 2 ? null : `p${i}`,
                detail: i % 3 ? null : '{}',
              }));
            // Sizes 3, 1, 3 again (its compiled statement reused with new values), then 5.
            const written = [batch(1, 3), batch(10, 1), batch(20, 3), batch(30, 5)];
            for (const rows of written) assert.deepEqual(await ctx.write([insertEntries(db, rows)]), [[]]);
            assert.deepEqual(await entries(db), written.flat());
          });
        });

        it('runs several statements as one transaction: one failing undoes the others', async () => {
          await withContext(open, async (db, ctx) => {
            const before = await names(db);
            // The third insert repeats the first name: a unique violation after two good inserts.
            await assert.rejects(ctx.write([insertRepository(db, 'two/a', 1), insertRepository(db, 'two/b', 1), insertRepository(db, 'two/a', 1)]), /UNIQUE/);
            assert.deepEqual(await names(db), before, 'nothing of the failed write stays');
            // The connection is usable again, outside any transaction.
            await ctx.write([insertRepository(db, 'two/c', 1)]);
            assert.deepEqual(await names(db), [...before, 'two/c'].sort());
          });
        });

        it('creates the repository in the same transaction as the write, and uses the id it knows afterwards', async () => {
          await withContext(open, async (db, ctx) => {
            const digest = `sha256:${'a'.repeat(64)}`;
            await db.insertInto('blobs').values({ digest, size: 1, pushed_at: 1 }).execute();
            // A write that fails rolls back the repository it created.
            await assert.rejects(
              ctx.writeInRepository('three/new', 2, (id) => [linkBlob(db, id, digest, 2), linkBlob(db, id, digest, 2)]),
              /UNIQUE|PRIMARY/,
            );
            assert.equal(await ctx.findRepositoryId('three/new'), undefined);
            await ctx.writeInRepository('three/new', 2, (id) => [linkBlob(db, id, digest, 2)]);
            const id = await ctx.findRepositoryId('three/new');
            assert.ok(id !== undefined);
            const other = `sha256:${'b'.repeat(64)}`;
            await db.insertInto('blobs').values({ digest: other, size: 1, pushed_at: 1 }).execute();
            await ctx.writeInRepository('three/new', 3, (known) => {
              assert.equal(known, id);
              return [linkBlob(db, known, other, 3)];
            });
            const linked = await db.selectFrom('repository_blobs').select('digest').where('repository_id', '=', id).orderBy('digest').execute();
            assert.deepEqual(linked, [{ digest }, { digest: other }]);
          });
        });
      });
    }

    it('compiles a list of rows once per database and number of rows, and refuses a build that does not bind every value as given', async () => {
      const db = await database();
      try {
        const one = (at: number): Entry => ({ at, event: 'e', principal_name: null, detail: null });
        let builds = 0;
        const insert = preparedRows<Entry>(['at', 'event', 'principal_name', 'detail'], (d, rows) => {
          builds++;
          return d.insertInto('audit_log').values(rows);
        });
        const two = insert(db, [one(1), one(2)]);
        const again = insert(db, [one(3), one(4)]);
        assert.equal(again.sql, two.sql);
        assert.deepEqual(again.parameters, [3, 'e', null, null, 4, 'e', null, null]);
        const three = insert(db, [one(1), one(2), one(3)]);
        assert.equal(three.parameters.length, 12);
        assert.notEqual(three.sql, two.sql);
        assert.equal(builds, 2, 'one compilation per number of rows');
        const other = await database();
        insert(other, [one(1), one(2)]);
        await other.destroy();
        assert.equal(builds, 3, 'and per database');
        const dropped = preparedRows<Entry>(['at', 'event', 'principal_name', 'detail'], (d, rows) =>
          d.insertInto('audit_log').values(rows.map(({ at, event }) => ({ at, event }))),
        );
        assert.throws(() => dropped(db, [one(1)]), /must bind each of its arguments, unchanged/);
        const reordered = preparedRows<Entry>(['at', 'event', 'principal_name', 'detail'], (d, rows) => d.insertInto('audit_log').values([...rows].reverse()));
        assert.throws(() => reordered(db, [one(1), one(2)]), /must bind each of its arguments, unchanged/);
        const unnamed = preparedRows<Entry>(['at', 'event', 'principal_name'], (d, rows) => d.insertInto('audit_log').values(rows));
        assert.throws(() => unnamed(db, [one(1)]), /must name every column its rows have/);
      } finally {
        await db.destroy();
      }
    });

    it('never writes inside a transaction in progress: it waits for its end, and a rollback there keeps it', async () => {
      await withContext(
        () => openSqlite(':memory:'),
        async (db, ctx) => {
          const transaction = await heldTransaction(db, 'four/rolled-back');
          const write = ctx.write([insertRepository(db, 'four/kept', 1)]);
          assert.equal(await settlesAtOnce(write), false, 'the write waits for the transaction');
          await transaction.end('rollback');
          await write;
          assert.deepEqual(await names(db), ['four/kept']);
        },
      );
    });
  });
});
