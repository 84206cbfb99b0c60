import type { Descriptor } from '../../oci/manifest.js';
import type { ChangeOutbox, DeleteExpectation, ManifestChange, ManifestIndex, ManifestRecord, NewManifest, Page, PushRecord } from '../store.js';
import { missingDigests, pageLimit, type Db, type SqlContext } from './context.js';
import { writeEvent, type EventNotifier } from './event-index.js';
import { preparedFirst } from './prepared.js';

/** Upper bound on one tag-list page, whatever `n` asks for. */
export const maxTagPage = 10_000;

interface ManifestRow {
  digest: string;
  media_type: string;
  size: number | string;
  content: Buffer;
  subject_digest: string | null;
}

// A manifest GET's one statement, by tag or by digest (see prepared.ts).
const manifestByTag = preparedFirst((db, repositoryId: number, tag: string) =>
  db
    .selectFrom('tags as t')
    .innerJoin('manifests as m', (join) => join.onRef('m.repository_id', '=', 't.repository_id').onRef('m.digest', '=', 't.digest'))
    .innerJoin('manifest_contents as c', 'c.digest', 'm.digest')
    .select(['m.digest', 'm.media_type', 'm.size', 'c.content', 'm.subject_digest'])
    .where('t.repository_id', '=', repositoryId)
    .where('t.name', '=', tag),
);
const manifestByDigest = preparedFirst((db, repositoryId: number, digest: string) =>
  db
    .selectFrom('manifests as m')
    .innerJoin('manifest_contents as c', 'c.digest', 'm.digest')
    .select(['m.digest', 'm.media_type', 'm.size', 'c.content', 'm.subject_digest'])
    .where('m.repository_id', '=', repositoryId)
    .where('m.digest', '=', digest),
);

function toRecord(row: ManifestRow): ManifestRecord {
  return {
    digest: row.digest,
    mediaType: row.media_type,
    size: Number(row.size),
    content: row.content,
    subject: row.subject_digest ?? undefined,
  };
}

/**
 * Writes the outbox rows of a change inside the change's transaction: `outbox` builds them from
 * what the transaction found; they are stored as given. True if any row was written (the caller
 * then notifies the dispatcher after the commit).
 */
async function writeOutbox(db: Db, outbox: ChangeOutbox | undefined, change: ManifestChange, now: number): Promise<boolean> {
  const events = outbox?.(change, now) ?? [];
  for (const event of events) await writeEvent(db, event, now);
  return events.length > 0;
}

/**
 * The rows of one manifest (its bytes, its per-repository row, its references), inside the caller's
 * transaction; idempotent. The push's own manifest and its companions are written by it.
 */
async function writeManifestRows(trx: Db, repositoryId: number, m: NewManifest, now: number): Promise<void> {
  // A no-op update rather than DO NOTHING: it locks an existing row until commit, so a
  // concurrent pruneManifestContents (which locks before re-checking) cannot delete the bytes
  // this manifest is about to use; if the prune deleted them first, this inserts them afresh.
  await trx
    .insertInto('manifest_contents')
    .values({ digest: m.digest, content: m.content, created_at: now })
    .onConflict((oc) => oc.column('digest').doUpdateSet((eb) => ({ created_at: eb.ref('manifest_contents.created_at') })))
    .execute();
  await trx
    .insertInto('manifests')
    .values({
      repository_id: repositoryId,
      digest: m.digest,
      media_type: m.mediaType,
      size: m.content.length,
      subject_digest: m.subject ?? null,
      artifact_type: m.artifactType ?? null,
      annotations: m.annotations ? JSON.stringify(m.annotations) : null,
      created_at: now,
    })
    // Also a no-op update rather than DO NOTHING, for the same reason: it holds an existing manifest
    // row until commit, so a concurrent delete of this digest (which takes the row first) waits and
    // then removes the tag this put writes too, instead of removing the manifest under it and
    // leaving the tag pointing at nothing. If the delete went first, this inserts afresh.
    .onConflict((oc) => oc.columns(['repository_id', 'digest']).doUpdateSet((eb) => ({ created_at: eb.ref('manifests.created_at') })))
    .execute();
  const references = [
    ...[...new Set(m.blobs)].map((child) => ({ child, kind: 'blob' as const })),
    ...[...new Set(m.manifests)].map((child) => ({ child, kind: 'manifest' as const })),
  ];
  if (references.length > 0) {
    await trx
      .insertInto('manifest_references')
      .values(
        references.map(({ child, kind }) => ({
          repository_id: repositoryId,
          manifest_digest: m.digest,
          child_digest: child,
          kind,
        })),
      )
      .onConflict((oc) => oc.columns(['repository_id', 'manifest_digest', 'child_digest']).doNothing())
      .execute();
  }
}

