/**
 * The sync tables over Kysely (SQLite and PostgreSQL alike), one class per index of
 * `SyncMetadata`: rules, their reconcile runs, per-image status and received delivery ids (the
 * queue is in sync-queue-index.ts). Reconciles are claimed with `claimRows` (claim.ts); inserts
 * that may race use `ON CONFLICT DO NOTHING` and fall back to an update.
 */
import type { Selectable } from 'kysely';
import { sql } from '../kysely.js';
import type { ClaimRequest, Lease } from '../../shared/lease.js';
import type { SyncImagesTable, SyncRulesTable } from '../schema.js';
import type {
  EnqueueResult,
  NewSyncRule,
  ReconcileStats,
  SyncImageIndex,
  SyncImageStatus,
  SyncMetadata,
  SyncQueueEntry,
  SyncReceiptIndex,
  SyncReconcileIndex,
  SyncRuleIndex,
  SyncRuleRow,
} from '../sync-store.js';
import { claimRows } from './claim.js';
import { later, storableText, type SqlContext } from './context.js';
import { SqlSyncQueueIndex, enqueueIn } from './sync-queue-index.js';

const num = (value: number | string | bigint | null): number | null => (value === null ? null : Number(value));

/** The sync indexes over one database. */
export function sqlSyncMetadata(ctx: SqlContext): SyncMetadata {
  return {
    rules: new SqlSyncRuleIndex(ctx),
    reconciles: new SqlSyncReconcileIndex(ctx),
    queue: new SqlSyncQueueIndex(ctx),
    images: new SqlSyncImageIndex(ctx),
    receipts: new SqlSyncReceiptIndex(ctx),
  };
}

function toRule(row: Selectable<SyncRulesTable>): SyncRuleRow {
  return {
    id: row.id,
    name: row.name,
    spec: row.spec,
    enabled: Number(row.enabled) === 1,
    webhookSecret: row.webhook_secret,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    state: {
      nextReconcileAt: num(row.next_reconcile_at),
      runRequestedAt: num(row.run_requested_at),
      reconcileLeaseUntil: num(row.reconcile_claimed_until),
      lastReconcileStartedAt: num(row.last_reconcile_started_at),
      lastReconcileAt: num(row.last_reconcile_at),
      lastReconcileError: row.last_reconcile_error,
      lastReconcileStats: row.last_reconcile_stats === null ? null : (JSON.parse(row.last_reconcile_stats) as ReconcileStats),
      backfilledAt: num(row.backfilled_at),
      lastSyncAt: num(row.last_sync_at),
      lastError: row.last_error,
      lastErrorAt: num(row.last_error_at),
    },
  };
}

function toImage(row: Selectable<SyncImagesTable>): SyncImageStatus {
  return {
    ruleId: row.rule_id,
    repository: row.repository,
    tag: row.tag,
    sourceDigest: row.source_digest,
    digest: row.digest,
    lastCheckedAt: num(row.last_checked_at),
    lastSyncAt: num(row.last_sync_at),
    lastError: row.last_error,
    lastErrorAt: num(row.last_error_at),
    copies: Number(row.copies),
  };
}

export class SqlSyncRuleIndex implements SyncRuleIndex {
  constructor(private readonly ctx: SqlContext) {}

