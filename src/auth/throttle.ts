/**
 * Failed-login throttling. Three counters, each over a window of `windowMs` that starts with its
 * first failure:
 *
 * - **principal name + client address**: after `maxFailures` failures, that pair is refused (429
 *   with Retry-After) until its window passes. An attacker at one address locks only itself out.
 * - **client address** (all names): after `addressMaxFailures`, the address is refused (a password
 *   spray across many names from one place).
 * - **principal name** (all addresses): after `principalMaxFailures` the name is *slowed*, never
 *   locked: one attempt at a time, at most one per `slowedIntervalMs`, so a distributed guesser
 *   gets a handful of tries a minute while a real user, told to retry after a second or two, still
 *   gets in. Addresses the name logged in from successfully (remembered for `knownAddressTtlMs`) are
 *   not slowed at all.
 *
 * Attempts in flight count: an attempt takes a slot on every counter when it is admitted and turns
 * into a failure (or nothing) when it ends, so 40 parallel wrong passwords for one name from one
 * address run at most `maxFailures` verifications at once. When only attempts in flight fill a
 * counter (no failures yet), `admitWhenFree` waits for one of them to end instead of refusing:
 * parallel right passwords (ten CI jobs behind one NAT logging in at once) all get in, a moment
 * later, while parallel wrong ones still run `maxFailures` at a time and are refused once they
 * have failed. Names are counted whether or not a principal
 * has them (so the throttle does not tell which names exist), as a hash (so an attacker's long
 * names cost no memory). A success clears its pair's counter (not the address's or the name's:
 * one good login must not reset a spray).
 *
 * In memory, per process: replicas each count on their own, so a replica set multiplies the budget
 * by its size. Sharing the counters through the database would cost a write per login attempt on
 * the hot path of every `docker login` and token request; the docs state the per-replica budget.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../shared/clock.js';

export interface ThrottleSettings {
  maxFailures: number;
  addressMaxFailures: number;
  principalMaxFailures: number;
  windowMs: number;
  slowedIntervalMs: number;
  knownAddressTtlMs: number;
}

/** An admitted attempt: end it exactly once with what happened. */
export interface LoginAttempt {
  /** The credentials were right: clears the pair's failures and remembers the address for the name. */
  succeeded(): void;
  /** The credentials were wrong: counts a failure on every counter. */
  failed(): void;
  /** The attempt could not be decided (an internal error): frees its slots, counts nothing. */
  abandoned(): void;
}

/** `busy`: refused only because attempts in flight fill a counter (none of it is failures yet). */
export type Admission = { kind: 'admitted'; attempt: LoginAttempt } | { kind: 'refused'; retryAfterMs: number; busy?: true };

interface Counter {
  /** Start of the current window (its first failure); undefined before any. */
  start: number | undefined;
  failures: number;
  /** Attempts admitted and not yet ended. */
  pending: number;
  /** Principal counters: when the next attempt may start while the name is slowed. */
  nextSlotAt: number;
}

/** Counters kept before stale ones are pruned (and, under a flood of fresh ones, the oldest idle ones dropped). */
const maxTrackedKeys = 100_000;
/** Addresses remembered per name. */
const maxKnownAddresses = 16;
/** The wait suggested when only attempts in flight fill a counter. */
const inFlightRetryMs = 1000;

export class LoginThrottle {
  private readonly counters = new Map<string, Counter>();
  /** name hash -> address -> until when it is known good. */
  private readonly known = new Map<string, Map<string, number>>();
  /** Calls waiting in `admitWhenFree`, woken whenever an attempt ends. */
  private waiting: Array<() => void> = [];

  constructor(
    private readonly settings: ThrottleSettings,
    private readonly clock: Clock,
  ) {}

