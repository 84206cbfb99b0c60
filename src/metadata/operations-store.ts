/**
 * What operators' tools read from the metadata database: reachability for `/readyz`, and the
 * state behind the gauges of `/metrics` (backlogs and their ages, job states, GC runs). Counts over
 * indexed columns only: every scrape runs them. Rows in, rows out; the meaning is in `operations/`.
 */

export interface PoolStats {
  /** Connections open (idle or in use). */
  total: number;
  idle: number;
  /** Queries waiting for a connection (the pool is saturated when this stays above 0). */
  waiting: number;
  max: number;
}

export interface GcRunRecord {
  startedAt: number;
  finishedAt: number;
  status: 'succeeded' | 'failed';
  blobs: number;
  bytes: number;
  uploads: number;
}

export interface GcTotals {
  runs: Record<GcRunRecord['status'], number>;
  blobs: number;
  bytes: number;
  lastSuccessAt: number | undefined;
}

export interface SyncRuleBacklog {
  rule: string;
  /** Images queued (due or waiting for a retry). */
  queued: number;
  /** When the oldest of them was queued. */
  oldestQueuedAt: number | undefined;
  /** Images whose last attempt failed (their status keeps the error). */
  failing: number;
  lastSyncAt: number | undefined;
}

export interface OperationsIndex {
  /** One round trip to the database; throws when it cannot be reached. */
  ping(): Promise<void>;
  /** Names of the migrations this build knows that the database has not recorded (empty: up to date). */
  pendingMigrations(): Promise<string[]>;
  /** The connection pool (PostgreSQL); undefined for an embedded database. */
  pool(): PoolStats | undefined;
  /** The webhook outbox: events awaiting fan-out, pending deliveries (of enabled subscriptions), and the oldest pending one's event time. */
  outbox(): Promise<{ unfannedEvents: number; pendingDeliveries: number; oldestPendingAt: number | undefined }>;
  syncBacklog(): Promise<SyncRuleBacklog[]>;
  /** Import jobs per status. */
  importJobs(): Promise<Record<string, number>>;
  /** Upload sessions open. */
  openUploads(): Promise<number>;
  /** Audit entries waiting per export sink, and the oldest one's time. */
  auditExportBacklog(): Promise<Array<{ sink: string; pending: number; oldestAt: number | undefined }>>;
  recordGcRun(run: GcRunRecord): Promise<void>;
  gcTotals(): Promise<GcTotals>;
}
