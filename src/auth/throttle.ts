/**
 * Failed-login throttling per principal name and per client address: after `maxFailures` failures
 * for a name (4x that for an address, which many clients may share behind NAT) within `windowMs`,
 * further attempts are refused (429 with Retry-After) until the window passes. Keys are
 * `name:<login>` and `address:<ip>`.
 * In memory, per process: a replica set multiplies the budget by its size, which the docs state.
 */
import type { Clock } from '../shared/clock.js';

interface Window {
  start: number;
  failures: number;
}

const maxTrackedKeys = 100_000;

export class LoginThrottle {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
    private readonly clock: Clock,
  ) {}

  /** Milliseconds until any of `keys` may try again, or 0 if none is blocked. */
  retryAfter(keys: readonly string[]): number {
    const now = this.clock.now();
    let wait = 0;
    for (const key of keys) {
      const window = this.windows.get(key);
      if (!window) continue;
      if (now - window.start >= this.windowMs) this.windows.delete(key);
      else if (window.failures >= this.limitFor(key)) wait = Math.max(wait, window.start + this.windowMs - now);
    }
    return wait;
  }

  fail(keys: readonly string[]): void {
    const now = this.clock.now();
    if (this.windows.size > maxTrackedKeys) this.prune(now);
    for (const key of keys) {
      const window = this.windows.get(key);
      if (!window || now - window.start >= this.windowMs) this.windows.set(key, { start: now, failures: 1 });
      else window.failures++;
    }
  }

  private limitFor(key: string): number {
    return key.startsWith('address:') ? this.maxFailures * 4 : this.maxFailures;
  }

  /** A success clears the principal's counter (not the address's: one good login must not unlock a spray). */
  succeed(key: string): void {
    this.windows.delete(key);
  }

  private prune(now: number): void {
    for (const [key, window] of this.windows) if (now - window.start >= this.windowMs) this.windows.delete(key);
  }
}