/** Thrown inside a put's transaction to roll it back: a write-once tag points at another digest. */
class WriteOnceConflict extends Error {
  constructor(readonly tag: string) {
    super(`write-once tag ${tag} points at another digest`);
  }
}

export class SqlManifestIndex implements ManifestIndex {
  /** `events` is told after each commit that wrote an outbox row (wakes the webhook dispatcher). */
  constructor(
    private readonly ctx: SqlContext,
    private readonly events?: EventNotifier,
  ) {}

  async put(manifest: NewManifest, now: number, outbox?: ChangeOutbox): Promise<{ missing: string[]; absent?: string[]; conflicts?: string[] }> {
    // Sorted, so two pushes setting overlapping tags lock their rows in the same order (no deadlock).
    const tags = [...new Set([...(manifest.tag !== undefined ? [manifest.tag] : []), ...(manifest.tags ?? [])])].sort();
    const writeOnce = new Set(manifest.writeOnceTags ?? []);
    let result;
    try {
      result = await this.putRows(manifest, tags, writeOnce, now, outbox);
    } catch (err) {
      if (!(err instanceof WriteOnceConflict)) throw err;
      return { missing: [], conflicts: await this.movedTags(manifest.repository, [...writeOnce], manifest.digest, err.tag) };
    }
    if (result.evented) this.events?.notify();
    return result.absent.length > 0 ? { missing: result.missing, absent: result.absent } : { missing: result.missing };
  }

  /** The write-once tags that point at another digest than `digest` now (at least `found`, which a transaction saw so). */
  private async movedTags(repository: string, writeOnce: readonly string[], digest: string, found: string): Promise<string[]> {
    const repositoryId = await this.ctx.findRepositoryId(repository);
    if (repositoryId === undefined) return [found];
    const rows = await this.ctx.db
      .selectFrom('tags')
      .select(['name', 'digest'])
      .where('repository_id', '=', repositoryId)
      .where('name', 'in', writeOnce)
      .execute();
    const moved = rows.filter((row) => row.digest !== digest).map((row) => row.name);
    return moved.length > 0 ? moved.sort() : [found];
  }

  /** The put's transaction (see `put`); throws WriteOnceConflict, rolling it back, when a write-once tag points elsewhere. */
  private async putRows(manifest: NewManifest, tags: readonly string[], writeOnce: ReadonlySet<string>, now: number, outbox: ChangeOutbox | undefined) {
    return this.ctx.transaction(async (trx) => {
      const repositoryId = await this.ctx.ensureRepositoryId(manifest.repository, now, trx);
      const lock = this.ctx.dialect === 'postgres';
      const companionBlobs = (manifest.companions ?? []).flatMap((c) => c.blobs);
      const absentBlobs = await missingDigests(trx, 'repository_blobs', repositoryId, manifest.blobs, lock);
      const absentManifests = await missingDigests(trx, 'manifests', repositoryId, manifest.manifests, lock);
      const missing = [
        ...(manifest.allowMissing?.blobs ? [] : absentBlobs),
        ...(manifest.allowMissing?.manifests ? [] : absentManifests),
        // A companion (push attestation) is never sparse: its blobs were stored just before.
        ...(await missingDigests(trx, 'repository_blobs', repositoryId, companionBlobs, lock)),
      ];
      if (missing.length > 0) return { missing, absent: [], evented: false };
      // Sparse: the excused absent references are recorded like the present ones below.
      const absent = [...(manifest.allowMissing?.blobs ? absentBlobs : []), ...(manifest.allowMissing?.manifests ? absentManifests : [])];

      await writeManifestRows(trx, repositoryId, manifest, now);
      for (const companion of manifest.companions ?? []) await writeManifestRows(trx, repositoryId, companion, now);
      // One push record and one `push` change per tag (each tag is a push for webhooks), or one
      // untagged of each for a push by digest alone.
      let evented = false;
      for (const tag of tags.length > 0 ? tags : [undefined]) {
        await trx
          .insertInto('pushes')
          .values({
            repository_id: repositoryId,
            digest: manifest.digest,
            tag: tag ?? null,
            at: now,
            principal_id: manifest.pusher?.principalId ?? null,
            principal_name: manifest.pusher?.principalName ?? null,
            provenance: manifest.pusher?.provenance ? JSON.stringify(manifest.pusher.provenance) : null,
          })
          .execute();
        if (tag !== undefined) {
          // A write-once tag is updated only where it already points at this digest: a tag another
          // push set meanwhile (PostgreSQL: this waits for it to commit) is left alone, and detected.
          const once = writeOnce.has(tag);
          const written = await trx
            .insertInto('tags')
            .values({ repository_id: repositoryId, name: tag, digest: manifest.digest, updated_at: now })
            .onConflict((oc) => {
              const update = oc.columns(['repository_id', 'name']).doUpdateSet({ digest: manifest.digest, updated_at: now });
              return once ? update.where('tags.digest', '=', manifest.digest) : update;
            })
            .executeTakeFirst();
          if (once && Number(written.numInsertedOrUpdatedRows ?? 0) === 0) throw new WriteOnceConflict(tag);
        }
        const change = {
          action: 'push' as const,
          repository: manifest.repository,
          digest: manifest.digest,
          mediaType: manifest.mediaType,
          size: manifest.content.length,
          tag,
        };
        evented = (await writeOutbox(trx, outbox, change, now)) || evented;
      }
      return { missing: [], absent, evented };
    });
  }

