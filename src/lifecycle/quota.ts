/**
 * Quotas and push rate limits: the pure rules, shared by the push checks (`enforcement.ts`), the
 * usage refresh and the usage views.
 *
 * A quota's usage is the sum of the logical sizes of the repositories its globs match (what each
 * references: its manifests and the distinct blobs they list; a blob two of them reference counts
 * twice, so a quota does not change when someone else deletes something). It is refreshed by the
 * usage job and raised by every manifest push accepted since (`usage.ts` explains the consistency).
 *
 * - An upload is refused when the blob alone would take the usage over the limit (no upload raises
 *   the usage: only content a manifest makes reachable counts).
 * - A manifest push is refused when the bytes it makes reachable (its own, and the blobs no manifest
 *   of the repository referenced yet) would take the usage over the limit.
 * - States: `exceeded` at or over the limit, `warning` at or over `warnAt` of it, else `ok`.
 */
import type { QuotaRule } from '../api/lifecycle.js';
import { formatSize } from '../api/lifecycle.js';

export type QuotaState = 'ok' | 'warning' | 'exceeded';

export function quotaState(rule: QuotaRule, usage: number): QuotaState {
  if (rule.limit === undefined) return 'ok';
  if (usage >= rule.limit) return 'exceeded';
  return usage >= rule.limit * rule.warnAt ? 'warning' : 'ok';
}

/** The refusal message when `adding` bytes would take `usage` over the rule's limit, or undefined when they fit. */
export function overQuota(rule: QuotaRule, usage: number, adding: number, what: string): string | undefined {
  if (rule.limit === undefined || adding <= 0 || usage + adding <= rule.limit) return undefined;
  return (
    `quota ${rule.name} (${rule.repositories.join(', ')}) is ${formatSize(rule.limit)}; ${formatSize(usage)} is in use and ${what} ` +
    `adds ${formatSize(adding)}: delete images there (or ask for a larger quota) and push again`
  );
}

/** Rank of a state, for "did it get worse". */
export function stateRank(state: QuotaState): number {
  return state === 'exceeded' ? 2 : state === 'warning' ? 1 : 0;
}

/**
 * Token buckets per key (rule and principal), refilled continuously at `perHour` per hour up to
 * `perHour`: a principal may spend an hour's allowance at once, then at the hourly rate. Kept in
 * memory, so each replica limits on its own (with N replicas a principal gets up to N times the
 * rate): the limit exists to stop a runaway job, not to bill. Buckets idle long enough to be full
 * again are forgotten.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly maxKeys = 100_000) {}

  /**
   * Takes `amount` from the key's bucket if it holds that much (or the bucket is full: one request
   * larger than an hour's allowance still passes when nothing was spent). Returns undefined when
   * taken, else the milliseconds until it would be.
   */
  take(key: string, amount: number, perHour: number, now: number): number | undefined {
    const bucket = this.refilled(key, perHour, now);
    if (bucket.tokens >= amount || bucket.tokens >= perHour) {
      bucket.tokens -= amount;
      return undefined;
    }
    return Math.ceil(((Math.min(amount, perHour) - bucket.tokens) / perHour) * 3_600_000);
  }

  /** Whether `amount` could be taken now (without taking it), as `take` would answer. */
  peek(key: string, amount: number, perHour: number, now: number): number | undefined {
    const bucket = this.refilled(key, perHour, now);
    if (bucket.tokens >= amount || bucket.tokens >= perHour) return undefined;
    return Math.ceil(((Math.min(amount, perHour) - bucket.tokens) / perHour) * 3_600_000);
  }

  private refilled(key: string, perHour: number, now: number): { tokens: number; at: number } {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= this.maxKeys) this.forgetFull(perHour, now);
      bucket = { tokens: perHour, at: now };
      this.buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(perHour, bucket.tokens + ((now - bucket.at) / 3_600_000) * perHour);
    bucket.at = now;
    return bucket;
  }

  /** Drops buckets that have been idle for an hour (full again); all of them if that frees nothing. */
  private forgetFull(_perHour: number, now: number): void {
    for (const [key, bucket] of this.buckets) if (now - bucket.at >= 3_600_000) this.buckets.delete(key);
    if (this.buckets.size >= this.maxKeys) this.buckets.clear();
  }
}
