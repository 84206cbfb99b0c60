import type { ExpressionBuilder } from 'kysely';
import type { Schema } from '../schema.js';
import type { BlobRecord, GcIndex } from '../store.js';
import type { SqlContext } from './context.js';

/** Digests per DELETE, well under PostgreSQL's bound-parameter limit. */
const pruneChunk = 1000;

/** Stored manifest bytes no repository's manifest uses. */
const unusedContent = (eb: ExpressionBuilder<Schema & { c: Schema['manifest_contents'] }, 'c'>) =>
  eb.not(eb.exists(eb.selectFrom('manifests as m').select('m.digest').whereRef('m.digest', '=', 'c.digest')));

export class SqlGcIndex implements GcIndex {
  constructor(private readonly ctx: SqlContext) {}

  async unreferencedBlobs(cutoff: number): Promise<BlobRecord[]> {
    const rows = await this.ctx.db
      .selectFrom('blobs as b')
      .selectAll()
      .where('b.pushed_at', '<', cutoff)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('manifest_references as r').select('r.child_digest').whereRef('r.child_digest', '=', 'b.digest'))))
      .orderBy('b.digest')
      .execute();
    return rows.map((row) => ({ digest: row.digest, size: Number(row.size), pushedAt: Number(row.pushed_at) }));
  }

  async collectBlob(digest: string, cutoff: number, removeContent: () => Promise<boolean>): Promise<boolean> {
    const keep = Symbol('keep');
    try {
      return await this.ctx.transaction(async (trx) => {
        if (this.ctx.dialect === 'postgres') {
          // Lock first, then re-check in a later statement (READ COMMITTED: a fresh snapshot). A
          // touch or link holds the blob row (its UPDATE or upsert) and a manifest put holds FOR
          // SHARE on the repository links it references, so each either finished before the
          // re-check (and is seen by it) or waits for this transaction and then finds the rows gone.
          const held = await trx.selectFrom('blobs').select('digest').where('digest', '=', digest).forUpdate().executeTakeFirst();
          if (!held) return false;
          await trx.selectFrom('repository_blobs').select('digest').where('digest', '=', digest).orderBy('repository_id').forUpdate().execute();
        }
        // SQLite: the transaction holds the database's write lock from its start (open.ts).
        const still = await trx
          .selectFrom('blobs as b')
          .select('b.digest')
          .where('b.digest', '=', digest)
          .where('b.pushed_at', '<', cutoff)
          .where((eb) => eb.not(eb.exists(eb.selectFrom('manifest_references as r').select('r.child_digest').whereRef('r.child_digest', '=', 'b.digest'))))
          .executeTakeFirst();
        if (!still) return false;
        await trx.deleteFrom('repository_blobs').where('digest', '=', digest).execute();
        await trx.deleteFrom('blobs').where('digest', '=', digest).execute();
        // Last, so nothing after it can fail and roll the rows back over a deleted file.
        if (!(await removeContent())) throw keep;
        return true;
      });
    } catch (err) {
      if (err === keep) return false;
      throw err;
    }
  }

  async pruneManifestContents(): Promise<number> {
    if (this.ctx.dialect === 'sqlite') {
      // One writer at a time: the check and the delete cannot interleave with a manifest put.
      const result = await this.ctx.db.deleteFrom('manifest_contents as c').where(unusedContent).executeTakeFirst();
      return Number(result.numDeletedRows);
    }
    // PostgreSQL: lock the unused rows, then delete those still unused by a later statement's
    // snapshot. A manifest put locks its content row (its upsert) before committing the manifest
    // that uses it, so the put either committed before the lock (and the re-check sees its
    // manifest) or waits for this delete and then inserts the bytes afresh.
    return this.ctx.transaction(async (trx) => {
      const unused = await trx.selectFrom('manifest_contents as c').select('c.digest').where(unusedContent).orderBy('c.digest').forUpdate().execute();
      if (unused.length === 0) return 0;
      let deleted = 0;
      const digests = unused.map((row) => row.digest);
      for (let start = 0; start < digests.length; start += pruneChunk) {
        const result = await trx
          .deleteFrom('manifest_contents as c')
          .where('c.digest', 'in', digests.slice(start, start + pruneChunk))
          .where(unusedContent)
          .executeTakeFirst();
        deleted += Number(result.numDeletedRows);
      }
      return deleted;
    });
  }
}