  async create(rule: NewSyncRule, firstReconcileAt: number | null): Promise<boolean> {
    const result = await this.ctx.db
      .insertInto('sync_rules')
      .values({
        id: rule.id,
        name: rule.name,
        spec: rule.spec,
        webhook_secret: rule.webhookSecret,
        enabled: rule.enabled ? 1 : 0,
        created_at: rule.createdAt,
        updated_at: rule.updatedAt,
        next_reconcile_at: firstReconcileAt,
        run_requested_at: null,
        reconcile_claimed_by: null,
        reconcile_claimed_until: null,
        last_reconcile_started_at: null,
        last_reconcile_at: null,
        last_reconcile_error: null,
        last_reconcile_stats: null,
        backfilled_at: null,
        last_sync_at: null,
        last_error: null,
        last_error_at: null,
      })
      .onConflict((oc) => oc.column('name').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  async get(id: string): Promise<SyncRuleRow | undefined> {
    const row = await this.ctx.db.selectFrom('sync_rules').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toRule(row);
  }

  async findByName(name: string): Promise<SyncRuleRow | undefined> {
    const row = await this.ctx.db.selectFrom('sync_rules').selectAll().where('name', '=', name).executeTakeFirst();
    return row && toRule(row);
  }

  async list(): Promise<SyncRuleRow[]> {
    const rows = await this.ctx.db.selectFrom('sync_rules').selectAll().orderBy('name').execute();
    return rows.map(toRule);
  }

  async update(
    id: string,
    change: { spec: string; enabled: boolean; webhookSecret: string | null; nextReconcileAt: number | null; now: number },
  ): Promise<void> {
    await this.ctx.db
      .updateTable('sync_rules')
      .set({
        spec: change.spec,
        enabled: change.enabled ? 1 : 0,
        webhook_secret: change.webhookSecret,
        next_reconcile_at: change.nextReconcileAt,
        updated_at: change.now,
      })
      .where('id', '=', id)
      .execute();
  }

  async delete(id: string): Promise<boolean> {
    return this.ctx.transaction(async (trx) => {
      // Explicit rather than relying on ON DELETE CASCADE, which SQLite honours only with foreign_keys on.
      await trx.deleteFrom('sync_queue').where('rule_id', '=', id).execute();
      await trx.deleteFrom('sync_images').where('rule_id', '=', id).execute();
      await trx.deleteFrom('sync_deliveries').where('rule_id', '=', id).execute();
      const result = await trx.deleteFrom('sync_rules').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    });
  }

  async requestRun(id: string, now: number): Promise<void> {
    await this.ctx.db.updateTable('sync_rules').set({ run_requested_at: now }).where('id', '=', id).execute();
  }

  async recordOutcome(id: string, outcome: { syncedAt?: number; error?: string; at: number }): Promise<void> {
    await this.ctx.db
      .updateTable('sync_rules')
      .set({
        ...(outcome.syncedAt !== undefined ? { last_sync_at: outcome.syncedAt } : {}),
        ...(outcome.error !== undefined ? { last_error: storableText(outcome.error), last_error_at: outcome.at } : {}),
      })
      .where('id', '=', id)
      .execute();
  }
}

export class SqlSyncReconcileIndex implements SyncReconcileIndex {
  constructor(private readonly ctx: SqlContext) {}

  async claim(request: ClaimRequest): Promise<SyncRuleRow[]> {
    const { now } = request;
    const won = await claimRows(this.ctx, request, {
      leased: 'sync_rules',
      expiry: 'reconcile_claimed_until',
      candidates: (db) =>
        db
          .selectFrom('sync_rules')
          .select('id')
          .where('enabled', '=', 1)
          .where((eb) => eb.or([eb('run_requested_at', 'is not', null), eb('next_reconcile_at', '<=', now)]))
          .orderBy(sql`coalesce(run_requested_at, next_reconcile_at)`),
      take: (db, { id }) =>
        db
          .updateTable('sync_rules')
          .set({
            reconcile_claimed_by: request.owner,
            reconcile_claimed_until: request.until,
            // A reconcile that takes a run request serves it: it reads the source after this update,
            // so after the request. Its start is recorded as no earlier than the request, which is
            // what a caller waiting for "a reconcile started at or after my request" compares. The
            // claimer's `now` can predate a request that landed while it was on its way (read before
            // the claim's query ran), and with it recorded the caller would wait for a run that has
            // been done already.
            last_reconcile_started_at: later('run_requested_at', now),
            run_requested_at: null,
          })
          .where('id', '=', id)
          .where('enabled', '=', 1),
    });
    if (won.length === 0) return [];
    const rows = await this.ctx.db
      .selectFrom('sync_rules')
      .selectAll()
      .where(
        'id',
        'in',
        won.map((row) => row.id),
      )
      .execute();
    return rows.map(toRule);
  }

  async renew(ruleId: string, lease: Lease, stats: ReconcileStats): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('sync_rules')
      .set({ reconcile_claimed_until: lease.until, last_reconcile_stats: JSON.stringify(stats) })
      .where('id', '=', ruleId)
      .where('reconcile_claimed_by', '=', lease.owner)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async finish(
    ruleId: string,
    owner: string,
    outcome: { at: number; error: string | null; stats: ReconcileStats; nextReconcileAt: number | null; backfilled: boolean; clearsRuleError: boolean },
  ): Promise<void> {
    await this.ctx.db
      .updateTable('sync_rules')
      .set((eb) => ({
        reconcile_claimed_by: null,
        reconcile_claimed_until: null,
        // Never before the recorded start (see claim: a start can be a request's time, from another
        // replica's clock), so "finished after it started" holds for whoever waits on the pair.
        last_reconcile_at: later('last_reconcile_started_at', outcome.at),
        last_reconcile_error: storableText(outcome.error),
        last_reconcile_stats: JSON.stringify(outcome.stats),
        next_reconcile_at: outcome.nextReconcileAt,
        backfilled_at: outcome.backfilled ? eb.fn.coalesce('backfilled_at', eb.val(outcome.at)) : eb.ref('backfilled_at'),
        ...(outcome.clearsRuleError ? { last_error: null, last_error_at: null } : {}),
      }))
      .where('id', '=', ruleId)
      .where('reconcile_claimed_by', '=', owner)
      .execute();
  }
}

export class SqlSyncImageIndex implements SyncImageIndex {
  constructor(private readonly ctx: SqlContext) {}

  async record(
    status: { ruleId: string; repository: string; tag: string } & Partial<Omit<SyncImageStatus, 'ruleId' | 'repository' | 'tag' | 'copies'>> & {
        copied?: boolean;
      },
  ): Promise<void> {
    const fields = {
      ...(status.sourceDigest !== undefined ? { source_digest: status.sourceDigest } : {}),
      ...(status.digest !== undefined ? { digest: status.digest } : {}),
      ...(status.lastCheckedAt !== undefined ? { last_checked_at: status.lastCheckedAt } : {}),
      ...(status.lastSyncAt !== undefined ? { last_sync_at: status.lastSyncAt } : {}),
      ...(status.lastError !== undefined ? { last_error: storableText(status.lastError) } : {}),
      ...(status.lastErrorAt !== undefined ? { last_error_at: status.lastErrorAt } : {}),
    };
    await this.ctx.transaction(async (trx) => {
      const inserted = await trx
        .insertInto('sync_images')
        .values({
          rule_id: status.ruleId,
          repository: status.repository,
          tag: status.tag,
          source_digest: null,
          digest: null,
          last_checked_at: null,
          last_sync_at: null,
          last_error: null,
          last_error_at: null,
          ...fields,
          copies: status.copied ? 1 : 0,
        })
        .onConflict((oc) => oc.columns(['rule_id', 'repository', 'tag']).doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 1) return;
      if (Object.keys(fields).length === 0 && !status.copied) return;
      await trx
        .updateTable('sync_images')
        .set((eb) => ({ ...fields, ...(status.copied ? { copies: eb('copies', '+', 1) } : {}) }))
        .where('rule_id', '=', status.ruleId)
        .where('repository', '=', status.repository)
        .where('tag', '=', status.tag)
        .execute();
    });
  }

  async list(ruleId: string, filter: { repository?: string | undefined; limit: number }): Promise<SyncImageStatus[]> {
    let query = this.ctx.db.selectFrom('sync_images').selectAll().where('rule_id', '=', ruleId);
    if (filter.repository !== undefined) query = query.where('repository', '=', filter.repository);
    const rows = await query.orderBy('repository').orderBy('tag').limit(filter.limit).execute();
    return rows.map(toImage);
  }

  async repositories(ruleId: string): Promise<string[]> {
    const rows = await this.ctx.db.selectFrom('sync_images').select('repository').distinct().where('rule_id', '=', ruleId).orderBy('repository').execute();
    return rows.map((row) => row.repository);
  }
}

export class SqlSyncReceiptIndex implements SyncReceiptIndex {
  constructor(private readonly ctx: SqlContext) {}

  accept(eventId: string, item: SyncQueueEntry, now: number): Promise<EnqueueResult | 'duplicate'> {
    return this.ctx.transaction(async (trx) => {
      const recorded = await trx
        .insertInto('sync_deliveries')
        .values({ rule_id: item.ruleId, event_id: eventId, received_at: now })
        .onConflict((oc) => oc.columns(['rule_id', 'event_id']).doNothing())
        .executeTakeFirst();
      if (Number(recorded.numInsertedOrUpdatedRows ?? 0n) === 0) return 'duplicate';
      return enqueueIn(trx, item, now);
    });
  }

  async prune(cutoff: number): Promise<number> {
    const result = await this.ctx.db.deleteFrom('sync_deliveries').where('received_at', '<', cutoff).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
