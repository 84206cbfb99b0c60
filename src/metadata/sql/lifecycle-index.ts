/**
 * Lifecycle policies, their schedules and runs in SQL (`lifecycle-store.ts`). Runs are claimed with
 * the one claim helper (`claim.ts`); schedules advance by compare-and-set, so of several replicas
 * finding a schedule due exactly one starts its run.
 */
import { randomUUID } from 'node:crypto';
import type { ExpressionBuilder, Selectable } from 'kysely';
import type { ClaimRequest, Lease } from '../../shared/lease.js';
import type {
  LifecycleMetadata,
  NewRun,
  NewRunAction,
  PolicyIndex,
  PolicyRecord,
  RunActionRecord,
  RunIndex,
  RunRecord,
  RunStatusText,
  ScheduleIndex,
} from '../lifecycle-store.js';
import type { LifecyclePoliciesTable, LifecycleRunsTable, Schema } from '../schema.js';
import { claimRows } from './claim.js';
import { isUniqueViolation, storableText, type SqlContext } from './context.js';
import { SqlRepositoryStateIndex } from './repository-state-index.js';
import { SqlUsageIndex } from './usage-index.js';

/** Rows per INSERT of run actions (11 parameters a row). */
const actionChunk = 500;

function toPolicy(row: Selectable<LifecyclePoliciesTable>): PolicyRecord {
  return { id: row.id, kind: row.kind, name: row.name, spec: row.spec, createdAt: Number(row.created_at), updatedAt: Number(row.updated_at) };
}

const optional = (value: number | string | null) => (value === null ? undefined : Number(value));

function toRun(row: Selectable<LifecycleRunsTable>): RunRecord {
  return {
    id: row.id,
    kind: row.kind,
    policyId: row.policy_id ?? undefined,
    policyName: row.policy_name,
    spec: row.spec ?? undefined,
    dryRun: Number(row.dry_run) === 1,
    trigger: row.trigger as RunRecord['trigger'],
    requestedBy: row.requested_by ?? undefined,
    status: row.status as RunStatusText,
    attempts: Number(row.attempts),
    progress: row.progress ?? undefined,
    error: row.error ?? undefined,
    createdAt: Number(row.created_at),
    startedAt: optional(row.started_at),
    finishedAt: optional(row.finished_at),
    updatedAt: Number(row.updated_at),
  };
}

export class SqlPolicyIndex implements PolicyIndex {
  constructor(private readonly ctx: SqlContext) {}

  async list(kind?: string): Promise<PolicyRecord[]> {
    let query = this.ctx.db.selectFrom('lifecycle_policies').selectAll().orderBy('kind').orderBy('name');
    if (kind !== undefined) query = query.where('kind', '=', kind);
    return (await query.execute()).map(toPolicy);
  }

  async get(kind: string, name: string): Promise<PolicyRecord | undefined> {
    const row = await this.ctx.db.selectFrom('lifecycle_policies').selectAll().where('kind', '=', kind).where('name', '=', name).executeTakeFirst();
    return row && toPolicy(row);
  }

  async put(kind: string, name: string, spec: string, now: number): Promise<{ record: PolicyRecord; created: boolean }> {
    for (;;) {
      const updated = await this.ctx.db
        .updateTable('lifecycle_policies')
        .set({ spec, updated_at: now })
        .where('kind', '=', kind)
        .where('name', '=', name)
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 1) return { record: (await this.get(kind, name)) as PolicyRecord, created: false };
      try {
        await this.ctx.db.insertInto('lifecycle_policies').values({ id: randomUUID(), kind, name, spec, created_at: now, updated_at: now }).execute();
        return { record: (await this.get(kind, name)) as PolicyRecord, created: true };
      } catch (err) {
        // Created by a concurrent request between the update and the insert: update that one.
        if (!isUniqueViolation(err)) throw err;
      }
    }
  }

  async delete(kind: string, name: string): Promise<PolicyRecord | undefined> {
    return this.ctx.transaction(async (trx) => {
      const row = await trx.selectFrom('lifecycle_policies').selectAll().where('kind', '=', kind).where('name', '=', name).executeTakeFirst();
      if (!row) return undefined;
      await trx.deleteFrom('quota_usage').where('policy_id', '=', row.id).execute();
      await trx.deleteFrom('lifecycle_policies').where('id', '=', row.id).execute();
      return toPolicy(row);
    });
  }

  async version(): Promise<string> {
    const row = await this.ctx.db
      .selectFrom('lifecycle_policies')
      .select((eb) => [eb.fn.countAll<number | string>().as('count'), eb.fn.max('updated_at').as('latest')])
      .executeTakeFirst();
    return `${Number(row?.count ?? 0)}/${Number(row?.latest ?? 0)}`;
  }
}

