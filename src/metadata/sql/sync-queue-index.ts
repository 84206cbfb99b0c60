/**
 * The sync work queue over Kysely (SQLite and PostgreSQL alike): one row per (rule, source
 * repository, tag), claimed with `claimRows` (claim.ts); every later write of a claimed row is
 * guarded by the owner. Inserts that may race use `ON CONFLICT DO NOTHING` and fall back to an update.
 */
import type { Selectable } from 'kysely';
import type { ClaimRequest, Lease } from '../../shared/lease.js';
import type { SyncQueueTable } from '../schema.js';
import type { EnqueueResult, SyncQueueEntry, SyncQueueIndex, SyncWorkItem } from '../sync-store.js';
import { claimRows } from './claim.js';
import { storableText, type Db, type SqlContext } from './context.js';

type Key = Pick<SyncQueueTable, 'rule_id' | 'repository' | 'tag'>;

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

export class SqlSyncQueueIndex implements SyncQueueIndex {
  constructor(private readonly ctx: SqlContext) {}

  enqueue(item: SyncQueueEntry, now: number): Promise<EnqueueResult> {
    return this.ctx.transaction((trx) => enqueueIn(trx, item, now));
  }

  async claim(request: ClaimRequest): Promise<SyncWorkItem[]> {
    const won = await claimRows(this.ctx, request, {
      leased: 'sync_queue',
      candidates: (db) =>
        db
          .selectFrom('sync_queue')
          .innerJoin('sync_rules', 'sync_rules.id', 'sync_queue.rule_id')
          .select(['sync_queue.rule_id', 'sync_queue.repository', 'sync_queue.tag'])
          .where('sync_rules.enabled', '=', 1)
          .where('sync_queue.not_before', '<=', request.now)
          .orderBy('sync_queue.not_before')
          .orderBy('sync_queue.enqueued_at'),
      take: (db, key) =>
        db
          .updateTable('sync_queue')
          .set({ claimed_by: request.owner, claimed_until: request.until })
          .where('rule_id', '=', key.rule_id)
          .where('repository', '=', key.repository)
          .where('tag', '=', key.tag),
    });
    const claimed: SyncWorkItem[] = [];
    for (const key of won) {
      // Read after the claim: a notification may have bumped the version since the candidates were chosen.
      const row = await this.row(this.ctx.db, key);
      if (row) claimed.push(toItem(row));
    }
    return claimed;
  }

  async renew(item: SyncWorkItem, lease: Lease): Promise<boolean> {
    const result = await this.updateClaimed(item, lease.owner).set({ claimed_until: lease.until }).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async complete(item: SyncWorkItem, owner: string): Promise<void> {
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

  async release(item: SyncWorkItem, owner: string): Promise<void> {
    await this.updateClaimed(item, owner).set({ claimed_by: null, claimed_until: null }).execute();
  }

  async defer(item: SyncWorkItem, owner: string, notBefore: number, note: string): Promise<void> {
    await this.updateClaimed(item, owner)
      .set({ claimed_by: null, claimed_until: null, not_before: notBefore, last_error: storableText(note) })
      .execute();
  }

  async retry(item: SyncWorkItem, owner: string, notBefore: number, error: string): Promise<void> {
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

  async summary(ruleId: string): Promise<{ pending: number; running: number; failing: number }> {
    const rows = await this.ctx.db.selectFrom('sync_queue').select(['claimed_until', 'attempts']).where('rule_id', '=', ruleId).execute();
    return {
      pending: rows.length,
      running: rows.filter((r) => r.claimed_until !== null).length,
      failing: rows.filter((r) => Number(r.attempts) > 0).length,
    };
  }

  async list(ruleId: string, limit: number): Promise<SyncWorkItem[]> {
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

  private row(db: Db, key: Key): Promise<Selectable<SyncQueueTable> | undefined> {
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
export async function enqueueIn(db: Db, item: SyncQueueEntry, now: number): Promise<EnqueueResult> {
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
