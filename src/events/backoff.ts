/**
 * Retry delays for webhook deliveries: exponential backoff with full jitter (AWS Architecture Blog,
 * "Exponential Backoff And Jitter"): after the n-th failed attempt the next one waits a uniformly
 * random time in [0, min(maxMs, baseMs * 2^(n-1))]. Full jitter spreads the retries of many
 * deliveries that failed together (a receiver that was down) instead of sending them in waves.
 */

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/** The upper bound of the wait after `failedAttempts` failures (1 = after the first). */
export function backoffCeiling(policy: BackoffPolicy, failedAttempts: number): number {
  const exponent = Math.min(Math.max(failedAttempts - 1, 0), 40);
  return Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
}

/** The wait before the next attempt; `random` is injectable so tests can pin it. */
export function backoffDelay(policy: BackoffPolicy, failedAttempts: number, random: () => number = Math.random): number {
  return Math.floor(random() * backoffCeiling(policy, failedAttempts));
}