export class SqlScheduleIndex implements ScheduleIndex {
  constructor(private readonly ctx: SqlContext) {}

  async set(name: string, nextAt: number): Promise<void> {
    await this.ctx.db
      .insertInto('lifecycle_schedule')
      .values({ name, next_at: nextAt })
      .onConflict((oc) => oc.column('name').doUpdateSet({ next_at: nextAt }))
      .execute();
  }

  async remove(name: string): Promise<void> {
    await this.ctx.db.deleteFrom('lifecycle_schedule').where('name', '=', name).execute();
  }

  async get(name: string): Promise<number | undefined> {
    const row = await this.ctx.db.selectFrom('lifecycle_schedule').select('next_at').where('name', '=', name).executeTakeFirst();
    return row ? Number(row.next_at) : undefined;
  }

  async due(now: number): Promise<Array<{ name: string; nextAt: number }>> {
    const rows = await this.ctx.db.selectFrom('lifecycle_schedule').selectAll().where('next_at', '<=', now).orderBy('next_at').orderBy('name').execute();
    return rows.map((row) => ({ name: row.name, nextAt: Number(row.next_at) }));
  }

  async advance(name: string, from: number, to: number): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('lifecycle_schedule')
      .set({ next_at: to })
      .where('name', '=', name)
      .where('next_at', '=', from)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }
}

/** Rule: a run may be claimed when it is queued, or running under a lapsed lease (its process died: the claim helper adds the lease condition). */
const runnable = (eb: ExpressionBuilder<Schema, 'lifecycle_runs'>) => eb('status', 'in', ['queued', 'running']);

export class SqlRunIndex implements RunIndex {
  constructor(private readonly ctx: SqlContext) {}

  async create(run: NewRun, now: number): Promise<RunRecord> {
    await this.ctx.db
      .insertInto('lifecycle_runs')
      .values({
        id: run.id,
        kind: run.kind,
        policy_id: run.policyId ?? null,
        policy_name: run.policyName,
        spec: run.spec ?? null,
        dry_run: run.dryRun ? 1 : 0,
        trigger: run.trigger,
        status: 'queued',
        requested_by: run.requestedBy ?? null,
        attempts: 0,
        claimed_by: null,
        claimed_until: null,
        progress: null,
        error: null,
        created_at: now,
        started_at: null,
        finished_at: null,
        updated_at: now,
      })
      .execute();
    return (await this.get(run.id)) as RunRecord;
  }

  async get(id: string): Promise<RunRecord | undefined> {
    const row = await this.ctx.db.selectFrom('lifecycle_runs').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toRun(row);
  }

  async list(filter: { policyName?: string | undefined; kind?: string | undefined; limit: number }): Promise<RunRecord[]> {
    let query = this.ctx.db.selectFrom('lifecycle_runs').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(filter.limit);
    if (filter.policyName !== undefined) query = query.where('policy_name', '=', filter.policyName);
    if (filter.kind !== undefined) query = query.where('kind', '=', filter.kind);
    return (await query.execute()).map(toRun);
  }

  async active(kind: string, policyName: string): Promise<RunRecord | undefined> {
    const row = await this.ctx.db
      .selectFrom('lifecycle_runs')
      .selectAll()
      .where('kind', '=', kind)
      .where('policy_name', '=', policyName)
      .where('status', 'in', ['queued', 'running'])
      .orderBy('created_at')
      .executeTakeFirst();
    return row && toRun(row);
  }

