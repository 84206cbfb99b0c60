/**
 * A per-source request limiter: at most `concurrency` requests in flight (a slot is held until the
 * response body is consumed or dropped) and on average at most `requestsPerSecond` request starts,
 * with bursts of up to one second's worth (the generic cell rate algorithm: a short copy is not
 * slowed down, a long one settles at the rate). A 429 with Retry-After pauses every new request to
 * that source, not only the one that got it, which is what a rate-limited source asks for.
 *
 * Written by hand: it is thirty lines, and the libraries that do this (bottleneck, p-limit +
 * p-throttle) either are unmaintained or need two packages to express one rule.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface LimiterOptions {
  requestsPerSecond?: number | undefined;
  concurrency?: number | undefined;
}

export class RequestLimiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  /** The theoretical arrival time of the next request (GCRA); a request may start up to `burstMs` before it. */
  private tat = 0;
  /** No request starts before this (a 429's Retry-After). */
  private pausedUntil = 0;
  private readonly concurrency: number;
  private readonly intervalMs: number;
  private readonly burstMs: number;

  constructor(options: LimiterOptions = {}) {
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 8));
    this.intervalMs = options.requestsPerSecond && options.requestsPerSecond > 0 ? 1000 / options.requestsPerSecond : 0;
    this.burstMs = this.intervalMs * Math.max(0, Math.ceil(options.requestsPerSecond ?? 0) - 1);
  }

  /** Waits for a slot and the rate; returns the release function (idempotent). */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.active >= this.concurrency) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next)
        next(); // the slot passes straight to the next waiter
      else this.active--;
    };
    try {
      const now = Date.now();
      this.tat = Math.max(this.tat, now);
      const start = Math.max(now, this.tat - this.burstMs, this.pausedUntil);
      this.tat += this.intervalMs;
      if (start > now) await sleep(start - now, undefined, signal ? { signal } : {});
    } catch (err) {
      release();
      throw err;
    }
    return release;
  }

  /** Holds back every request that has not started yet for `ms`. */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms);
  }
}
