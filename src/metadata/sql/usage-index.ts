/**
 * Storage usage in SQL (`lifecycle-store.ts` `UsageIndex`): per-repository aggregates computed from
 * the live tables and stored by the usage job, and per-quota sums with the delta that accepted
 * pushes add between two computations.
 *
 * A repository's logical size is its manifests' bytes plus the distinct blobs they reference; its
 * exclusive size the part no other repository's manifests reference (what deleting it would free,
 * since blobs and manifest bytes are stored once). Each is one indexed aggregate per repository
 * (`manifest_references_child`, `manifests_digest`), so the job's cost grows with the references of
 * the repositories it visits, never with a scan of the whole store per repository.
 */
import { sql } from '../kysely.js';
import type { QuotaUsageRecord, RepositoryUsage, UsageIndex } from '../lifecycle-store.js';
import type { SqlContext } from './context.js';

interface Aggregate {
  n: number | string | null;
  bytes: number | string | null;
  exclusive: number | string | null;
}

export class SqlUsageIndex implements UsageIndex {
  constructor(private readonly ctx: SqlContext) {}

  async compute(repository: string, now: number): Promise<RepositoryUsage | undefined> {
    const id = await this.ctx.findRepositoryId(repository);
    if (id === undefined) return undefined;
    const db = this.ctx.db;
    const blobs = await sql<Aggregate>`
      select count(*) as n, coalesce(sum(b.size), 0) as bytes,
        coalesce(sum(case when exists (
          select 1 from manifest_references o where o.child_digest = b.digest and o.repository_id <> ${id}
        ) then 0 else b.size end), 0) as exclusive
      from blobs b
      where b.digest in (select r.child_digest from manifest_references r where r.repository_id = ${id} and r.kind = 'blob')`.execute(db);
    const manifests = await sql<Aggregate>`
      select count(*) as n, coalesce(sum(m.size), 0) as bytes,
        coalesce(sum(case when exists (
          select 1 from manifests o where o.digest = m.digest and o.repository_id <> ${id}
        ) then 0 else m.size end), 0) as exclusive
      from manifests m
      where m.repository_id = ${id}`.execute(db);
    const b = blobs.rows[0];
    const m = manifests.rows[0];
    return {
      repository,
      logicalBytes: Number(b?.bytes ?? 0) + Number(m?.bytes ?? 0),
      exclusiveBytes: Number(b?.exclusive ?? 0) + Number(m?.exclusive ?? 0),
      manifests: Number(m?.n ?? 0),
      blobs: Number(b?.n ?? 0),
      computedAt: now,
    };
  }

  async save(rows: readonly RepositoryUsage[]): Promise<void> {
    for (const row of rows) {
      const id = await this.ctx.findRepositoryId(row.repository);
      if (id === undefined) continue;
      const values = {
        logical_bytes: row.logicalBytes,
        exclusive_bytes: row.exclusiveBytes,
        manifests: row.manifests,
        blobs: row.blobs,
        computed_at: row.computedAt,
      };
      await this.ctx.db
        .insertInto('repository_usage')
        .values({ repository_id: id, ...values })
        .onConflict((oc) => oc.column('repository_id').doUpdateSet(values))
        .execute();
    }
  }

  async list(page: { after?: string | undefined; limit: number; only?: readonly string[] | undefined }): Promise<RepositoryUsage[]> {
    if (page.only !== undefined && page.only.length === 0) return [];
    let query = this.ctx.db
      .selectFrom('repository_usage as u')
      .innerJoin('repositories as r', 'r.id', 'u.repository_id')
      .select(['r.name', 'u.logical_bytes', 'u.exclusive_bytes', 'u.manifests', 'u.blobs', 'u.computed_at'])
      .orderBy('r.name')
      .limit(Math.max(0, page.limit));
    if (page.after !== undefined) query = query.where('r.name', '>', page.after);
    if (page.only !== undefined) query = query.where('r.name', 'in', [...page.only]);
    return (await query.execute()).map((row) => ({
      repository: row.name,
      logicalBytes: Number(row.logical_bytes),
      exclusiveBytes: Number(row.exclusive_bytes),
      manifests: Number(row.manifests),
      blobs: Number(row.blobs),
      computedAt: Number(row.computed_at),
    }));
  }