  async claim(request: ClaimRequest): Promise<RunRecord[]> {
    const { now } = request;
    const won = await claimRows(this.ctx, request, {
      leased: 'lifecycle_runs',
      candidates: (db) => db.selectFrom('lifecycle_runs').select('id').where(runnable).orderBy('created_at').orderBy('id'),
      take: (db, { id }) =>
        db
          .updateTable('lifecycle_runs')
          .set((eb) => ({
            status: 'running',
            claimed_by: request.owner,
            claimed_until: request.until,
            attempts: eb('attempts', '+', 1),
            started_at: eb.fn.coalesce('started_at', eb.val(now)),
            updated_at: now,
          }))
          .where('id', '=', id)
          .where(runnable),
    });
    if (won.length === 0) return [];
    const rows = await this.ctx.db
      .selectFrom('lifecycle_runs')
      .selectAll()
      .where(
        'id',
        'in',
        won.map((row) => row.id),
      )
      .where('claimed_by', '=', request.owner)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toRun);
  }

  async renew(id: string, lease: Lease): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('lifecycle_runs')
      .set({ claimed_until: lease.until, updated_at: lease.now })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .where('claimed_by', '=', lease.owner)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async saveProgress(id: string, owner: string, progress: string, now: number): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('lifecycle_runs')
      .set({ progress, updated_at: now })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .where('claimed_by', '=', owner)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async release(
    id: string,
    owner: string,
    outcome: { status: RunStatusText; progress?: string | undefined; error?: string | undefined },
    now: number,
  ): Promise<boolean> {
    const finished = outcome.status === 'succeeded' || outcome.status === 'failed';
    const result = await this.ctx.db
      .updateTable('lifecycle_runs')
      .set({
        status: outcome.status,
        claimed_by: null,
        claimed_until: null,
        updated_at: now,
        ...(outcome.progress !== undefined ? { progress: outcome.progress } : {}),
        ...(outcome.error !== undefined ? { error: storableText(outcome.error.slice(0, 2000)) } : {}),
        ...(finished ? { finished_at: now } : {}),
      })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .where('claimed_by', '=', owner)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async addActions(runId: string, actions: readonly NewRunAction[], now: number): Promise<void> {
    for (let start = 0; start < actions.length; start += actionChunk) {
      await this.ctx.db
        .insertInto('lifecycle_run_actions')
        .values(
          actions.slice(start, start + actionChunk).map((a) => ({
            run_id: runId,
            repository: a.repository,
            action: a.action,
            digest: a.digest,
            tags: JSON.stringify(a.tags),
            reason: storableText(a.reason),
            outcome: a.outcome,
            detail: a.detail === undefined ? null : storableText(a.detail),
            at: now,
          })),
        )
        .execute();
    }
  }

  async actions(runId: string, page: { after?: number | undefined; limit: number }): Promise<RunActionRecord[]> {
    let query = this.ctx.db.selectFrom('lifecycle_run_actions').selectAll().where('run_id', '=', runId).orderBy('id').limit(page.limit);
    if (page.after !== undefined) query = query.where('id', '>', page.after);
    return (await query.execute()).map((row) => ({
      id: Number(row.id),
      repository: row.repository,
      action: row.action,
      digest: row.digest,
      tags: JSON.parse(row.tags) as string[],
      reason: row.reason,
      outcome: row.outcome,
      detail: row.detail ?? undefined,
      at: Number(row.at),
    }));
  }

  async prune(cutoff: number): Promise<number> {
    return this.ctx.transaction(async (trx) => {
      const old = trx.selectFrom('lifecycle_runs').select('id').where('finished_at', '<', cutoff).where('status', 'in', ['succeeded', 'failed']);
      await trx.deleteFrom('lifecycle_run_actions').where('run_id', 'in', old).execute();
      const result = await trx.deleteFrom('lifecycle_runs').where('finished_at', '<', cutoff).where('status', 'in', ['succeeded', 'failed']).executeTakeFirst();
      return Number(result.numDeletedRows);
    });
  }
}

export function sqlLifecycleMetadata(ctx: SqlContext): LifecycleMetadata {
  return {
    policies: new SqlPolicyIndex(ctx),
    schedule: new SqlScheduleIndex(ctx),
    runs: new SqlRunIndex(ctx),
    state: new SqlRepositoryStateIndex(ctx),
    usage: new SqlUsageIndex(ctx),
  };
}
