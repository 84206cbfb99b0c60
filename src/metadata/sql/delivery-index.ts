/**
 * Webhook deliveries and their attempts in SQL (see metadata/event-store.ts).
 *
 * Leasing is `claimRows` (claim.ts): a conditional update per row decides who wins it, in either
 * dialect; on PostgreSQL the candidates are also locked `FOR UPDATE SKIP LOCKED` in the claim's
 * transaction, which spreads concurrent claims over different rows.
 */
import type { ExpressionBuilder, Selectable } from 'kysely';
import { sql } from '../kysely.js';
import type { AttemptRecord, ClaimedDelivery, DeliveryIndex, DeliveryRecord, DeliveryStatus, EventAction } from '../event-store.js';
import type { DeliveryAttemptsTable, Schema } from '../schema.js';
import type { ClaimRequest, Lease } from '../../shared/lease.js';
import { claimRows } from './claim.js';
import { storableText, type SqlContext } from './context.js';
import { toWebhookRecord } from './webhook-index.js';

type Joined = ExpressionBuilder<Schema & { d: Schema['deliveries']; e: Schema['events']; w: Schema['webhooks'] }, 'd' | 'e' | 'w'>;

/** Rule: a delivery of a disabled subscription waits until it is enabled again; pings go regardless. */
const deliverable = (eb: Joined) => eb.or([eb('w.enabled', '=', 1), eb('e.action', '=', 'ping')]);

function toAttempt(row: Selectable<DeliveryAttemptsTable>): AttemptRecord {
  return {
    cycle: Number(row.cycle),
    attempt: Number(row.attempt),
    at: Number(row.at),
    statusCode: row.status_code === null ? undefined : Number(row.status_code),
    error: row.error ?? undefined,
    latencyMs: Number(row.latency_ms),
    responseSnippet: row.response_snippet ?? undefined,
    ok: Number(row.ok) === 1,
  };
}

export class SqlDeliveryIndex implements DeliveryIndex {
  constructor(private readonly ctx: SqlContext) {}

  private selectDeliveries() {
    return this.ctx.db
      .selectFrom('deliveries as d')
      .innerJoin('events as e', 'e.id', 'd.event_id')
      .select([
        'd.id',
        'd.event_id',
        'd.subscription_id',
        'd.status',
        'd.attempts',
        'd.cycle',
        'd.next_attempt_at',
        'd.created_at',
        'd.updated_at',
        'e.action',
        'e.repository',
        'e.tags',
        'e.digest',
        'e.created_at as event_created_at',
      ]);
  }

  private async withLastAttempts(rows: Awaited<ReturnType<ReturnType<SqlDeliveryIndex['selectDeliveries']>['execute']>>): Promise<DeliveryRecord[]> {
    const last = new Map<string, AttemptRecord>();
    if (rows.length > 0) {
      // The newest attempt of each delivery: the greatest id per delivery_id.
      const newest = this.ctx.db
        .selectFrom('delivery_attempts')
        .select((eb) => eb.fn.max('id').as('id'))
        .where(
          'delivery_id',
          'in',
          rows.map((r) => r.id),
        )
        .groupBy('delivery_id');
      const attempts = await this.ctx.db.selectFrom('delivery_attempts').selectAll().where('id', 'in', newest).execute();
      for (const a of attempts) last.set(a.delivery_id, toAttempt(a));
    }
    return rows.map((row) => ({
      id: row.id,
      eventId: row.event_id,
      subscriptionId: row.subscription_id,
      status: row.status as DeliveryStatus,
      attempts: Number(row.attempts),
      cycle: Number(row.cycle),
      nextAttemptAt: Number(row.next_attempt_at),
      createdAt: Number(row.created_at),
      updatedAt: Number(row.updated_at),
      event: {
        action: row.action as EventAction,
        repository: row.repository ?? undefined,
        tags: JSON.parse(row.tags) as string[],
        digest: row.digest ?? undefined,
        createdAt: Number(row.event_created_at),
      },
      lastAttempt: last.get(row.id),
    }));
  }

  async claimDue(request: ClaimRequest): Promise<ClaimedDelivery[]> {
    const won = await claimRows(this.ctx, request, {
      leased: 'd',
      candidates: (db) =>
        db
          .selectFrom('deliveries as d')
          .innerJoin('webhooks as w', 'w.id', 'd.subscription_id')
          .innerJoin('events as e', 'e.id', 'd.event_id')
          .select('d.id')
          .where('d.status', '=', 'pending')
          .where('d.next_attempt_at', '<=', request.now)
          .where(deliverable)
          .orderBy('d.next_attempt_at'),
      take: (db, { id }) =>
        db.updateTable('deliveries').set({ claimed_by: request.owner, claimed_until: request.until }).where('id', '=', id).where('status', '=', 'pending'),
    });
    const claimed = won.map((row) => row.id);
    if (claimed.length === 0) return [];
    const deliveries = await this.withLastAttempts(await this.selectDeliveries().where('d.id', 'in', claimed).execute());
    const extra = await this.ctx.db
      .selectFrom('deliveries as d')
      .innerJoin('events as e', 'e.id', 'd.event_id')
      .innerJoin('webhooks as w', 'w.id', 'd.subscription_id')
      .selectAll('w')
      .select(['d.id as delivery_id', 'e.payload'])
      .where('d.id', 'in', claimed)
      .execute();
    const byId = new Map(extra.map((row) => [row.delivery_id, row]));
    return deliveries.flatMap((delivery) => {
      const row = byId.get(delivery.id);
      if (!row) return [];
      const { delivery_id: _delivery, payload, ...webhook } = row;
      return [{ delivery, payload, subscription: toWebhookRecord(webhook) }];
    });
  }

