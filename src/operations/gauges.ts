/**
 * The metrics that describe state kept in the database rather than events in this process:
 * backlogs and their ages (the webhook outbox, sync queues, the audit export), import jobs by
 * state, open upload sessions, garbage-collection runs (`berth gc` runs in its own process and
 * records each run), and the PostgreSQL pool. They are read at scrape time, all from one snapshot
 * (at most one per second, shared by concurrent scrapes).
 *
 * Every replica reports the same database-wide values: aggregate them with `max`, not `sum`.
 * A scrape while the database is down still answers, with the last values (and the failure
 * logged): `/readyz` is what says the database is unreachable.
 */
import type { Logger } from 'pino';
import type { OperationsIndex, GcTotals, PoolStats, SyncRuleBacklog } from '../metadata/operations-store.js';
import type { Metrics } from '../metrics/index.js';
import type { Clock } from '../shared/clock.js';

interface Snapshot {
  at: number;
  outbox: { unfannedEvents: number; pendingDeliveries: number; oldestPendingAt: number | undefined };
  sync: SyncRuleBacklog[];
  imports: Record<string, number>;
  uploads: number;
  audit: Array<{ sink: string; pending: number; oldestAt: number | undefined }>;
  gc: GcTotals;
}

/** How long one snapshot serves scrapes. */
const snapshotMs = 1000;
/** Import job states, always reported (0 when none), so a dashboard's series do not come and go. */
const importStates = ['queued', 'running', 'succeeded', 'failed'];

