/**
 * When a cached tag is served as it is, re-checked with the upstream, or served stale: pure
 * functions of the rule, what is known of the tag and the time, shared by the pull path and the
 * status view (`entries`), so "what the view says" and "what a pull does" cannot disagree.
 *
 * A tag confirmed by the upstream at `checkedAt` is fresh until `checkedAt + tagFreshnessMs` (served
 * without asking); after that a pull asks the upstream first (one HEAD). When the upstream cannot
 * answer (down, refusing, rate-limited), the tag is still served, marked stale, until
 * `checkedAt + tagFreshnessMs + staleIfErrorMs`. Digests are immutable: a manifest or blob pulled
 * by digest is served from the cache whatever the upstream does.
 */
import type { CachedTag } from '../metadata/cache-store.js';
import type { CacheRule } from './rule.js';

type Freshness = Pick<CacheRule, 'tagFreshnessMs' | 'staleIfErrorMs'>;

/**
 * `fresh`: serve the cached tag. `check`: ask the upstream first — when the tag was never cached,
 * a refresh marked it, the local tag no longer points where the cache left it, or its window ended.
 */
export function tagDecision(rule: Freshness, cached: CachedTag | undefined, localDigest: string | undefined, now: number): 'fresh' | 'check' {
  if (!cached || cached.expired || localDigest === undefined || cached.digest !== localDigest) return 'check';
  return now < freshUntil(rule, cached) ? 'fresh' : 'check';
}

/** True if the cached tag may be served although the upstream could not confirm it. */
export function servableStale(rule: Freshness, cached: CachedTag | undefined, localDigest: string | undefined, now: number): boolean {
  return cached !== undefined && localDigest !== undefined && cached.digest === localDigest && now <= staleUntil(rule, cached);
}

export function freshUntil(rule: Freshness, cached: Pick<CachedTag, 'checkedAt'>): number {
  return cached.checkedAt + rule.tagFreshnessMs;
}

export function staleUntil(rule: Freshness, cached: Pick<CachedTag, 'checkedAt'>): number {
  return cached.checkedAt + rule.tagFreshnessMs + rule.staleIfErrorMs;
}
