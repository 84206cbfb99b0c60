import type { BlobIndex, BlobRecord } from '../store.js';
import type { SqlContext } from './context.js';
import { preparedFirst, preparedStatement } from './prepared.js';
import { deleteUpload } from './upload-index.js';

// The blob HEAD/GET path's one statement each (see prepared.ts).
const blobByDigest = preparedFirst((db, digest: string) => db.selectFrom('blobs').selectAll().where('digest', '=', digest));
const blobInRepository = preparedFirst((db, repositoryId: number, digest: string) =>
  db
    .selectFrom('repository_blobs as rb')
    .innerJoin('blobs as b', 'b.digest', 'rb.digest')
    .select(['b.digest', 'b.size', 'b.pushed_at'])
    .where('rb.repository_id', '=', repositoryId)
    .where('rb.digest', '=', digest),
);

// Every push touches its blob's row and then links it (see prepared.ts).
const touchBlob = preparedStatement((db, digest: string, now: number) =>
  db.updateTable('blobs').set({ pushed_at: now }).where('digest', '=', digest).returningAll(),
);
const upsertBlob = preparedStatement((db, digest: string, size: number, now: number) =>
  db
    .insertInto('blobs')
    .values({ digest, size, pushed_at: now })
    .onConflict((oc) => oc.column('digest').doUpdateSet({ pushed_at: now })),
);
const linkBlob = preparedStatement((db, repositoryId: number, digest: string, now: number) =>
  db
    .insertInto('repository_blobs')
    .values({ repository_id: repositoryId, digest, created_at: now })
    .onConflict((oc) => oc.columns(['repository_id', 'digest']).doNothing()),
);

type BlobRow = { digest: string; size: number | string; pushed_at: number | string };

function toRecord(row: BlobRow): BlobRecord {
  return { digest: row.digest, size: Number(row.size), pushedAt: Number(row.pushed_at) };
}

export class SqlBlobIndex implements BlobIndex {
  constructor(private readonly ctx: SqlContext) {}

  async get(digest: string): Promise<BlobRecord | undefined> {
    const row = await blobByDigest(this.ctx.db, digest);
    return row && toRecord(row);
  }

  async getInRepository(repository: string, digest: string): Promise<BlobRecord | undefined> {
    const repositoryId = await this.ctx.findRepositoryId(repository);
    if (repositoryId === undefined) return undefined;
    const row = await blobInRepository(this.ctx.db, repositoryId, digest);
    return row && toRecord(row);
  }

  async link(repository: string, blob: { digest: string; size: number }, now: number, endsUpload?: string): Promise<void> {
    const db = this.ctx.db;
    await this.ctx.writeInRepository(repository, now, (repositoryId) => [
      upsertBlob(db, blob.digest, blob.size, now),
      linkBlob(db, repositoryId, blob.digest, now),
      // One commit for the blob and the end of its session (a commit of its own cost ~20 µs more per push on SQLite).
      ...(endsUpload === undefined ? [] : [deleteUpload(db, endsUpload)]),
    ]);
  }

  async holders(digest: string, page: { after?: string | undefined; limit: number }): Promise<string[]> {
    let query = this.ctx.db
      .selectFrom('repository_blobs as rb')
      .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
      .select('r.name')
      .where('rb.digest', '=', digest)
      .orderBy('r.name')
      .limit(Math.max(0, page.limit));
    if (page.after !== undefined) query = query.where('r.name', '>', page.after);
    return (await query.execute()).map((row) => row.name);
  }

  async touch(digest: string, now: number): Promise<BlobRecord | undefined> {
    // An UPDATE takes the row (PostgreSQL: waits for a GC holding it, then finds it gone or not).
    const [rows] = await this.ctx.write([touchBlob(this.ctx.db, digest, now)]);
    const row = rows?.[0] as BlobRow | undefined;
    return row && toRecord(row);
  }

  async linkExisting(repository: string, digest: string, now: number): Promise<BlobRecord | undefined> {
    return this.ctx.transaction(async (trx) => {
      // The blob row first: held until commit, so GC cannot collect it between here and the link.
      const row = await trx.updateTable('blobs').set({ pushed_at: now }).where('digest', '=', digest).returningAll().executeTakeFirst();
      if (!row) return undefined;
      const repositoryId = await this.ctx.ensureRepositoryId(repository, now, trx);
      await trx
        .insertInto('repository_blobs')
        .values({ repository_id: repositoryId, digest, created_at: now })
        .onConflict((oc) => oc.columns(['repository_id', 'digest']).doNothing())
        .execute();
      return toRecord(row);
    });
  }

  async unlink(repository: string, digest: string): Promise<boolean> {
    const repositoryId = await this.ctx.findRepositoryId(repository);
    if (repositoryId === undefined) return false;
    const result = await this.ctx.db.deleteFrom('repository_blobs').where('repository_id', '=', repositoryId).where('digest', '=', digest).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}
