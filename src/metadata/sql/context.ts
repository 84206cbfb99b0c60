/**
 * Shared plumbing for the SQL-backed indexes: the Kysely handle, transactions and repository-id
 * resolution. Repository ids are immutable once created and repositories are never deleted, so
 * the name -> id cache is safe to share across requests and replicas, provided it only holds ids
 * of committed rows (see findRepositoryId).
 */
import type { Kysely, RawBuilder, Transaction } from 'kysely';
import { CompiledQuery, sql } from '../kysely.js';
import type { Dialect } from '../migrations/index.js';
import type { Schema } from '../schema.js';
import { busy, directWriterOf, type BoundStatement } from './prepared.js';

export type Db = Kysely<Schema> | Transaction<Schema>;

/** Attempts of one transaction that PostgreSQL aborts as a deadlock or serialization failure. */
const maxTransactionAttempts = 5;

export class SqlContext {
  private readonly ids = new Map<string, number>();

  constructor(
    readonly db: Kysely<Schema>,
    readonly dialect: Dialect = 'sqlite',
  ) {}

  /**
   * Runs `body` in a transaction. SQLite serialises writers, so this is one attempt there; on
   * PostgreSQL (READ COMMITTED, concurrent replicas) a transaction chosen as a deadlock victim
   * (40P01) or failing serialization (40001) is rolled back and run again, so `body` must only
   * touch the database (no side effects that cannot be repeated) and recompute from what it reads.
   */
  async transaction<T>(body: (trx: Transaction<Schema>) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction().execute(body);
      } catch (err) {
        if (attempt >= maxTransactionAttempts || !isRetryable(err)) throw err;
        // A short random pause so the two colliding transactions do not collide again in lockstep.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
      }
    }
  }

  /**
   * Runs prepared statements (prepared.ts) in order, as one transaction when there are several, and
   * answers each one's rows: at once through the database's direct writer when its connection is
   * free (SQLite), otherwise through Kysely (on PostgreSQL in a transaction retried as above).
   */
  async write(statements: readonly BoundStatement[]): Promise<unknown[][]> {
    const direct = directWriterOf(this.db);
    if (direct) {
      const rows = direct(statements);
      if (rows !== busy) return rows;
    }
    const [only] = statements;
    if (statements.length === 1 && only) return [(await this.db.executeQuery(CompiledQuery.raw(only.sql, only.parameters))).rows];
    return this.transaction((trx) => runEach(trx, statements));
  }

  /**
   * Runs the statements `statements` gives for the repository's id as one write, creating the
   * repository on first write in the same transaction. The common case, a repository whose id is
   * known, takes no read and goes through `write`.
   */
  async writeInRepository(name: string, now: number, statements: (repositoryId: number) => readonly BoundStatement[]): Promise<unknown[][]> {
    const known = this.ids.get(name);
    if (known !== undefined) return this.write(statements(known));
    return this.transaction(async (trx) => runEach(trx, statements(await this.ensureRepositoryId(name, now, trx))));
  }

  /**
   * The repository's id, or undefined if it has never been written to. Only ids read outside a
   * transaction are cached: one read inside a transaction may be of the transaction's own insert,
   * which a rollback (or a retried deadlock) undoes, and PostgreSQL never reuses a bigserial id.
   */
  async findRepositoryId(name: string, db: Db = this.db): Promise<number | undefined> {
    const cached = this.ids.get(name);
    if (cached !== undefined) return cached;
    const row = await db.selectFrom('repositories').select('id').where('name', '=', name).executeTakeFirst();
    if (row && db === this.db) this.ids.set(name, Number(row.id));
    return row ? Number(row.id) : undefined;
  }

  /** The repository's id, creating the repository on first write. */
  async ensureRepositoryId(name: string, now: number, db: Db = this.db): Promise<number> {
    const existing = await this.findRepositoryId(name, db);
    if (existing !== undefined) return existing;
    await db
      .insertInto('repositories')
      .values({ name, created_at: now })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    const id = await this.findRepositoryId(name, db);
    if (id === undefined) throw new Error(`repository ${name} vanished after insert`);
    return id;
  }
}

/** Runs `statements` one after another on `trx`, answering each one's rows. */
async function runEach(trx: Transaction<Schema>, statements: readonly BoundStatement[]): Promise<unknown[][]> {
  const rows: unknown[][] = [];
  for (const statement of statements) rows.push((await trx.executeQuery(CompiledQuery.raw(statement.sql, statement.parameters))).rows);
  return rows;
}

/** Applies a catalog/tag-list page to a query over a sorted text column. */
export function pageLimit(n: number | undefined, fallback: number): number {
  return n === undefined ? fallback : Math.max(0, Math.min(n, fallback));
}

/**
 * The subset of `digests` with no row in `table` for the repository (a repository-less query, i.e.
 * an unknown repository, has everything missing). Used for manifest reference checks.
 *
 * With `share` (PostgreSQL, inside the manifest put's transaction) the rows found are locked
 * FOR SHARE until commit: GC locks the same rows FOR UPDATE before it re-checks "unreferenced",
 * so either GC waits and then sees the new references, or this waits and then finds the rows
 * gone. SQLite needs no locks: it runs one writer at a time.
 */
export async function missingDigests(
  db: Db,
  table: 'manifests' | 'repository_blobs',
  repositoryId: number | undefined,
  digests: readonly string[],
  share = false,
): Promise<string[]> {
  const unique = [...new Set(digests)];
  if (unique.length === 0 || repositoryId === undefined) return unique;
  const query = db.selectFrom(table).select('digest').where('repository_id', '=', repositoryId).where('digest', 'in', unique).orderBy('digest');
  const rows = await (share ? query.forShare() : query).execute();
  const found = new Set(rows.map((row) => row.digest));
  return unique.filter((digest) => !found.has(digest));
}

/** SQLSTATE 40001 (serialization_failure) and 40P01 (deadlock_detected): safe to run again. */
function isRetryable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '40001' || code === '40P01';
}

/**
 * A unique-key violation in either dialect (PostgreSQL 23505; better-sqlite3's SQLITE_CONSTRAINT_
 * UNIQUE / _PRIMARYKEY). For a check-then-write that a concurrent writer can overtake on PostgreSQL:
 * the key still holds, and the loser sees this instead of its own check failing.
 */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/**
 * Free text from outside (a webhook receiver's response, a source registry's error, an admin's
 * description) as both databases can store it: PostgreSQL text cannot hold U+0000 (the insert
 * fails), so it becomes U+FFFD in either dialect and both store the same value.
 */
export function storableText<T extends string | null | undefined>(text: T): T {
  return (typeof text === 'string' && text.includes('\u0000') ? text.replaceAll('\u0000', '\ufffd') : text) as T;
}

/**
 * The later of a column and a value (a number, or another column's reference) in SQL both
 * databases speak: SQLite has no GREATEST, and its two-argument max() is not PostgreSQL's. A NULL
 * column gives the value (NULL compares as unknown). For timestamps that must never go backwards
 * when writers (replicas, a claimer with an older clock) record out of order.
 */
export function later(column: string, value: number | RawBuilder<unknown>): RawBuilder<number> {
  const current = sql.ref(column);
  return sql<number>`case when ${current} > ${value} then ${current} else ${value} end`;
}
