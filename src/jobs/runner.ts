/**
 * One lease runner for background work kept in the metadata database: webhook deliveries, sync
 * reconciles and copies, import jobs (and later retention runs, audit exports, cache fills). Written
 * by hand because the queue is rows in Berth's own tables shared by replicas, and job libraries bring
 * their own storage (Redis, their own tables) and their own leases.
 *
 * A job kind ({@link JobKind}) says how to claim, renew, run and release its items; the runner owns
 * everything around that:
 * - **Wake-ups.** `wake()` after a local write runs a cycle at once (coalesced with one running or
 *   already due); every `pollMs` a cycle looks for work written by other replicas, sooner when the
 *   kind's `nextDueAt` says an item falls due before then. A cycle runs `maintenance` (at most every
 *   `maintenance.everyMs`), the kind's `prepare`, then claims.
 * - **Concurrency.** At most `concurrency` items run at once: a cycle claims only the free slots, and
 *   an item that ends wakes the runner to fill its slot.
 * - **Heartbeats.** A running item's lease is renewed every third of `leaseMs` (see `renewEveryMs`),
 *   so one slow or failed renewal still leaves time for the next before the lease lapses.
 * - **Abort.** `run` gets a signal, aborted with a {@link LeaseLost} reason when `renew` answers false
 *   (another owner has the item, or it is gone), or with {@link Stopping} when the runner stops in
 *   `abort` mode.
 * - **Release.** Exactly one `release(item, outcome, owner)` per claimed item, once `run` settled (or
 *   instead of running it, for an item claimed while stopping in `abort` mode). If it fails, the
 *   lease runs out and the item is claimed again: work is done at least once, never lost.
 * - **Stop.** `stop()` claims nothing more; in `finish` mode running items end by themselves, in
 *   `abort` mode they are aborted. It resolves when every claimed item has been released.
 *
 * What a kind promises:
 * - `claim(limit, lease)` leases at most `limit` due items to `lease.owner` until `lease.until`, in
 *   storage that lets no two owners hold one item, and returns them.
 * - `renew(item, lease)` extends the lease to `lease.until` if `lease.owner` still holds it, and says
 *   whether it did. A renewal that throws (the database is busy) is logged and tried again later.
 * - `run(item, signal)` does the work. Its value is the `done` outcome; a rejection is `failed`, or
 *   `aborted` once the signal is aborted. It should stop soon after an abort (or ignore the signal,
 *   if it is short and bounded, like one webhook attempt).
 * - `release(item, outcome, owner)` records the outcome and gives the lease up, with writes guarded
 *   by `owner` (after a lost lease they change nothing).
 * Steps that fail (claim, prepare, maintenance) are logged and run again on the next cycle.
 *
 * Observability: with `metrics`, runs by outcome, run durations, items running, takeovers (an item
 * claimed after another owner's lease lapsed) and lost leases, all labelled by the kind's name;
 * every run is the root span of its own trace (`metrics/tracing.ts`, when tracing is configured).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Counter, Gauge, Histogram } from 'prom-client';
import { latencyBuckets, type Metrics } from '../metrics/index.js';
import { tracer } from '../metrics/tracing.js';
import type { Clock } from '../shared/clock.js';
import type { Lease } from '../shared/lease.js';

export type { Lease };

/** How a run ended, as `release` receives it. */
export type Outcome<Result> =
  { status: 'done'; value: Result } | { status: 'failed'; error: unknown } | { status: 'aborted'; reason: 'stopping' | 'lease-lost' };

export interface JobKind<Item, Result = void> {
  /** Names the kind in logs ("webhook delivery"). */
  readonly name: string;
  /** Identifies an item (one item never runs twice at once in a runner). */
  key(item: Item): string;
  claim(limit: number, lease: Lease): Promise<Item[]>;
  renew(item: Item, lease: Lease): Promise<boolean>;
  run(item: Item, signal: AbortSignal): Promise<Result>;
  release(item: Item, outcome: Outcome<Result>, owner: string): Promise<void>;
  /** Runs at the start of every cycle, before claiming (for example: create items from an outbox). True: run another cycle at once (there is more). */
  prepare?(): Promise<boolean>;
  /** When the next item falls due, if the kind can tell (a retry's time): the runner polls then if it is sooner than `pollMs`. */
  nextDueAt?(): Promise<number | undefined>;
}