  async exclusiveOf(repositories: readonly string[]): Promise<number> {
    const ids: number[] = [];
    for (const name of new Set(repositories)) {
      const id = await this.ctx.findRepositoryId(name);
      if (id !== undefined) ids.push(id);
    }
    if (ids.length === 0) return 0;
    const set = sql.join(ids);
    const db = this.ctx.db;
    const blobs = await sql<{ bytes: number | string | null }>`
      select coalesce(sum(b.size), 0) as bytes from blobs b
      where b.digest in (select r.child_digest from manifest_references r where r.kind = 'blob' and r.repository_id in (${set}))
        and not exists (select 1 from manifest_references o where o.child_digest = b.digest and o.repository_id not in (${set}))`.execute(db);
    const manifests = await sql<{ bytes: number | string | null }>`
      select coalesce(sum(x.size), 0) as bytes from (
        select distinct m.digest, m.size from manifests m
        where m.repository_id in (${set})
          and not exists (select 1 from manifests o where o.digest = m.digest and o.repository_id not in (${set}))
      ) x`.execute(db);
    return Number(blobs.rows[0]?.bytes ?? 0) + Number(manifests.rows[0]?.bytes ?? 0);
  }

  async quotas(): Promise<QuotaUsageRecord[]> {
    return (await this.ctx.db.selectFrom('quota_usage').selectAll().execute()).map(toQuota);
  }

  async quota(policyId: string): Promise<QuotaUsageRecord | undefined> {
    const row = await this.ctx.db.selectFrom('quota_usage').selectAll().where('policy_id', '=', policyId).executeTakeFirst();
    return row && toQuota(row);
  }

  async setQuota(policyId: string, usage: number, consumed: number, state: string, now: number): Promise<void> {
    await this.ctx.db
      .insertInto('quota_usage')
      .values({ policy_id: policyId, usage_bytes: usage, delta_bytes: 0, state, state_changed_at: now, computed_at: now })
      .onConflict((oc) =>
        oc.column('policy_id').doUpdateSet({
          usage_bytes: usage,
          // Keep what pushes added after the computation started; never below zero.
          delta_bytes: sql<number>`case when ${sql.ref('quota_usage.delta_bytes')} > ${consumed} then ${sql.ref('quota_usage.delta_bytes')} - ${consumed} else 0 end`,
          computed_at: now,
        }),
      )
      .execute();
  }

  async addQuotaDelta(policyIds: readonly string[], bytes: number): Promise<void> {
    if (policyIds.length === 0 || bytes === 0) return;
    await this.ctx.db
      .updateTable('quota_usage')
      .set((eb) => ({ delta_bytes: eb('delta_bytes', '+', bytes) }))
      .where('policy_id', 'in', [...policyIds])
      .execute();
  }

  async transitionQuota(policyId: string, from: string, to: string, now: number): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('quota_usage')
      .set({ state: to, state_changed_at: now })
      .where('policy_id', '=', policyId)
      .where('state', '=', from)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }
}

function toQuota(row: {
  policy_id: string;
  usage_bytes: number | string;
  delta_bytes: number | string;
  state: string;
  state_changed_at: number | string;
  computed_at: number | string;
}): QuotaUsageRecord {
  return {
    policyId: row.policy_id,
    usageBytes: Number(row.usage_bytes),
    deltaBytes: Number(row.delta_bytes),
    state: row.state,
    stateChangedAt: Number(row.state_changed_at),
    computedAt: Number(row.computed_at),
  };
}
