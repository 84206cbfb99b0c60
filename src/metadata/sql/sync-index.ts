/**
 * The sync tables over Kysely (SQLite and PostgreSQL alike): rules, the lease-claimed work queue,
 * per-image status and delivery ids. Claims are conditional updates (`… WHERE claimed_until IS
 * NULL OR claimed_until < now`) whose row count says whether this process won, so they are safe
 * across replicas in either dialect (on PostgreSQL queue candidates are also selected SKIP LOCKED,
 * to spread concurrent claims); inserts that may race use `ON CONFLICT DO NOTHING` and fall back
 * to an update.
 */
import { sql, type Selectable } from 'kysely';
import type { EnqueueResult, ReconcileStats, SyncImageStatus, SyncIndex, SyncRuleRecord, SyncWorkItem } from '../sync-store.js';
import type { SyncQueueTable, SyncRulesTable, SyncImagesTable } from '../schema.js';
import type { SyncRule, SyncRuleSpec } from '../../sync/rule.js';
import { storableText, type Db, type SqlContext } from './context.js';

type EnqueueInput = Parameters<SyncIndex['enqueue']>[0];

const num = (value: number | string | bigint | null): number | null => (value === null ? null : Number(value));

function toRule(row: Selectable<SyncRulesTable>): SyncRuleRecord {
  const spec = JSON.parse(row.spec) as SyncRuleSpec;
  return {
    ...spec,
    id: row.id,
    name: row.name,
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

function toItem(row: Selectable<SyncQueueTable>): SyncWorkItem {
  return {
    ruleId: row.rule_id,
    repository: row.repository,
    tag: row.tag,
    digest: row.digest,
    reason: row.reason as SyncWorkItem['reason'],
    version: Number(row.version),
    enqueuedAt: Number(row.enqueued_at),
    notBefore: Number(row.not_before),
    attempts: Number(row.attempts),
    lastError: row.last_error,
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

function specJson(rule: SyncRuleSpec): string {
  const spec: SyncRuleSpec = {
    source: rule.source,
    repositories: rule.repositories,
    tags: rule.tags,
    destinationPrefix: rule.destinationPrefix,
    triggers: rule.triggers,
    limits: rule.limits,
    includeReferrers: rule.includeReferrers,
  };
  return JSON.stringify(spec);
}

export class SqlSyncIndex implements SyncIndex {
  constructor(private readonly ctx: SqlContext) {}

  async createRule(rule: SyncRule, firstReconcileAt: number | null): Promise<boolean> {
    const result = await this.ctx.db
      .insertInto('sync_rules')
      .values({
        id: rule.id,
        name: rule.name,
        spec: specJson(rule),
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

  async getRule(id: string): Promise<SyncRuleRecord | undefined> {
    const row = await this.ctx.db.selectFrom('sync_rules').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toRule(row);
  }

  async findRuleByName(name: string): Promise<SyncRuleRecord | undefined> {
    const row = await this.ctx.db.selectFrom('sync_rules').selectAll().where('name', '=', name).executeTakeFirst();
    return row && toRule(row);
  }

  async listRules(): Promise<SyncRuleRecord[]> {
    const rows = await this.ctx.db.selectFrom('sync_rules').selectAll().orderBy('name').execute();
    return rows.map(toRule);
  }

  async updateRule(
    id: string,
    change: { spec: SyncRuleSpec; enabled: boolean; webhookSecret: string | null; nextReconcileAt: number | null; now: number },
  ): Promise<void> {
    await this.ctx.db
      .updateTable('sync_rules')
      .set({
        spec: specJson(change.spec),
        enabled: change.enabled ? 1 : 0,
        webhook_secret: change.webhookSecret,
        next_reconcile_at: change.nextReconcileAt,
        updated_at: change.now,
      })
      .where('id', '=', id)
      .execute();
  }

  async deleteRule(id: string): Promise<boolean> {
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

  async claimDueRule(owner: string, now: number, leaseUntil: number): Promise<SyncRuleRecord | undefined> {
    const candidates = await this.ctx.db
      .selectFrom('sync_rules')
      .select('id')
      .where('enabled', '=', 1)
      .where((eb) => eb.or([eb('reconcile_claimed_until', 'is', null), eb('reconcile_claimed_until', '<', now)]))
      .where((eb) => eb.or([eb('run_requested_at', 'is not', null), eb('next_reconcile_at', '<=', now)]))
      .orderBy(sql`coalesce(run_requested_at, next_reconcile_at)`)
      .limit(5)
      .execute();
    for (const { id } of candidates) {
      const result = await this.ctx.db
        .updateTable('sync_rules')
        .set({
          reconcile_claimed_by: owner,
          reconcile_claimed_until: leaseUntil,
          last_reconcile_started_at: now,
          run_requested_at: null,
        })
        .where('id', '=', id)
        .where('enabled', '=', 1)
        .where((eb) => eb.or([eb('reconcile_claimed_until', 'is', null), eb('reconcile_claimed_until', '<', now)]))
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 1) return this.getRule(id);
    }
    return undefined;
  }

  async renewRuleLease(id: string, owner: string, leaseUntil: number, stats: ReconcileStats): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('sync_rules')
      .set({ reconcile_claimed_until: leaseUntil, last_reconcile_stats: JSON.stringify(stats) })
      .where('id', '=', id)
      .where('reconcile_claimed_by', '=', owner)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async finishReconcile(
    id: string,
    owner: string,
    outcome: { at: number; error: string | null; stats: ReconcileStats; nextReconcileAt: number | null; backfilled: boolean; clearsRuleError: boolean },
  ): Promise<void> {
    await this.ctx.db
      .updateTable('sync_rules')
      .set((eb) => ({
        reconcile_claimed_by: null,
        reconcile_claimed_until: null,
        last_reconcile_at: outcome.at,
        last_reconcile_error: storableText(outcome.error),
        last_reconcile_stats: JSON.stringify(outcome.stats),
        next_reconcile_at: outcome.nextReconcileAt,
        backfilled_at: outcome.backfilled ? eb.fn.coalesce('backfilled_at', eb.val(outcome.at)) : eb.ref('backfilled_at'),
        ...(outcome.clearsRuleError ? { last_error: null, last_error_at: null } : {}),
      }))
      .where('id', '=', id)
      .where('reconcile_claimed_by', '=', owner)
      .execute();
  }

  async recordRuleOutcome(id: string, outcome: { syncedAt?: number; error?: string; at: number }): Promise<void> {
    await this.ctx.db
      .updateTable('sync_rules')
      .set({
        ...(outcome.syncedAt !== undefined ? { last_sync_at: outcome.syncedAt } : {}),
        ...(outcome.error !== undefined ? { last_error: storableText(outcome.error), last_error_at: outcome.at } : {}),
      })
      .where('id', '=', id)
      .execute();
  }

  enqueue(item: EnqueueInput, now: number): Promise<EnqueueResult> {
    return this.ctx.transaction((trx) => enqueueIn(trx, item, now));
  }

  acceptDelivery(eventId: string, item: EnqueueInput, now: number): Promise<EnqueueResult | 'duplicate'> {
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

  async claimItems(owner: string, limit: number, now: number, leaseUntil: number): Promise<SyncWorkItem[]> {
    if (limit <= 0) return [];
    // PostgreSQL: the candidates are locked SKIP LOCKED until the claim commits, so workers on
    // several replicas take different items instead of racing for the same first few.
    if (this.ctx.dialect === 'postgres') return this.ctx.transaction((trx) => this.claimItemsIn(trx, owner, limit, now, leaseUntil, true));
    return this.claimItemsIn(this.ctx.db, owner, limit, now, leaseUntil, false);
  }

  private async claimItemsIn(db: Db, owner: string, limit: number, now: number, leaseUntil: number, skipLocked: boolean): Promise<SyncWorkItem[]> {
    const query = db
      .selectFrom('sync_queue')
      .innerJoin('sync_rules', 'sync_rules.id', 'sync_queue.rule_id')
      .selectAll('sync_queue')
      .where('sync_rules.enabled', '=', 1)
      .where('sync_queue.not_before', '<=', now)
      .where((eb) => eb.or([eb('sync_queue.claimed_until', 'is', null), eb('sync_queue.claimed_until', '<', now)]))
      .orderBy('sync_queue.not_before')
      .orderBy('sync_queue.enqueued_at')
      .limit(limit * 2);
    const candidates = await (skipLocked ? query.forUpdate('sync_queue').skipLocked() : query).execute();
    const claimed: SyncWorkItem[] = [];
    for (const row of candidates) {
      if (claimed.length >= limit) break;
      const result = await db
        .updateTable('sync_queue')
        .set({ claimed_by: owner, claimed_until: leaseUntil })
        .where('rule_id', '=', row.rule_id)
        .where('repository', '=', row.repository)
        .where('tag', '=', row.tag)
        .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', now)]))
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) continue;
      // Re-read: a notification may have bumped the version between the select and the claim.
      const fresh = await this.itemRow(db, row);
      if (fresh) claimed.push(toItem(fresh));
    }
    return claimed;
  }

  async renewItemLease(item: SyncWorkItem, owner: string, leaseUntil: number): Promise<boolean> {
    const result = await this.updateClaimed(item, owner).set({ claimed_until: leaseUntil }).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async completeItem(item: SyncWorkItem, owner: string): Promise<void> {
    const deleted = await this.ctx.db
      .deleteFrom('sync_queue')
      .where('rule_id', '=', item.ruleId)
      .where('repository', '=', item.repository)
      .where('tag', '=', item.tag)
      .where('claimed_by', '=', owner)
      .where('version', '=', item.version)
      .executeTakeFirst();
    if (Number(deleted.numDeletedRows) === 1) return;
    // Newer information arrived while this claim ran: hand the item back, due at once.
    await this.updateClaimed(item, owner).set({ claimed_by: null, claimed_until: null, attempts: 0, last_error: null }).execute();
  }

  async releaseItem(item: SyncWorkItem, owner: string): Promise<void> {
    await this.updateClaimed(item, owner).set({ claimed_by: null, claimed_until: null }).execute();
  }

  async deferItem(item: SyncWorkItem, owner: string, notBefore: number, note: string): Promise<void> {
    await this.updateClaimed(item, owner)
      .set({ claimed_by: null, claimed_until: null, not_before: notBefore, last_error: storableText(note) })
      .execute();
  }

  async retryItem(item: SyncWorkItem, owner: string, notBefore: number, error: string): Promise<void> {
    await this.updateClaimed(item, owner)
      .set((eb) => ({ claimed_by: null, claimed_until: null, not_before: notBefore, last_error: storableText(error), attempts: eb('attempts', '+', 1) }))
      .execute();
  }

  /** An update of `item`'s queue row that applies only while `owner` still holds its claim. */
  private updateClaimed(item: SyncWorkItem, owner: string) {
    return this.ctx.db
      .updateTable('sync_queue')
      .where('rule_id', '=', item.ruleId)
      .where('repository', '=', item.repository)
      .where('tag', '=', item.tag)
      .where('claimed_by', '=', owner);
  }

  async queueSummary(ruleId: string): Promise<{ pending: number; running: number; failing: number }> {
    const rows = await this.ctx.db.selectFrom('sync_queue').select(['claimed_until', 'attempts']).where('rule_id', '=', ruleId).execute();
    return {
      pending: rows.length,
      running: rows.filter((r) => r.claimed_until !== null).length,
      failing: rows.filter((r) => Number(r.attempts) > 0).length,
    };
  }

  async listQueue(ruleId: string, limit: number): Promise<SyncWorkItem[]> {
    const rows = await this.ctx.db
      .selectFrom('sync_queue')
      .selectAll()
      .where('rule_id', '=', ruleId)
      .orderBy('enqueued_at')
      .orderBy('repository')
      .orderBy('tag')
      .limit(limit)
      .execute();
    return rows.map(toItem);
  }

  async recordImage(
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

  async listImages(ruleId: string, filter: { repository?: string | undefined; limit: number }): Promise<SyncImageStatus[]> {
    let query = this.ctx.db.selectFrom('sync_images').selectAll().where('rule_id', '=', ruleId);
    if (filter.repository !== undefined) query = query.where('repository', '=', filter.repository);
    const rows = await query.orderBy('repository').orderBy('tag').limit(filter.limit).execute();
    return rows.map(toImage);
  }

  async knownRepositories(ruleId: string): Promise<string[]> {
    const rows = await this.ctx.db.selectFrom('sync_images').select('repository').distinct().where('rule_id', '=', ruleId).orderBy('repository').execute();
    return rows.map((row) => row.repository);
  }

  async pruneDeliveries(cutoff: number): Promise<number> {
    const result = await this.ctx.db.deleteFrom('sync_deliveries').where('received_at', '<', cutoff).executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  private itemRow(db: Db, key: { rule_id: string; repository: string; tag: string }): Promise<Selectable<SyncQueueTable> | undefined> {
    return db
      .selectFrom('sync_queue')
      .selectAll()
      .where('rule_id', '=', key.rule_id)
      .where('repository', '=', key.repository)
      .where('tag', '=', key.tag)
      .executeTakeFirst();
  }
}

/**
 * One item per (rule, repository, tag). A new key is inserted; an existing one changes only when
 * the notification says something new (another digest, or none: "look again"), which bumps its
 * version so a claim already running hands it back when it finishes. Its retry schedule is kept:
 * a source that asked us to slow down is not hit again because more notifications came in.
 */
async function enqueueIn(db: Db, item: EnqueueInput, now: number): Promise<EnqueueResult> {
  // Twice at most: the row may be completed (deleted) between the conflicting insert and the read.
  for (let attempt = 0; attempt < 2; attempt++) {
    const inserted = await db
      .insertInto('sync_queue')
      .values({
        rule_id: item.ruleId,
        repository: item.repository,
        tag: item.tag,
        digest: item.digest,
        reason: item.reason,
        version: 1,
        enqueued_at: now,
        not_before: now,
        attempts: 0,
        last_error: null,
        claimed_by: null,
        claimed_until: null,
      })
      .onConflict((oc) => oc.columns(['rule_id', 'repository', 'tag']).doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 1) return 'queued';
    const existing = await db
      .selectFrom('sync_queue')
      .select(['digest'])
      .where('rule_id', '=', item.ruleId)
      .where('repository', '=', item.repository)
      .where('tag', '=', item.tag)
      .executeTakeFirst();
    if (!existing) continue;
    if (item.digest !== null && existing.digest === item.digest) return 'unchanged';
    await db
      .updateTable('sync_queue')
      .set((eb) => ({ digest: item.digest, reason: item.reason, version: eb('version', '+', 1), enqueued_at: now }))
      .where('rule_id', '=', item.ruleId)
      .where('repository', '=', item.repository)
      .where('tag', '=', item.tag)
      .execute();
    return 'updated';
  }
  throw new Error(`sync queue item ${item.repository}:${item.tag} kept vanishing while being queued`);
}
