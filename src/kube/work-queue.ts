/**
 * A keyed work queue with client-go's semantics (workqueue.RateLimitingInterface), for level-based
 * controllers:
 *
 * - a key waiting in the queue is there once, however often it is added (de-duplication);
 * - a key being processed is never handed to a second worker: added meanwhile, it is marked dirty
 *   and queued again when the first worker is done, so the newest state is always reconciled;
 * - `addAfter` schedules a key (the earliest pending time wins); `addRateLimited` schedules it after
 *   a per-key exponential backoff that `forget` resets;
 * - `run(n, handler)` processes keys with n workers in parallel until `shutDown`.
 *
 * Written here because no small npm library has these semantics (p-queue and friends have
 * concurrency but neither keys, the dirty/processing sets nor per-key backoff); it is ~150 lines.
 */

export interface BackoffOptions {
  /** First retry after this long (ms). */
  baseMs: number;
  /** Never wait longer than this (ms). */
  maxMs: number;
}

export const defaultBackoff: BackoffOptions = { baseMs: 1000, maxMs: 5 * 60_000 };

/**
 * The clock and timer behind `addAfter` (and so `addRateLimited`). Injected so a test can read the
 * delays the queue schedules and fire them without waiting; production uses `systemTimers`.
 */
export interface QueueTimers {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `run` once after `delayMs`; the returned function cancels that call. */
  setTimer(run: () => void, delayMs: number): () => void;
}

export const systemTimers: QueueTimers = {
  now: () => Date.now(),
  setTimer(run, delayMs) {
    const timer = setTimeout(run, delayMs);
    return () => clearTimeout(timer);
  },
};

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; cancel: () => void }>();
  private readonly waiting: Array<(key: string | undefined) => void> = [];
  private shuttingDown = false;

  constructor(
    private readonly backoff: BackoffOptions = defaultBackoff,
    private readonly clock: QueueTimers = systemTimers,
  ) {}

  /** Queues `key` unless it is already waiting; a key being processed is queued again once done. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    const waiter = this.waiting.shift();
    if (waiter) {
      this.dirty.delete(key);
      this.processing.add(key);
      waiter(key);
    } else {
      this.queue.push(key);
    }
  }

  /** Queues `key` after `delayMs`; if it is already scheduled earlier, that earlier time stands. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + delayMs;
    const pending = this.timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) pending.cancel();
    const cancel = this.clock.setTimer(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    this.timers.set(key, { at, cancel });
  }

  /** Queues `key` after its backoff (base * 2^failures, capped) and counts one more failure. */
  addRateLimited(key: string): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    const delay = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** Math.min(failures, 30));
    this.addAfter(key, delay);
    return delay;
  }

  /** The key succeeded: its next failure starts the backoff from the beginning. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** How often `key` has failed in a row. */
  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next key to process (undefined once shut down); call `done(key)` when finished with it. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) {
      this.dirty.delete(key);
      this.processing.add(key);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Processing of `key` ended; if it was added meanwhile, it goes back in the queue. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) {
      this.dirty.delete(key);
      this.add(key);
    }
  }

  /** Keys waiting, scheduled or being processed (for tests and metrics). */
  get length(): number {
    return this.queue.length;
  }

  /**
   * Runs `workers` loops that take keys and call `handler`; resolves when the queue is shut down and
   * every loop has finished its current key. The handler decides about requeueing; a throw is
   * treated as a failure (`addRateLimited`).
   */
  async run(workers: number, handler: (key: string) => Promise<void>): Promise<void> {
    const loop = async (): Promise<void> => {
      for (;;) {
        const key = await this.get();
        if (key === undefined) return;
        try {
          await handler(key);
        } catch {
          this.addRateLimited(key);
        } finally {
          this.done(key);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, workers) }, loop));
  }

  /** Stops handing out keys, drops scheduled ones and wakes idle workers. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const { cancel } of this.timers.values()) cancel();
    this.timers.clear();
    this.queue.length = 0;
    this.dirty.clear();
    for (const waiter of this.waiting.splice(0)) waiter(undefined);
  }
}
