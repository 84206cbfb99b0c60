/**
 * Shared plumbing for the SQL-backed indexes: the Kysely handle and repository-id resolution.
 * Repository ids are immutable once created and repositories are never deleted, so the name -> id
 * cache is safe to share across requests and replicas.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Schema } from '../schema.js';

export type Db = Kysely<Schema> | Transaction<Schema>;

export class SqlContext {
  private readonly ids = new Map<string, number>();

  constructor(readonly db: Kysely<Schema>) {}

  /** The repository's id, or undefined if it has never been written to. */
  async findRepositoryId(name: string, db: Db = this.db): Promise<number | undefined> {
    const cached = this.ids.get(name);
    if (cached !== undefined) return cached;
    const row = await db.selectFrom('repositories').select('id').where('name', '=', name).executeTakeFirst();
    if (row) this.ids.set(name, Number(row.id));
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

/** Applies a catalog/tag-list page to a query over a sorted text column. */
export function pageLimit(n: number | undefined, fallback: number): number {
  return n === undefined ? fallback : Math.max(0, Math.min(n, fallback));
}

/**
 * The subset of `digests` with no row in `table` for the repository (a repository-less query, i.e.
 * an unknown repository, has everything missing). Used for manifest reference checks.
 */
export async function missingDigests(
  db: Db,
  table: 'manifests' | 'repository_blobs',
  repositoryId: number | undefined,
  digests: readonly string[],
): Promise<string[]> {
  const unique = [...new Set(digests)];
  if (unique.length === 0 || repositoryId === undefined) return unique;
  const rows = await db
    .selectFrom(table)
    .select('digest')
    .where('repository_id', '=', repositoryId)
    .where('digest', 'in', unique)
    .execute();
  const found = new Set(rows.map((row) => row.digest));
  return unique.filter((digest) => !found.has(digest));
}
