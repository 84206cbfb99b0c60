import type { BlobRecord, GcIndex } from '../store.js';
import type { SqlContext } from './context.js';

export class SqlGcIndex implements GcIndex {
  constructor(private readonly ctx: SqlContext) {}

  async unreferencedBlobs(cutoff: number): Promise<BlobRecord[]> {
    const rows = await this.ctx.db
      .selectFrom('blobs as b')
      .selectAll()
      .where('b.pushed_at', '<', cutoff)
      .where((eb) =>
        eb.not(eb.exists(eb.selectFrom('manifest_references as r').select('r.child_digest').whereRef('r.child_digest', '=', 'b.digest'))),
      )
      .orderBy('b.digest')
      .execute();
    return rows.map((row) => ({ digest: row.digest, size: Number(row.size), pushedAt: Number(row.pushed_at) }));
  }

  async forgetBlobs(digests: readonly string[], cutoff: number): Promise<string[]> {
    if (digests.length === 0) return [];
    return this.ctx.db.transaction().execute(async (trx) => {
      const stillUnreferenced = await trx
        .selectFrom('blobs as b')
        .select('b.digest')
        .where('b.digest', 'in', [...digests])
        .where('b.pushed_at', '<', cutoff)
        .where((eb) =>
          eb.not(eb.exists(eb.selectFrom('manifest_references as r').select('r.child_digest').whereRef('r.child_digest', '=', 'b.digest'))),
        )
        .execute();
      const forgotten = stillUnreferenced.map((row) => row.digest);
      if (forgotten.length === 0) return [];
      await trx.deleteFrom('repository_blobs').where('digest', 'in', forgotten).execute();
      await trx.deleteFrom('blobs').where('digest', 'in', forgotten).execute();
      return forgotten;
    });
  }

  async pruneManifestContents(): Promise<number> {
    const result = await this.ctx.db
      .deleteFrom('manifest_contents as c')
      .where((eb) => eb.not(eb.exists(eb.selectFrom('manifests as m').select('m.digest').whereRef('m.digest', '=', 'c.digest'))))
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
