/**
 * The sync worker: the background work that reconciles rules (`reconciles.ts`) and copies queued
 * images (`copies.ts`), each a job kind of the lease runner (`jobs/runner.ts`). Started by
 * `App.listen()` and stopped by `App.close()`; several replicas may run it against one database,
 * because every reconcile and every image is claimed with a lease first, renewed by a heartbeat
 * while it runs, and handed back on failure or shutdown (`stop()` aborts what runs).
 *
 * One reconcile at a time per process; `sync.queueConcurrency` copies alongside. Both look for
 * work every `sync.workerIntervalMs` and at once on `nudge()` (a webhook queued something, an
 * on-demand run was asked for); a reconcile that queues an image wakes the copies.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { LeaseRunner, newOwnerId, type RunnerOptions } from '../jobs/runner.js';
import type { SyncMetadata } from '../metadata/sync-store.js';
import type { Metrics } from '../metrics/index.js';
import type { Registry } from '../registry/index.js';
import type { Clock } from '../shared/clock.js';
import { CopyJobs, type CopyResult, type RunningCopy } from './copies.js';
import { ReconcileJobs, type RunningReconcile } from './reconciles.js';
import type { SourcePool } from './sources.js';

export type SyncSettings = Config['sync'];

/** How often delivery ids older than the dedupe window are forgotten (at most). */
const pruneEveryMs = 60_000;

export class SyncWorker {
  /** This process's lease-holder id (both runners claim under it). */
  readonly owner = newOwnerId();
  private readonly reconciles: LeaseRunner<RunningReconcile>;
  private readonly copies: LeaseRunner<RunningCopy, CopyResult>;

  constructor(
    store: SyncMetadata,
    registry: Registry,
    sources: SourcePool,
    private readonly settings: SyncSettings,
    clock: Clock,
    logger: Logger,
    metrics?: Metrics,
  ) {
    const deps = { store, registry, sources, settings, clock, logger, metrics };
    const common: Omit<RunnerOptions, 'concurrency'> = {
      leaseMs: settings.leaseMs,
      pollMs: settings.workerIntervalMs,
      onStop: 'abort',
      clock,
      logger,
      owner: this.owner,
      metrics,
    };
    this.copies = new LeaseRunner(new CopyJobs(deps), {
      ...common,
      concurrency: settings.queueConcurrency,
      maintenance: { everyMs: pruneEveryMs, run: async (now) => void (await store.receipts.prune(now - settings.dedupeWindowMs)) },
    });
    this.reconciles = new LeaseRunner(new ReconcileJobs(deps, () => this.copies.wake()), { ...common, concurrency: 1 });
  }

  start(): void {
    if (!this.settings.enabled) return;
    this.reconciles.start();
    this.copies.start();
  }

  /** Look for work now (a webhook queued something, an on-demand run was asked for). */
  nudge(): void {
    this.reconciles.wake();
    this.copies.wake();
  }

  /** Stops claiming work, aborts what runs and waits for it to hand its claims back. */
  async stop(): Promise<void> {
    await Promise.all([this.reconciles.stop(), this.copies.stop()]);
  }
}