export function registerStateGauges(metrics: Metrics, store: OperationsIndex, clock: Clock, logger: Logger, auditSinks: readonly string[]): void {
  let last: Snapshot | undefined;
  let loading: Promise<Snapshot | undefined> | undefined;
  const snapshot = (): Promise<Snapshot | undefined> => {
    if (last && clock.now() - last.at < snapshotMs) return Promise.resolve(last);
    loading ??= read(store, clock)
      .then(
        (taken) => (last = taken),
        (err: unknown) => {
          logger.warn({ err }, 'metrics: could not read state from the metadata database; reporting the last values');
          return last;
        },
      )
      .finally(() => (loading = undefined));
    return loading;
  };
  const age = (at: number | undefined, now: number) => (at === undefined ? 0 : Math.max(0, (now - at) / 1000));

  metrics.gauge(
    'berth_webhook_outbox_pending',
    'Webhook work waiting: events not yet fanned out (stage=fan_out) and deliveries not yet delivered (stage=delivery).',
    ['stage'],
    async (g) => {
      const s = await snapshot();
      if (!s) return;
      g.set({ stage: 'fan_out' }, s.outbox.unfannedEvents);
      g.set({ stage: 'delivery' }, s.outbox.pendingDeliveries);
    },
  );
  metrics.gauge(
    'berth_webhook_outbox_oldest_pending_age_seconds',
    'Age of the oldest event with webhook work still pending (0 with none): a stuck outbox grows it.',
    [],
    async (g) => {
      const s = await snapshot();
      if (s) g.set(age(s.outbox.oldestPendingAt, s.at));
    },
  );
  metrics.gauge('berth_sync_queue_depth', 'Images queued for copying, per sync rule.', ['rule'], async (g) => {
    const s = await snapshot();
    if (!s) return;
    g.reset();
    for (const rule of s.sync) g.set({ rule: rule.rule }, rule.queued);
  });
  metrics.gauge('berth_sync_lag_seconds', 'Per sync rule: how long the oldest queued image has waited (0 when the queue is empty).', ['rule'], async (g) => {
    const s = await snapshot();
    if (!s) return;
    g.reset();
    for (const rule of s.sync) g.set({ rule: rule.rule }, age(rule.oldestQueuedAt, s.at));
  });
  metrics.gauge('berth_sync_images_failing', 'Per sync rule: images whose last sync attempt failed.', ['rule'], async (g) => {
    const s = await snapshot();
    if (!s) return;
    g.reset();
    for (const rule of s.sync) g.set({ rule: rule.rule }, rule.failing);
  });
  metrics.gauge(
    'berth_sync_last_success_timestamp_seconds',
    'Per sync rule: when it last copied an image (Unix seconds; absent before the first).',
    ['rule'],
    async (g) => {
      const s = await snapshot();
      if (!s) return;
      g.reset();
      for (const rule of s.sync) if (rule.lastSyncAt !== undefined) g.set({ rule: rule.rule }, rule.lastSyncAt / 1000);
    },
  );
  metrics.gauge('berth_import_jobs', 'Import jobs by state.', ['state'], async (g) => {
    const s = await snapshot();
    if (!s) return;
    g.reset();
    for (const state of new Set([...importStates, ...Object.keys(s.imports)])) g.set({ state }, s.imports[state] ?? 0);
  });
  metrics.gauge('berth_registry_upload_sessions_open', 'Blob upload sessions open (started, not yet completed, cancelled or expired).', [], async (g) => {
    const s = await snapshot();
    if (s) g.set(s.uploads);
  });
  metrics.gauge('berth_audit_export_pending', 'Audit entries not yet taken by an export sink.', ['sink'], async (g) => {
    const s = await snapshot();
    if (!s) return;
    g.reset();
    const pending = new Map(s.audit.map((row) => [row.sink, row.pending]));
    for (const sink of new Set([...auditSinks, ...pending.keys()])) g.set({ sink }, pending.get(sink) ?? 0);
  });
  metrics.gauge(
    'berth_audit_export_oldest_pending_age_seconds',
    'Age of the oldest audit entry an export sink has not taken (0 with none).',
    ['sink'],
    async (g) => {
      const s = await snapshot();
      if (!s) return;
      g.reset();
      const oldest = new Map(s.audit.map((row) => [row.sink, row.oldestAt]));
      for (const sink of new Set([...auditSinks, ...oldest.keys()])) g.set({ sink }, age(oldest.get(sink), s.at));
    },
  );
  // GC runs are counted in the database by `berth gc`; exposed as counters read from there.
  metrics.counter('berth_gc_runs_total', 'Garbage-collection runs recorded (`berth gc`), by status.', ['status'], async (c) => {
    const s = await snapshot();
    if (!s) return;
    c.reset();
    for (const [status, runs] of Object.entries(s.gc.runs)) c.inc({ status }, runs);
  });
  metrics.counter('berth_gc_freed_bytes_total', 'Bytes of blobs deleted by garbage collection.', [], async (c) => {
    const s = await snapshot();
    if (!s) return;
    c.reset();
    c.inc(s.gc.bytes);
  });
  metrics.counter('berth_gc_freed_blobs_total', 'Blobs deleted by garbage collection.', [], async (c) => {
    const s = await snapshot();
    if (!s) return;
    c.reset();
    c.inc(s.gc.blobs);
  });
  metrics.gauge('berth_gc_last_success_timestamp_seconds', 'When garbage collection last succeeded (Unix seconds; 0 before the first run).', [], async (g) => {
    const s = await snapshot();
    if (s) g.set((s.gc.lastSuccessAt ?? 0) / 1000);
  });
  const pool = store.pool();
  if (pool) registerPoolGauges(metrics, store);
}

/** PostgreSQL connection pool use: saturation shows as `waiting` staying above 0 with every connection in use. */
function registerPoolGauges(metrics: Metrics, store: OperationsIndex): void {
  const stats = (): PoolStats | undefined => store.pool();
  metrics.gauge('berth_metadata_pool_connections', 'PostgreSQL pool connections by state (idle, active).', ['state'], (g) => {
    const s = stats();
    if (!s) return;
    g.set({ state: 'idle' }, s.idle);
    g.set({ state: 'active' }, s.total - s.idle);
  });
  metrics.gauge('berth_metadata_pool_waiting', 'Queries waiting for a PostgreSQL pool connection.', [], (g) => {
    const s = stats();
    if (s) g.set(s.waiting);
  });
  metrics.gauge('berth_metadata_pool_max', 'Size limit of the PostgreSQL pool (metadata.poolSize).', [], (g) => {
    const s = stats();
    if (s) g.set(s.max);
  });
}

async function read(store: OperationsIndex, clock: Clock): Promise<Snapshot> {
  const [outbox, sync, imports, uploads, audit, gc] = await Promise.all([
    store.outbox(),
    store.syncBacklog(),
    store.importJobs(),
    store.openUploads(),
    store.auditExportBacklog(),
    store.gcTotals(),
  ]);
  return { at: clock.now(), outbox, sync, imports, uploads, audit, gc };
}
