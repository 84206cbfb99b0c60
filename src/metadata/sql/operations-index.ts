/** `OperationsIndex` in SQL: the counts behind `/metrics` and the checks behind `/readyz`. */
import { sql } from '../kysely.js';
import { migrations } from '../migrations/index.js';
import type { GcRunRecord, GcTotals, OperationsIndex, PoolStats, SyncRuleBacklog } from '../operations-store.js';
import type { SqlContext } from './context.js';

export class SqlOperationsIndex implements OperationsIndex {
  /** Once every known migration is recorded it stays so (a newer build only adds later ones). */
  private migrated = false;

  constructor(
    private readonly ctx: SqlContext,
    private readonly poolStats: (() => PoolStats) | undefined,
  ) {}

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.ctx.db);
  }

  async pendingMigrations(): Promise<string[]> {
    if (this.migrated) return [];
    const rows = await sql<{ name: string }>`select name from kysely_migration`.execute(this.ctx.db);
    const recorded = new Set(rows.rows.map((row) => row.name));
    const pending = migrations.map(([name]) => name).filter((name) => !recorded.has(name));
    this.migrated = pending.length === 0;
    return pending;
  }

  pool(): PoolStats | undefined {
    return this.poolStats?.();
  }

  async outbox(): Promise<{ unfannedEvents: number; pendingDeliveries: number; oldestPendingAt: number | undefined }> {
    const { db } = this.ctx;
    const events = await db
      .selectFrom('events')
      .select((eb) => [eb.fn.countAll<number>().as('count'), eb.fn.min('created_at').as('oldest')])
      .where('fanned_out_at', 'is', null)
      .executeTakeFirstOrThrow();
    // Deliveries of a disabled subscription wait on purpose (as the dispatcher skips them): not a backlog.
    const deliveries = await db
      .selectFrom('deliveries as d')
      .innerJoin('events as e', 'e.id', 'd.event_id')
      .innerJoin('webhooks as w', 'w.id', 'd.subscription_id')
      .select((eb) => [eb.fn.countAll<number>().as('count'), eb.fn.min('e.created_at').as('oldest')])
      .where('d.status', '=', 'pending')
      .where((eb) => eb.or([eb('w.enabled', '=', 1), eb('e.action', '=', 'ping')]))
      .executeTakeFirstOrThrow();
    const oldest = [events.oldest, deliveries.oldest].filter((value) => value !== null).map(Number);
    return {
      unfannedEvents: Number(events.count),
      pendingDeliveries: Number(deliveries.count),
      oldestPendingAt: oldest.length > 0 ? Math.min(...oldest) : undefined,
    };
  }

  async syncBacklog(): Promise<SyncRuleBacklog[]> {
    const { db } = this.ctx;
    const queued = await db
      .selectFrom('sync_rules as r')
      .leftJoin('sync_queue as q', 'q.rule_id', 'r.id')
      .select((eb) => ['r.id', 'r.name', 'r.last_sync_at', eb.fn.count<number>('q.rule_id').as('queued'), eb.fn.min('q.enqueued_at').as('oldest')])
      .groupBy(['r.id', 'r.name', 'r.last_sync_at'])
      .orderBy('r.name')
      .execute();
    const failing = await db
      .selectFrom('sync_images')
      .select((eb) => ['rule_id', eb.fn.countAll<number>().as('count')])
      .where('last_error', 'is not', null)
      .groupBy('rule_id')
      .execute();
    const failingByRule = new Map(failing.map((row) => [row.rule_id, Number(row.count)]));
    return queued.map((row) => ({
      rule: row.name,
      queued: Number(row.queued),
      oldestQueuedAt: row.oldest === null ? undefined : Number(row.oldest),
      failing: failingByRule.get(row.id) ?? 0,
      lastSyncAt: row.last_sync_at === null ? undefined : Number(row.last_sync_at),
    }));
  }

  async importJobs(): Promise<Record<string, number>> {
    const rows = await this.ctx.db
      .selectFrom('import_jobs')
      .select((eb) => ['status', eb.fn.countAll<number>().as('count')])
      .groupBy('status')
      .execute();
    return Object.fromEntries(rows.map((row) => [row.status, Number(row.count)]));
  }

  async openUploads(): Promise<number> {
    const row = await this.ctx.db
      .selectFrom('uploads')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }

  async auditExportBacklog(): Promise<Array<{ sink: string; pending: number; oldestAt: number | undefined }>> {
    const rows = await this.ctx.db
      .selectFrom('audit_exports as x')
      .innerJoin('audit_log as a', 'a.id', 'x.entry_id')
      .select((eb) => ['x.sink', eb.fn.countAll<number>().as('count'), eb.fn.min('a.at').as('oldest')])
      .groupBy('x.sink')
      .orderBy('x.sink')
      .execute();
    return rows.map((row) => ({ sink: row.sink, pending: Number(row.count), oldestAt: row.oldest === null ? undefined : Number(row.oldest) }));
  }

  async recordGcRun(run: GcRunRecord): Promise<void> {
    await this.ctx.db
      .insertInto('gc_runs')
      .values({
        started_at: run.startedAt,
        finished_at: run.finishedAt,
        status: run.status,
        blobs: run.blobs,
        bytes: run.bytes,
        uploads: run.uploads,
      })
      .execute();
  }

  async gcTotals(): Promise<GcTotals> {
    const rows = await this.ctx.db
      .selectFrom('gc_runs')
      .select((eb) => [
        'status',
        eb.fn.countAll<number>().as('runs'),
        eb.fn.sum<number>('blobs').as('blobs'),
        eb.fn.sum<number>('bytes').as('bytes'),
        eb.fn.max('finished_at').as('last'),
      ])
      .groupBy('status')
      .execute();
    const totals: GcTotals = { runs: { succeeded: 0, failed: 0 }, blobs: 0, bytes: 0, lastSuccessAt: undefined };
    for (const row of rows) {
      if (row.status !== 'succeeded' && row.status !== 'failed') continue;
      totals.runs[row.status] = Number(row.runs);
      totals.blobs += Number(row.blobs ?? 0);
      totals.bytes += Number(row.bytes ?? 0);
      if (row.status === 'succeeded' && row.last !== null) totals.lastSuccessAt = Number(row.last);
    }
    return totals;
  }
}