  async renew(delivery: { id: string; cycle: number }, lease: Lease): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('deliveries')
      .set({ claimed_until: lease.until })
      .where('id', '=', delivery.id)
      .where('cycle', '=', delivery.cycle)
      .where('status', '=', 'pending')
      .where('claimed_by', '=', lease.owner)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async complete(id: string, owner: string, attempt: AttemptRecord, next: { status: DeliveryStatus; nextAttemptAt: number }, now: number): Promise<boolean> {
    return this.ctx.transaction(async (trx) => {
      const held = await trx
        .selectFrom('deliveries')
        .select('id')
        .where('id', '=', id)
        .where('claimed_by', '=', owner)
        .where('cycle', '=', attempt.cycle)
        .executeTakeFirst();
      // The attempt happened whatever became of the lease: it is history either way (unless the
      // delivery itself is gone: its subscription was deleted meanwhile).
      const exists = held ?? (await trx.selectFrom('deliveries').select('id').where('id', '=', id).executeTakeFirst());
      if (!exists) return false;
      await trx
        .insertInto('delivery_attempts')
        .values({
          delivery_id: id,
          cycle: attempt.cycle,
          attempt: attempt.attempt,
          at: attempt.at,
          status_code: attempt.statusCode ?? null,
          error: storableText(attempt.error ?? null),
          latency_ms: attempt.latencyMs,
          response_snippet: storableText(attempt.responseSnippet ?? null),
          ok: attempt.ok ? 1 : 0,
        })
        .execute();
      if (!held) return false;
      // The lease condition again: on PostgreSQL another replica may have claimed the delivery
      // (this lease having run out) between the read above and this write.
      const updated = await trx
        .updateTable('deliveries')
        .set({
          status: next.status,
          attempts: attempt.attempt,
          next_attempt_at: next.nextAttemptAt,
          claimed_by: null,
          claimed_until: null,
          updated_at: now,
        })
        .where('id', '=', id)
        .where('claimed_by', '=', owner)
        .where('cycle', '=', attempt.cycle)
        .executeTakeFirst();
      return Number(updated.numUpdatedRows) === 1;
    });
  }

  async nextDueAt(): Promise<number | undefined> {
    // When the soonest pending delivery becomes claimable: its next attempt time, or its lease's end.
    const row = await this.ctx.db
      .selectFrom('deliveries as d')
      .innerJoin('webhooks as w', 'w.id', 'd.subscription_id')
      .innerJoin('events as e', 'e.id', 'd.event_id')
      .select(
        sql<
          number | string | null
        >`min(case when d.claimed_until is not null and d.claimed_until > d.next_attempt_at then d.claimed_until else d.next_attempt_at end)`.as('due'),
      )
      .where('d.status', '=', 'pending')
      .where(deliverable)
      .executeTakeFirst();
    return row?.due === null || row?.due === undefined ? undefined : Number(row.due);
  }

  async list(subscriptionId: string, filter: { status?: DeliveryStatus | undefined; eventId?: string | undefined; limit: number }): Promise<DeliveryRecord[]> {
    let query = this.selectDeliveries()
      .where('d.subscription_id', '=', subscriptionId)
      .orderBy('d.created_at', 'desc')
      .orderBy('d.id', 'desc')
      .limit(filter.limit);
    if (filter.status !== undefined) query = query.where('d.status', '=', filter.status);
    if (filter.eventId !== undefined) query = query.where('d.event_id', '=', filter.eventId);
    return this.withLastAttempts(await query.execute());
  }

  async get(subscriptionId: string, id: string): Promise<DeliveryRecord | undefined> {
    const rows = await this.selectDeliveries().where('d.subscription_id', '=', subscriptionId).where('d.id', '=', id).execute();
    return (await this.withLastAttempts(rows))[0];
  }

  async attempts(id: string): Promise<AttemptRecord[]> {
    const rows = await this.ctx.db.selectFrom('delivery_attempts').selectAll().where('delivery_id', '=', id).orderBy('id').execute();
    return rows.map(toAttempt);
  }

  async redeliver(subscriptionId: string, id: string, now: number): Promise<DeliveryRecord | undefined> {
    const result = await this.ctx.db
      .updateTable('deliveries')
      .set((eb) => ({
        status: 'pending',
        attempts: 0,
        cycle: eb('cycle', '+', 1),
        next_attempt_at: now,
        claimed_by: null,
        claimed_until: null,
        updated_at: now,
      }))
      .where('id', '=', id)
      .where('subscription_id', '=', subscriptionId)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return undefined;
    return this.get(subscriptionId, id);
  }

  async payload(eventId: string): Promise<string | undefined> {
    const row = await this.ctx.db.selectFrom('events').select('payload').where('id', '=', eventId).executeTakeFirst();
    return row?.payload;
  }
}