  async getByTag(repository: string, tag: string): Promise<ManifestRecord | undefined> {
    const repositoryId = await this.ctx.findRepositoryId(repository);
    if (repositoryId === undefined) return undefined;
    const row = await manifestByTag(this.ctx.db, repositoryId, tag);
    return row && toRecord(row);
  }

  async getByDigest(repository: string, digest: string): Promise<ManifestRecord | undefined> {
    const repositoryId = await this.ctx.findRepositoryId(repository);
    if (repositoryId === undefined) return undefined;
    const row = await manifestByDigest(this.ctx.db, repositoryId, digest);
    return row && toRecord(row);
  }

  async delete(repository: string, digest: string, now: number, outbox?: ChangeOutbox, expect?: DeleteExpectation): Promise<boolean> {
    const repositoryId = await this.ctx.findRepositoryId(repository);
    if (repositoryId === undefined) return false;
    const result = await this.ctx.transaction(async (trx) => {
      const query = trx.selectFrom('manifests').select(['media_type', 'size']).where('repository_id', '=', repositoryId).where('digest', '=', digest);
      // PostgreSQL: take the row first, so a put of this digest in flight (which holds it) commits
      // before the tags are read and deleted below; SQLite runs one writer at a time.
      const row = await (this.ctx.dialect === 'postgres' ? query.forUpdate() : query).executeTakeFirst();
      if (!row) return { deleted: false, evented: false };
      if (expect && !(await this.unchanged(trx, repositoryId, digest, expect))) return { deleted: false, evented: false };
      const tags = await trx.selectFrom('tags').select('name').where('repository_id', '=', repositoryId).where('digest', '=', digest).orderBy('name').execute();
      const result = await trx.deleteFrom('manifests').where('repository_id', '=', repositoryId).where('digest', '=', digest).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) return { deleted: false, evented: false };
      await trx.deleteFrom('tags').where('repository_id', '=', repositoryId).where('digest', '=', digest).execute();
      await trx.deleteFrom('manifest_references').where('repository_id', '=', repositoryId).where('manifest_digest', '=', digest).execute();
      const evented = await writeOutbox(
        trx,
        outbox,
        {
          action: 'delete',
          repository,
          digest,
          mediaType: row.media_type,
          size: Number(row.size),
          tag: undefined,
          removedTags: tags.map((t) => t.name),
        },
        now,
      );
      return { deleted: true, evented };
    });
    if (result.evented) this.events?.notify();
    return result.deleted;
  }

  async deleteTag(repository: string, tag: string, now: number, outbox?: ChangeOutbox, expect?: DeleteExpectation): Promise<boolean> {
    const repositoryId = await this.ctx.findRepositoryId(repository);
    if (repositoryId === undefined) return false;
    const result = await this.ctx.transaction(async (trx) => {
      const query = trx
        .selectFrom('tags as t')
        .leftJoin('manifests as m', (join) => join.onRef('m.repository_id', '=', 't.repository_id').onRef('m.digest', '=', 't.digest'))
        .select(['t.digest', 't.updated_at', 'm.media_type', 'm.size'])
        .where('t.repository_id', '=', repositoryId)
        .where('t.name', '=', tag);
      // An expected state is checked with the tag row held (PostgreSQL), so a push moving it waits.
      const row = await (expect && this.ctx.dialect === 'postgres' ? query.forUpdate('t') : query).executeTakeFirst();
      if (!row) return { deleted: false, evented: false };
      if (expect && ((expect.digest !== undefined && row.digest !== expect.digest) || Number(row.updated_at) >= expect.unchangedSince)) {
        return { deleted: false, evented: false };
      }
      const result = await trx.deleteFrom('tags').where('repository_id', '=', repositoryId).where('name', '=', tag).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) return { deleted: false, evented: false };
      const evented = await writeOutbox(
        trx,
        outbox,
        {
          action: 'delete',
          repository,
          digest: row.digest,
          mediaType: row.media_type ?? undefined,
          size: row.size === null ? undefined : Number(row.size),
          tag,
        },
        now,
      );
      return { deleted: true, evented };
    });
    if (result.evented) this.events?.notify();
    return result.deleted;
  }

  /**
   * Whether a manifest still is as a conditional delete planned it (inside the delete's transaction,
   * after its row was taken): nothing pushed to it since, and, if asked, no manifest listing it.
   */
  private async unchanged(trx: Db, repositoryId: number, digest: string, expect: DeleteExpectation): Promise<boolean> {
    const pushed = await trx
      .selectFrom('pushes')
      .select('id')
      .where('repository_id', '=', repositoryId)
      .where('digest', '=', digest)
      .where('at', '>=', expect.unchangedSince)
      .limit(1)
      .executeTakeFirst();
    if (pushed) return false;
    if (!expect.unreferenced) return true;
    const lister = await trx
      .selectFrom('manifest_references')
      .select('manifest_digest')
      .where('repository_id', '=', repositoryId)
      .where('child_digest', '=', digest)
      .where('kind', '=', 'manifest')
      .limit(1)
      .executeTakeFirst();
    return lister === undefined;
  }

  async listTags(repository: string, page: Page): Promise<string[] | undefined> {
    const repositoryId = await this.ctx.findRepositoryId(repository);
    if (repositoryId === undefined) return undefined;
    let query = this.ctx.db.selectFrom('tags').select('name').where('repository_id', '=', repositoryId).orderBy('name').limit(pageLimit(page.n, maxTagPage));
    if (page.last !== undefined) query = query.where('name', '>', page.last);
    return (await query.execute()).map((row) => row.name);
  }

  async listReferrers(repository: string, subject: string, artifactType?: string): Promise<Descriptor[]> {
    const repositoryId = await this.ctx.findRepositoryId(repository);
    if (repositoryId === undefined) return [];
    let query = this.ctx.db
      .selectFrom('manifests')
      .select(['digest', 'media_type', 'size', 'artifact_type', 'annotations'])
      .where('repository_id', '=', repositoryId)
      .where('subject_digest', '=', subject)
      .orderBy('created_at')
      .orderBy('digest');
    if (artifactType !== undefined) query = query.where('artifact_type', '=', artifactType);
    const rows = await query.execute();
    return rows.map((row) => {
      const descriptor: Descriptor = { mediaType: row.media_type, digest: row.digest, size: Number(row.size) };
      if (row.artifact_type !== null) descriptor.artifactType = row.artifact_type;
      if (row.annotations !== null) descriptor.annotations = JSON.parse(row.annotations) as Record<string, string>;
      return descriptor;
    });
  }

  async history(repository: string, filter: { tag?: string | undefined; digest?: string | undefined; limit: number }): Promise<PushRecord[]> {
    const repositoryId = await this.ctx.findRepositoryId(repository);
    if (repositoryId === undefined) return [];
    let query = this.ctx.db
      .selectFrom('pushes')
      .selectAll()
      .where('repository_id', '=', repositoryId)
      .orderBy('at', 'desc')
      .orderBy('id', 'desc')
      .limit(filter.limit);
    if (filter.tag !== undefined) query = query.where('tag', '=', filter.tag);
    if (filter.digest !== undefined) query = query.where('digest', '=', filter.digest);
    return (await query.execute()).map((row) => ({
      digest: row.digest,
      tag: row.tag ?? undefined,
      at: Number(row.at),
      principalId: row.principal_id ?? undefined,
      principalName: row.principal_name ?? undefined,
      provenance: row.provenance === null ? undefined : (JSON.parse(row.provenance) as Record<string, unknown>),
    }));
  }
}
