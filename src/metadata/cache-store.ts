/**
 * What the pull-through cache keeps in the metadata database (`CacheMetadata`): the rules managed
 * through /api/v1, what is known of each cached tag, when each cached manifest was last pulled, and
 * the per-rule eviction sweeps (claimed with a lease, `shared/lease.ts`, so one replica sweeps a
 * rule at a time). The cached content itself is ordinary registry content (manifests, tags, blob
 * links) under the rule's prefix.
 *
 * Contract: times are milliseconds (`now` injected); `repository` is the local name (prefix
 * included); `rule` is a rule's name (config-file rules have no row in `rules` but do in the other
 * tables). A rule's spec is JSON written and read by `cache/rule.ts` (opaque here).
 */
import type { ClaimRequest, Lease } from '../shared/lease.js';

export interface CacheRuleRow {
  id: string;
  name: string;
  /** JSON of the rule's spec (`cache/rule.ts`). */
  spec: string;
  createdAt: number;
  updatedAt: number;
}

export interface CacheRuleIndex {
  /** Creates a rule; false if the name is taken. */
  create(rule: CacheRuleRow): Promise<boolean>;
  /** Replaces the spec; false if the rule is gone. */
  update(id: string, spec: string, now: number): Promise<boolean>;
  /** Deletes the rule and every cache row of its name (tags, pulls, sweep); false if it did not exist. The cached content stays. */
  delete(id: string): Promise<boolean>;
  findByName(name: string): Promise<CacheRuleRow | undefined>;
  /** Every rule, sorted by name. */
  list(): Promise<CacheRuleRow[]>;
}

export interface CachedTag {
  repository: string;
  tag: string;
  rule: string;
  digest: string;
  /** When the upstream last confirmed (or set) the tag. */
  checkedAt: number;
  /** A refresh asked for a check on the next pull, whatever the freshness window says. */
  expired: boolean;
}

export interface CacheTagIndex {
  get(repository: string, tag: string): Promise<CachedTag | undefined>;
  /** Records what the upstream said (inserts or replaces; clears `expired`). */
  record(tag: Omit<CachedTag, 'expired'>): Promise<void>;
  /** Marks the rule's tags (of one repository, or one tag) for a check on their next pull; returns how many. */
  expire(rule: string, filter: { repository?: string | undefined; tag?: string | undefined }): Promise<number>;
  /** The rule's cached tags, by repository then tag. */
  list(rule: string, filter: { repository?: string | undefined; limit: number }): Promise<CachedTag[]>;
  /** Forgets the tags of `repository` pointing at `digest` (its manifest was evicted). */
  forgetDigest(repository: string, digest: string): Promise<void>;
  /** Forgets one tag (the upstream no longer has it). */
  forget(repository: string, tag: string): Promise<void>;
}

export interface CachePullIndex {
  /** A client pulled the manifest `digest` of `repository` (cached by `rule`) at `now`. */
  record(repository: string, digest: string, rule: string, now: number): Promise<void>;
  /** Up to `limit` of the rule's manifests last pulled before `before`, least recently pulled first. */
  idle(rule: string, before: number, limit: number): Promise<Array<{ repository: string; digest: string; lastPulledAt: number }>>;
  forget(repository: string, digest: string): Promise<void>;
}

export interface CacheSweep {
  rule: string;
  nextAt: number;
  lastRunAt: number | null;
  lastEvicted: number | null;
  lastError: string | null;
}

export interface CacheSweepIndex {
  /** Makes sure each of `rules` has a sweep row (new ones due at `firstAt`), and drops the rows of other rules. */
  reconcile(rules: readonly string[], firstAt: number): Promise<void>;
  /** Leases up to `limit` sweeps due at `now` and not leased by a live owner. */
  claim(request: ClaimRequest): Promise<CacheSweep[]>;
  renew(rule: string, lease: Lease): Promise<boolean>;
  /** Ends a sweep held by `owner`: records the outcome, schedules the next, releases the lease. */
  finish(rule: string, owner: string, outcome: { at: number; evicted: number; error: string | null; nextAt: number }): Promise<void>;
  get(rule: string): Promise<CacheSweep | undefined>;
}

export interface CacheMetadata {
  readonly rules: CacheRuleIndex;
  readonly tags: CacheTagIndex;
  readonly pulls: CachePullIndex;
  readonly sweeps: CacheSweepIndex;
}