export interface RunnerOptions {
  /** Items run at once by this runner. */
  concurrency: number;
  /** Lease length; renewed every third of it while an item runs. */
  leaseMs: number;
  /** How often to look for work written by other replicas. */
  pollMs: number;
  /** What `stop()` does to running items: let them end (`finish`) or abort them (`abort`). */
  onStop: 'finish' | 'abort';
  clock: Clock;
  logger: Logger;
  /** Periodic housekeeping (pruning old rows): run in a cycle at most every `everyMs`, and in the first. */
  maintenance?: { everyMs: number; run(now: number): Promise<void> };
  /** The lease owner id; by default `host/pid/random`, unique per runner. */
  owner?: string;
  /** Where runs, takeovers and lost leases are counted (by the kind's name). */
  metrics?: Metrics | undefined;
}

/** The runner's families, shared by every kind (labelled by its name). */
interface RunnerMetrics {
  runs: Counter<'kind' | 'outcome'>;
  duration: Histogram<'kind'>;
  running: Gauge<'kind'>;
  takeovers: Counter<'kind'>;
  lost: Counter<'kind'>;
}

function runnerMetrics(metrics: Metrics): RunnerMetrics {
  return {
    runs: metrics.counter('berth_jobs_runs_total', 'Background job runs by kind and outcome (done, failed, aborted).', ['kind', 'outcome']),
    duration: metrics.histogram('berth_jobs_run_duration_seconds', 'How long background job runs take, by kind.', latencyBuckets, ['kind']),
    running: metrics.gauge('berth_jobs_running', 'Background job items running in this process, by kind.', ['kind']),
    takeovers: metrics.counter(
      'berth_jobs_lease_takeovers_total',
      "Items claimed after another owner's lease lapsed (a crashed or stalled replica's work taken over), by kind.",
      ['kind'],
    ),
    lost: metrics.counter('berth_jobs_leases_lost_total', 'Runs aborted because their lease was lost to another owner, by kind.', ['kind']),
  };
}

/** The abort reason when the runner stops in `abort` mode. */
export class Stopping extends Error {
  constructor() {
    super('the server is shutting down');
  }
}

/** The abort reason when a renewal finds the lease gone. */
export class LeaseLost extends Error {
  constructor() {
    super('the lease was lost (another process holds the item, or it is gone)');
  }
}

/** Shortest sleep a `nextDueAt` can ask for, so a burst of due retries cannot spin the loop. */
const minSleepMs = 20;
/** How long an ended item's wake-up waits, so several ending together cost one claim. */
const refillDelayMs = 20;

/** The heartbeat formula: renew every third of the lease (at least every 10 ms). */
export function renewEveryMs(leaseMs: number): number {
  return Math.max(10, Math.floor(leaseMs / 3));
}

