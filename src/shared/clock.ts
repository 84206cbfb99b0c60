/**
 * Time, injected. Every service that compares against "now" takes a `Clock`, never calls
 * `Date.now()` itself, so tests control expiry and several apps can run in one process.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