  /** Admits an attempt for `name` from `address`, or says how long to wait. */
  admit(name: string, address: string): Admission {
    const now = this.clock.now();
    if (this.counters.size > maxTrackedKeys) this.prune(now);
    const { maxFailures, addressMaxFailures, principalMaxFailures, slowedIntervalMs } = this.settings;
    const nameKey = `n:${hashName(name)}`;
    const pair = this.counter(`p:${nameKey}@${address}`, now);
    const byAddress = this.counter(`a:${address}`, now);
    const byName = this.counter(nameKey, now);
    const wait = Math.max(this.full(pair, maxFailures, now), this.full(byAddress, addressMaxFailures, now));
    if (wait > 0) {
      const busy = pair.failures < maxFailures && byAddress.failures < addressMaxFailures;
      return busy ? { kind: 'refused', retryAfterMs: wait, busy } : { kind: 'refused', retryAfterMs: wait };
    }
    const slowed = byName.failures + byName.pending >= principalMaxFailures && !this.isKnown(nameKey, address, now);
    if (slowed) {
      if (byName.pending > 0 || now < byName.nextSlotAt) {
        return { kind: 'refused', retryAfterMs: Math.max(byName.nextSlotAt - now, byName.pending > 0 ? slowedIntervalMs : 0) };
      }
      byName.nextSlotAt = now + slowedIntervalMs;
    }
    const counters = [pair, byAddress, byName];
    for (const c of counters) c.pending++;
    let ended = false;
    const end = (outcome: 'success' | 'failure' | 'error') => {
      if (ended) return;
      ended = true;
      const at = this.clock.now();
      for (const c of counters) {
        c.pending--;
        if (outcome === 'failure') this.recordFailure(c, at);
      }
      if (outcome === 'success') {
        pair.start = undefined;
        pair.failures = 0;
        this.remember(nameKey, address, at);
      }
      const waiting = this.waiting;
      this.waiting = [];
      for (const wake of waiting) wake();
    };
    return { kind: 'admitted', attempt: { succeeded: () => end('success'), failed: () => end('failure'), abandoned: () => end('error') } };
  }

  /**
   * Like `admit`, but while the only obstacle is attempts in flight (`busy`), waits for one to end
   * and asks again, for at most `maxWaitMs` of real time; any other refusal is answered at once.
   */
  async admitWhenFree(name: string, address: string, maxWaitMs: number): Promise<Admission> {
    const deadline = Date.now() + maxWaitMs;
    for (;;) {
      const admission = this.admit(name, address);
      const remaining = deadline - Date.now();
      if (admission.kind === 'admitted' || !admission.busy || remaining <= 0) return admission;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiting.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The counter for `key`, its window reset if it has passed. */
  private counter(key: string, now: number): Counter {
    let counter = this.counters.get(key);
    if (!counter) {
      counter = { start: undefined, failures: 0, pending: 0, nextSlotAt: 0 };
      this.counters.set(key, counter);
    } else if (counter.start !== undefined && now - counter.start >= this.settings.windowMs) {
      counter.start = undefined;
      counter.failures = 0;
    }
    return counter;
  }

  /** How long until `counter` has room under `limit` (0: it has room now). */
  private full(counter: Counter, limit: number, now: number): number {
    if (counter.failures >= limit) return (counter.start ?? now) + this.settings.windowMs - now;
    if (counter.failures + counter.pending >= limit) return inFlightRetryMs;
    return 0;
  }

  private recordFailure(counter: Counter, now: number): void {
    if (counter.start === undefined || now - counter.start >= this.settings.windowMs) {
      counter.start = now;
      counter.failures = 0;
    }
    counter.failures++;
  }

  private isKnown(nameKey: string, address: string, now: number): boolean {
    const until = this.known.get(nameKey)?.get(address);
    return until !== undefined && until > now;
  }

  private remember(nameKey: string, address: string, now: number): void {
    let addresses = this.known.get(nameKey);
    if (!addresses) {
      if (this.known.size >= maxTrackedKeys) this.known.clear();
      addresses = new Map();
      this.known.set(nameKey, addresses);
    }
    addresses.delete(address);
    addresses.set(address, now + this.settings.knownAddressTtlMs);
    // Oldest first: drop the least recently seen beyond the bound.
    for (const old of addresses.keys()) {
      if (addresses.size <= maxKnownAddresses) break;
      addresses.delete(old);
    }
  }

  /** Forgets idle counters whose window has passed; under a flood of fresh keys, the oldest idle ones. */
  private prune(now: number): void {
    const { windowMs } = this.settings;
    for (const [key, c] of this.counters) {
      if (c.pending === 0 && (c.start === undefined || now - c.start >= windowMs) && c.nextSlotAt <= now) this.counters.delete(key);
    }
    for (const [key, c] of this.counters) {
      if (this.counters.size <= maxTrackedKeys / 2) break;
      if (c.pending === 0) this.counters.delete(key);
    }
  }
}

/** A fixed-size key for a login name, whatever its length. */
function hashName(name: string): string {
  return createHash('sha256').update(name).digest('base64url').slice(0, 22);
}