/** A lease owner id that names the process (for operators reading the tables) and is unique per runner. */
export function newOwnerId(): string {
  return `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
}

interface Running {
  controller: AbortController;
  done: Promise<void>;
}

export class LeaseRunner<Item, Result = void> {
  readonly owner: string;
  private readonly running = new Map<string, Running>();
  private state: 'idle' | 'started' | 'stopping' = 'idle';
  private timer: NodeJS.Timeout | undefined;
  /** When the pending timer fires (Date.now()), Infinity when none is set. */
  private timerAt = Infinity;
  private cycle: Promise<void> | undefined;
  private again = false;
  private lastMaintenance = -Infinity;
  private readonly metrics: RunnerMetrics | undefined;
  private readonly countTakeover: (() => void) | undefined;

  constructor(
    private readonly kind: JobKind<Item, Result>,
    private readonly options: RunnerOptions,
  ) {
    if (!(options.concurrency >= 1)) throw new Error(`${kind.name}: concurrency must be at least 1`);
    if (!(options.leaseMs > 0) || !(options.pollMs > 0)) throw new Error(`${kind.name}: leaseMs and pollMs must be positive`);
    this.owner = options.owner ?? newOwnerId();
    this.metrics = options.metrics ? runnerMetrics(options.metrics) : undefined;
    const takeovers = this.metrics?.takeovers.labels(kind.name);
    this.countTakeover = takeovers ? () => takeovers.inc() : undefined;
  }

  /** Items claimed and not yet released. */
  get active(): number {
    return this.running.size;
  }

  /** Starts the loop with a cycle at once (which picks up whatever a previous run left). */
  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'started';
    this.wake();
  }

  /** Runs a cycle within `delayMs` (coalesced with one running or due sooner). Ignored unless started. */
  wake(delayMs = 0): void {
    if (this.state !== 'started') return;
    if (this.cycle) {
      this.again = true;
      return;
    }
    const at = Date.now() + delayMs;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.cycle = this.runCycle();
    }, delayMs);
    this.timer.unref();
  }

  /** Claims nothing more, ends or aborts what runs (`onStop`), and resolves once every item is released. */
  async stop(): Promise<void> {
    if (this.state === 'started') {
      this.state = 'stopping';
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = Infinity;
      if (this.options.onStop === 'abort') for (const { controller } of this.running.values()) controller.abort(new Stopping());
    }
    // A cycle may be claiming right now: what it claims is released (abort) or run (finish) below.
    while (this.cycle || this.running.size > 0) {
      await this.cycle;
      await Promise.allSettled([...this.running.values()].map((r) => r.done));
    }
    if (this.state === 'stopping') this.state = 'idle';
  }

  private async runCycle(): Promise<void> {
    const { kind, options } = this;
    const { maintenance } = options;
    const prepare = kind.prepare?.bind(kind);
    const nextDueAt = kind.nextDueAt?.bind(kind);
    let sleepMs = options.pollMs;
    try {
      do {
        this.again = false;
        const now = options.clock.now();
        if (maintenance && now - this.lastMaintenance >= maintenance.everyMs) {
          this.lastMaintenance = now;
          await this.step('maintenance', () => maintenance.run(now));
        }
        if (prepare && (await this.step('prepare', prepare))) this.again = true;
        await this.step('claim', () => this.claim());
      } while (this.again && this.state === 'started');
      // With every slot busy, the next cycle comes when an item ends (it wakes the runner).
      if (nextDueAt && this.running.size < options.concurrency && this.state === 'started') {
        const due = await this.step('nextDueAt', nextDueAt);
        if (due !== undefined) sleepMs = Math.min(options.pollMs, Math.max(minSleepMs, due - options.clock.now()));
      }
    } finally {
      this.cycle = undefined;
      this.wake(this.again ? 0 : sleepMs);
    }
  }

  /** A failing step is logged; the next cycle tries again. */
  private async step<T>(name: string, work: () => Promise<T>): Promise<T | undefined> {
    try {
      return await work();
    } catch (err) {
      this.options.logger.warn({ err, kind: this.kind.name, step: name }, 'background job step failed; retrying on the next cycle');
      return undefined;
    }
  }

  private lease(): Lease {
    const now = this.options.clock.now();
    return { owner: this.owner, now, until: now + this.options.leaseMs, onTakeover: this.countTakeover };
  }

  private async claim(): Promise<void> {
    const free = this.options.concurrency - this.running.size;
    if (free <= 0 || this.state !== 'started') return;
    for (const item of await this.kind.claim(free, this.lease())) {
      const key = this.kind.key(item);
      // Claimed again by this owner (its lease had lapsed while it ran): the running one holds it.
      if (this.running.has(key)) continue;
      this.launch(key, item);
    }
  }

  private launch(key: string, item: Item): void {
    const { kind, options } = this;
    const controller = new AbortController();
    // Claimed while stopping in abort mode: hand it back without running it.
    if (this.state !== 'started' && options.onStop === 'abort') controller.abort(new Stopping());
    let heartbeat: NodeJS.Timeout | undefined;
    let ended = false;
    const beat = (): void => {
      heartbeat = setTimeout(() => {
        void kind.renew(item, this.lease()).then(
          (held) => {
            if (!held) controller.abort(new LeaseLost());
            else if (!ended) beat();
          },
          (err: unknown) => {
            options.logger.warn({ err, kind: kind.name, item: key }, 'lease renewal failed; trying again');
            if (!ended) beat();
          },
        );
      }, renewEveryMs(options.leaseMs));
      heartbeat.unref();
    };
    const metrics = this.metrics;
    const done = (async () => {
      let outcome: Outcome<Result>;
      if (controller.signal.aborted) {
        outcome = { status: 'aborted', reason: 'stopping' };
      } else {
        beat();
        const started = performance.now();
        metrics?.running.labels(kind.name).inc();
        try {
          const value = await tracer().job(kind.name, { 'berth.job.item': key.slice(0, 200) }, () => kind.run(item, controller.signal));
          outcome = { status: 'done', value };
        } catch (error) {
          outcome = controller.signal.aborted
            ? { status: 'aborted', reason: controller.signal.reason instanceof LeaseLost ? 'lease-lost' : 'stopping' }
            : { status: 'failed', error };
        } finally {
          ended = true;
          clearTimeout(heartbeat);
          metrics?.running.labels(kind.name).dec();
          metrics?.duration.labels(kind.name).observe((performance.now() - started) / 1000);
        }
        metrics?.runs.labels(kind.name, outcome.status).inc();
        if (outcome.status === 'aborted' && outcome.reason === 'lease-lost') metrics?.lost.labels(kind.name).inc();
      }
      try {
        await kind.release(item, outcome, this.owner);
      } catch (err) {
        options.logger.warn({ err, kind: kind.name, item: key }, 'could not release a claimed item; it is claimed again once its lease runs out');
      }
    })().finally(() => {
      this.running.delete(key);
      this.wake(refillDelayMs);
    });
    this.running.set(key, { controller, done });
  }
}
