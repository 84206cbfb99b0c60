/**
 * What lifecycle policies read of a repository, and the last pulls they keep (`lifecycle-store.ts`
 * `RepositoryStateIndex`). Last pulls arrive in batches from each replica's buffer; the upsert keeps
 * the later of the stored and the new time, so replicas may write in any order.
 */
import { sql } from '../kysely.js';
import type { PushRecord } from '../store.js';
import type { RepositoryStateIndex, SnapshotRows } from '../lifecycle-store.js';
import { later, type SqlContext } from './context.js';

/** Values per IN list or rows per INSERT, well under PostgreSQL's bound-parameter limit. */
const chunk = 500;

function chunks<T>(items: readonly T[], size = chunk): T[][] {
  const out: T[][] = [];
  for (let start = 0; start < items.length; start += size) out.push(items.slice(start, start + size));
  return out;
}

export class SqlRepositoryStateIndex implements RepositoryStateIndex {
  constructor(private readonly ctx: SqlContext) {}

  async repositories(page: { after?: string | undefined; limit: number }): Promise<string[]> {
    let query = this.ctx.db
      .selectFrom('repositories as r')
      .select('r.name')
      .where((eb) => eb.exists(eb.selectFrom('manifests as m').select('m.digest').whereRef('m.repository_id', '=', 'r.id')))
      .orderBy('r.name')
      .limit(Math.max(0, page.limit));
    if (page.after !== undefined) query = query.where('r.name', '>', page.after);
    return (await query.execute()).map((row) => row.name);
  }

  async snapshot(repository: string): Promise<SnapshotRows | undefined> {
    const id = await this.ctx.findRepositoryId(repository);
    if (id === undefined) return undefined;
    const db = this.ctx.db;
    const [manifests, children, tags, pulls] = await Promise.all([
      db
        .selectFrom('manifests')
        .select(['digest', 'media_type', 'size', 'created_at', 'subject_digest', 'artifact_type'])
        .where('repository_id', '=', id)
        .orderBy('digest')
        .execute(),
      db
        .selectFrom('manifest_references')
        .select(['manifest_digest', 'child_digest'])
        .where('repository_id', '=', id)
        .where('kind', '=', 'manifest')
        .orderBy('manifest_digest')
        .orderBy('child_digest')
        .execute(),
      db.selectFrom('tags').select(['name', 'digest', 'updated_at']).where('repository_id', '=', id).orderBy('name').execute(),
      db.selectFrom('manifest_pulls').select(['digest', 'last_pulled_at']).where('repository_id', '=', id).execute(),
    ]);
    return {
      manifests: manifests.map((m) => ({
        digest: m.digest,
        mediaType: m.media_type,
        size: Number(m.size),
        createdAt: Number(m.created_at),
        subject: m.subject_digest ?? undefined,
        artifactType: m.artifact_type ?? undefined,
      })),
      children: children.map((c) => ({ parent: c.manifest_digest, child: c.child_digest })),
      tags: tags.map((t) => ({ name: t.name, digest: t.digest, updatedAt: Number(t.updated_at) })),
      pulls: pulls.map((p) => ({ digest: p.digest, lastPulledAt: Number(p.last_pulled_at) })),
    };
  }

  async tagDigests(repository: string, tags: readonly string[]): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    const id = await this.ctx.findRepositoryId(repository);
    if (id === undefined || tags.length === 0) return found;
    for (const part of chunks([...new Set(tags)])) {
      const rows = await this.ctx.db.selectFrom('tags').select(['name', 'digest']).where('repository_id', '=', id).where('name', 'in', part).execute();
      for (const row of rows) found.set(row.name, row.digest);
    }
    return found;
  }

  async firstPush(repository: string, tag: string, digest: string): Promise<PushRecord | undefined> {
    const id = await this.ctx.findRepositoryId(repository);
    if (id === undefined) return undefined;
    const row = await this.ctx.db
      .selectFrom('pushes')
      .selectAll()
      .where('repository_id', '=', id)
      .where('tag', '=', tag)
      .where('digest', '=', digest)
      .orderBy('at')
      .orderBy('id')
      .limit(1)
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      digest: row.digest,
      tag: row.tag ?? undefined,
      at: Number(row.at),
      principalId: row.principal_id ?? undefined,
      principalName: row.principal_name ?? undefined,
      provenance: row.provenance === null ? undefined : (JSON.parse(row.provenance) as Record<string, unknown>),
    };
  }

  async newlyReferencedBytes(repository: string, manifest: { digest: string; size: number }, blobs: readonly string[]): Promise<number> {
    const id = await this.ctx.findRepositoryId(repository);
    const db = this.ctx.db;
    let bytes = 0;
    const held =
      id === undefined
        ? undefined
        : await db.selectFrom('manifests').select('digest').where('repository_id', '=', id).where('digest', '=', manifest.digest).executeTakeFirst();
    if (!held) bytes += manifest.size;
    const unique = [...new Set(blobs)];
    const referenced = new Set<string>();
    if (id !== undefined) {
      for (const part of chunks(unique)) {
        const rows = await db
          .selectFrom('manifest_references')
          .select('child_digest')
          .distinct()
          .where('repository_id', '=', id)
          .where('child_digest', 'in', part)
          .execute();
        for (const row of rows) referenced.add(row.child_digest);
      }
    }
    for (const part of chunks(unique.filter((d) => !referenced.has(d)))) {
      const rows = await db.selectFrom('blobs').select('size').where('digest', 'in', part).execute();
      for (const row of rows) bytes += Number(row.size);
    }
    return bytes;
  }

  async recordPulls(pulls: ReadonlyArray<{ repository: string; digest: string; at: number }>): Promise<void> {
    const latest = new Map<string, { repository_id: number; digest: string; last_pulled_at: number }>();
    for (const pull of pulls) {
      const id = await this.ctx.findRepositoryId(pull.repository);
      if (id === undefined) continue;
      const key = `${id}\u0000${pull.digest}`;
      const seen = latest.get(key);
      if (!seen || seen.last_pulled_at < pull.at) latest.set(key, { repository_id: id, digest: pull.digest, last_pulled_at: pull.at });
    }
    // Sorted, so two replicas flushing overlapping batches lock rows in one order (no deadlock).
    const rows = [...latest.values()].sort((a, b) => a.repository_id - b.repository_id || (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
    for (const part of chunks(rows)) {
      await this.ctx.db
        .insertInto('manifest_pulls')
        .values(part)
        .onConflict((oc) =>
          oc.columns(['repository_id', 'digest']).doUpdateSet({
            last_pulled_at: later('manifest_pulls.last_pulled_at', sql.ref('excluded.last_pulled_at')),
          }),
        )
        .execute();
    }
  }

  async prunePulls(): Promise<number> {
    const result = await this.ctx.db
      .deleteFrom('manifest_pulls as p')
      .where((eb) =>
        eb.not(
          eb.exists(
            eb.selectFrom('manifests as m').select('m.digest').whereRef('m.repository_id', '=', 'p.repository_id').whereRef('m.digest', '=', 'p.digest'),
          ),
        ),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
