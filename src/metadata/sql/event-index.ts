/**
 * The event outbox in SQL. `writeEvent` is called inside the transaction of the change an event
 * describes (the manifest index's put/delete/deleteTag, with the rows its caller's `ChangeOutbox`
 * built), so the event commits or rolls back with it. After a commit the writer calls
 * `EventNotifier.notify()`, which wakes this process's dispatcher at once; other replicas find the
 * event by polling.
 */
import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { EventAction, EventIndex, EventRecord, NewEvent } from '../event-store.js';
import type { EventsTable } from '../schema.js';
import type { Db, SqlContext } from './context.js';

/** Rows per INSERT or ids per UPDATE in a fan-out (11 parameters a row). */
const fanOutChunk = 500;

/** In-process "an event was committed" signal, shared by the writers and the dispatcher. */
export class EventNotifier {
  private readonly listeners = new Set<() => void>();

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Call after the transaction that wrote an event has committed. Listeners must not throw. */
  notify(): void {
    for (const listener of this.listeners) listener();
  }
}

/** Inserts the event row; must run inside the change's transaction. */
export async function writeEvent(db: Db, event: NewEvent, now: number): Promise<void> {
  await db
    .insertInto('events')
    .values({
      id: event.id,
      action: event.action,
      repository: event.repository ?? null,
      tags: JSON.stringify(event.tags),
      digest: event.digest ?? null,
      payload: event.payload,
      subscription_id: event.subscriptionId ?? null,
      created_at: now,
      fanned_out_at: null,
    })
    .execute();
}

function toRecord(row: Selectable<EventsTable>): EventRecord {
  return {
    id: row.id,
    action: row.action as EventAction,
    repository: row.repository ?? undefined,
    tags: JSON.parse(row.tags) as string[],
    digest: row.digest ?? undefined,
    payload: row.payload,
    subscriptionId: row.subscription_id ?? undefined,
    createdAt: Number(row.created_at),
    fannedOutAt: row.fanned_out_at === null ? undefined : Number(row.fanned_out_at),
  };
}

export class SqlEventIndex implements EventIndex {
  constructor(
    private readonly ctx: SqlContext,
    private readonly notifier: EventNotifier,
  ) {}

  async append(event: NewEvent, now: number): Promise<void> {
    await writeEvent(this.ctx.db, event, now);
    this.notifier.notify();
  }

  async get(id: string): Promise<EventRecord | undefined> {
    const row = await this.ctx.db.selectFrom('events').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toRecord(row);
  }

  async pendingFanOut(limit: number): Promise<EventRecord[]> {
    const rows = await this.ctx.db
      .selectFrom('events')
      .selectAll()
      .where('fanned_out_at', 'is', null)
      .orderBy('created_at')
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toRecord);
  }

  async fanOut(events: ReadonlyArray<{ eventId: string; subscriptionIds: readonly string[] }>, now: number): Promise<number> {
    if (events.length === 0) return 0;
    const rows = events.flatMap(({ eventId, subscriptionIds }) =>
      subscriptionIds.map((subscriptionId) => ({
        id: randomUUID(),
        event_id: eventId,
        subscription_id: subscriptionId,
        status: 'pending',
        attempts: 0,
        cycle: 0,
        next_attempt_at: now,
        claimed_by: null,
        claimed_until: null,
        created_at: now,
        updated_at: now,
      })),
    );
    return this.ctx.transaction(async (trx) => {
      let created = 0;
      // Chunks keep each statement well under the databases' bound-parameter limits.
      for (let start = 0; start < rows.length; start += fanOutChunk) {
        // The unique (event_id, subscription_id) key makes this idempotent across replicas and restarts.
        const result = await trx
          .insertInto('deliveries')
          .values(rows.slice(start, start + fanOutChunk))
          .onConflict((oc) => oc.columns(['event_id', 'subscription_id']).doNothing())
          .executeTakeFirst();
        created += Number(result.numInsertedOrUpdatedRows ?? 0);
      }
      const ids = events.map((e) => e.eventId);
      for (let start = 0; start < ids.length; start += fanOutChunk) {
        await trx
          .updateTable('events')
          .set({ fanned_out_at: now })
          .where('id', 'in', ids.slice(start, start + fanOutChunk))
          .where('fanned_out_at', 'is', null)
          .execute();
      }
      // An event no subscription wanted has nothing to deliver or show: drop it now rather than
      // keep every push's payload for the retention period (most registries have few webhooks).
      const unwanted = events.filter((e) => e.subscriptionIds.length === 0).map((e) => e.eventId);
      for (let start = 0; start < unwanted.length; start += fanOutChunk) {
        await trx
          .deleteFrom('events')
          .where('id', 'in', unwanted.slice(start, start + fanOutChunk))
          .where(({ not, exists, selectFrom }) =>
            not(exists(selectFrom('deliveries').select('deliveries.id').whereRef('deliveries.event_id', '=', 'events.id'))),
          )
          .execute();
      }
      return created;
    });
  }

  async prune(cutoff: number): Promise<number> {
    // Deliveries and attempts go with their event (ON DELETE CASCADE).
    const result = await this.ctx.db
      .deleteFrom('events')
      .where('created_at', '<', cutoff)
      .where('fanned_out_at', 'is not', null)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(selectFrom('deliveries').select('deliveries.id').whereRef('deliveries.event_id', '=', 'events.id').where('deliveries.status', '=', 'pending')),
        ),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  onAppended(listener: () => void): () => void {
    return this.notifier.subscribe(listener);
  }
}
