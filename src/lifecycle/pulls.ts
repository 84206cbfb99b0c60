/**
 * Last-pull tracking without a write per pull: a manifest read records (repository, digest, time) in
 * an in-memory map, one entry per manifest however often it is pulled, and a timer writes the map in
 * one batch every `flushIntervalMs` (and at shutdown, and early when `maxBuffered` manifests wait).
 * The write keeps the later of the stored and the buffered time, so every replica writes its own
 * buffer into the shared table in any order (`RepositoryStateIndex.recordPulls`).
 *
 * What can be lost: pulls buffered when a process dies without shutting down (at most one interval
 * of them). A lost pull only makes an image look less recently pulled than it was, and only for
 * pulls in that interval; retention's minimum age and `notPulledFor` are hours or days.
 */
import type { Logger } from 'pino';
import type { RepositoryStateIndex } from '../metadata/lifecycle-store.js';
import type { Metrics } from '../metrics/index.js';
import type { Clock } from '../shared/clock.js';

export interface PullTrackerOptions {
  flushIntervalMs: number;
  maxBuffered: number;
}

export class PullTracker {
  private buffer = new Map<string, { repository: string; digest: string; at: number }>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private readonly flushed;
  private readonly failed;

  constructor(
    private readonly store: Pick<RepositoryStateIndex, 'recordPulls'>,
    private readonly clock: Clock,
    private readonly options: PullTrackerOptions,
    private readonly logger: Logger,
    metrics: Metrics,
  ) {
    this.flushed = metrics.counter(
      'berth_lifecycle_pulls_written_total',
      'Manifests whose last pull was written to the database (one per manifest per flush).',
    );
    this.failed = metrics.counter('berth_lifecycle_pull_flush_failures_total', 'Batches of last pulls that could not be written (kept for the next flush).');
    metrics.gauge('berth_lifecycle_pulls_buffered', 'Manifests with a pull waiting in memory for the next flush.', [], (gauge) => gauge.set(this.buffer.size));
  }

  /** Records a pull (the hot path: a map write, nothing else). */
  record = (repository: string, digest: string): void => {
    const key = `${repository}@${digest}`;
    const entry = this.buffer.get(key);
    const at = this.clock.now();
    if (entry) entry.at = at;
    else {
      this.buffer.set(key, { repository, digest, at });
      if (this.buffer.size >= this.options.maxBuffered) void this.flush();
    }
  };

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush(), this.options.flushIntervalMs);
    this.timer.unref();
  }

  /** Stops the timer and writes what is buffered. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /** Writes the buffer now (one write at a time; a failed batch goes back into the buffer, newer times winning). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.buffer.size === 0) return;
    const batch = this.buffer;
    this.buffer = new Map();
    this.flushing = this.store
      .recordPulls([...batch.values()])
      .then(
        () => this.flushed.inc(batch.size),
        (err: unknown) => {
          this.failed.inc();
          this.logger.warn({ err, manifests: batch.size }, 'could not write last pulls; they are kept for the next flush');
          for (const [key, entry] of batch) {
            const newer = this.buffer.get(key);
            if (!newer || newer.at < entry.at) this.buffer.set(key, entry);
          }
        },
      )
      .finally(() => (this.flushing = undefined));
    await this.flushing;
  }
}
