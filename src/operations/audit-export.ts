/**
 * The audit export: every audit entry goes to every configured sink (`audit.export.sinks`), at
 * least once, through the same machinery as webhooks: an outbox written with the entry
 * (`AuditIndex.append` queues a row per sink in the entry's transaction) and the lease runner
 * (`jobs/runner.ts`), one runner per sink claiming a batch at a time. A receiver that is down
 * leaves the rows in the outbox, retried with exponential backoff and full jitter for as long as it
 * takes; nothing is dropped (except by removing the sink from the configuration, which drops its
 * queue at the next start, or by audit-log retention deleting entries never exported).
 *
 * Order: entries go oldest first within a sink; a batch that fails is retried whole, and replicas
 * may each hold a batch of the same sink at once, so receivers dedupe on the entry id and must not
 * assume strict order across retries.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { LeaseRunner, type JobKind, type Lease, type Outcome } from '../jobs/runner.js';
import type { AuditExportIndex, ClaimedAuditExport } from '../metadata/audit-export-store.js';
import type { Metrics } from '../metrics/index.js';
import type { Clock } from '../shared/clock.js';
import { CloudEventsSink } from './sinks/cloudevents.js';
import type { AuditSink } from './sinks/sink.js';
import { SyslogSink } from './sinks/syslog.js';

export type AuditExportSettings = Config['audit']['export'];

interface Batch {
  rows: ClaimedAuditExport[];
}

export interface AuditExporterDependencies {
  store: AuditExportIndex;
  settings: AuditExportSettings;
  clock: Clock;
  logger: Logger;
  metrics?: Metrics | undefined;
  /** For backoff jitter; injectable so tests can pin it. */
  random?: () => number;
  /** The sinks; by default built from `settings.sinks`. */
  sinks?: AuditSink[];
}

export class AuditExporter {
  readonly sinks: readonly AuditSink[];
  private readonly runners: Array<LeaseRunner<Batch>>;
  private started = false;

  constructor(private readonly deps: AuditExporterDependencies) {
    this.sinks = deps.sinks ?? deps.settings.sinks.map(buildSink);
    this.runners = this.sinks.map(
      (sink) =>
        new LeaseRunner(new ExportJobs(sink, deps), {
          concurrency: 1,
          // A batch is bounded by the sink's timeout; the lease outlives it and is renewed meanwhile.
          leaseMs: 60_000,
          pollMs: deps.settings.pollIntervalMs,
          onStop: 'abort',
          clock: deps.clock,
          logger: deps.logger,
          metrics: deps.metrics,
        }),
    );
  }

  /** The configured sink names (what `AuditIndex.append` queues entries for). */
  get sinkNames(): string[] {
    return this.sinks.map((sink) => sink.name);
  }

  /** Starts exporting; first drops the queues of sinks no longer configured. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.deps.store.dropOtherSinks(this.sinkNames).then(
      (dropped) => dropped > 0 && this.deps.logger.warn({ dropped }, 'audit export: dropped the queue of sinks no longer configured'),
      (err: unknown) => this.deps.logger.warn({ err }, 'audit export: could not drop the queues of removed sinks'),
    );
    for (const runner of this.runners) runner.start();
  }

  /** Looks for entries now (one was just recorded). */
  wake(): void {
    for (const runner of this.runners) runner.wake(20);
  }

  async stop(): Promise<void> {
    await Promise.all(this.runners.map((runner) => runner.stop()));
    await Promise.all(this.sinks.map((sink) => sink.close()));
    this.started = false;
  }
}

function buildSink(settings: AuditExportSettings['sinks'][number]): AuditSink {
  if (settings.type === 'cloudevents') return new CloudEventsSink(settings);
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(settings.address);
  if (!match) throw new Error(`audit.export.sinks ${settings.name}: address must be HOST:PORT`);
  return new SyslogSink({
    name: settings.name,
    host: match[1] ?? (match[2] || '127.0.0.1'),
    port: Number(match[3]),
    tls: settings.tls,
    caFile: settings.caFile,
    serverName: settings.serverName,
    facility: settings.facility,
    timeoutMs: settings.timeoutMs,
  });
}

/** One sink's outbox as a job kind: claim a batch, send it, remove it or hand it back for a retry. */
class ExportJobs implements JobKind<Batch> {
  readonly name = 'audit export';
  private readonly exported;
  private readonly failures;

  constructor(
    private readonly sink: AuditSink,
    private readonly deps: AuditExporterDependencies,
  ) {
    this.exported = deps.metrics?.counter('berth_audit_exported_total', 'Audit entries an export sink acknowledged.', ['sink']).labels(sink.name);
    this.failures = deps.metrics
      ?.counter('berth_audit_export_failures_total', 'Audit export batches that failed (and are retried).', ['sink'])
      .labels(sink.name);
  }

  key(batch: Batch): string {
    return `${this.sink.name}:${batch.rows[0]?.entry.id ?? 0}`;
  }

  async claim(_limit: number, lease: Lease): Promise<Batch[]> {
    const rows = await this.deps.store.claim(this.sink.name, { ...lease, limit: this.deps.settings.batchSize });
    return rows.length > 0 ? [{ rows }] : [];
  }

  renew(batch: Batch, lease: Lease): Promise<boolean> {
    return this.deps.store.renew(this.sink.name, ids(batch), lease);
  }

  nextDueAt(): Promise<number | undefined> {
    return this.deps.store.nextDueAt(this.sink.name);
  }

  async run(batch: Batch, signal: AbortSignal): Promise<void> {
    await this.sink.send(
      batch.rows.map((row) => row.entry),
      signal,
    );
  }

  async release(batch: Batch, outcome: Outcome<void>, owner: string): Promise<void> {
    const { store, clock, logger, settings } = this.deps;
    const entryIds = ids(batch);
    if (outcome.status === 'done') {
      await store.complete(this.sink.name, entryIds, owner);
      this.exported?.inc(entryIds.length);
      return;
    }
    if (outcome.status === 'aborted') {
      await store.release(this.sink.name, entryIds, owner, clock.now());
      return;
    }
    const attempts = Math.max(...batch.rows.map((row) => row.attempts)) + 1;
    const ceiling = Math.min(settings.backoff.maxMs, settings.backoff.baseMs * 2 ** Math.min(attempts - 1, 40));
    const delay = Math.floor((this.deps.random ?? Math.random)() * ceiling);
    const error = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
    this.failures?.inc();
    logger.warn({ sink: this.sink.name, entries: entryIds.length, attempts, retryInMs: delay, error }, 'audit export batch failed; will retry');
    await store.release(this.sink.name, entryIds, owner, clock.now() + delay, error);
  }
}

function ids(batch: Batch): number[] {
  return batch.rows.map((row) => row.entry.id);
}
