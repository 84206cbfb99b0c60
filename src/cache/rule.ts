/**
 * A pull-through cache rule: the spec as written (in the configuration file, or through /api/v1
 * and stored as JSON), its effective form (defaults applied, mirror hosts derived), and the pure
 * rules that relate a local repository name to a rule and to the upstream's name.
 *
 * Naming: a rule with prefix `hub` owns every repository `hub/<upstream repository>`; the upstream
 * repository is the rest of the name (`hub/library/alpine` → `library/alpine`). As a containerd
 * mirror (`?ns=docker.io`), a request names the upstream repository itself and is routed to the
 * rule whose mirror hosts include `docker.io` (`mirrorTarget`), so nodes need no image renames.
 */
import type { CacheRuleInput, CacheRuleUpdate } from '../api/cache.js';
import type { UpstreamCredentials } from '../api/source-credentials.js';
import { matchesRepositoryPattern } from '../shared/glob.js';

/** What is stored of a rule managed through /api/v1 (and what a config-file rule reads as). */
export interface CacheRuleSpec {
  prefix: string;
  upstream: { url: string; credentials: UpstreamCredentials };
  /** As written; unset: derived from the upstream (see `effectiveMirrorOf`); empty: none. */
  mirrorOf?: string[] | undefined;
  repositories: string[];
  /** Unset: the configured default. */
  tagFreshnessMs?: number | undefined;
  staleIfErrorMs?: number | undefined;
  /** Unset or null: cached manifests are not evicted. */
  evictAfterMs?: number | null | undefined;
  limits: { requestsPerSecond?: number | undefined; concurrency?: number | undefined };
}

export interface RuleDefaults {
  tagFreshnessMs: number;
  staleIfErrorMs: number;
  requestsPerSecond: number;
  concurrency: number;
}

/** A rule as the cache works with it: every value effective. */
export interface CacheRule {
  name: string;
  managedBy: 'config' | 'api';
  /** The row id of an /api/v1 rule; null for a config-file rule. */
  id: string | null;
  spec: CacheRuleSpec;
  prefix: string;
  upstreamUrl: string;
  /** host[:port] of the upstream, for messages and the response header. */
  upstreamHost: string;
  credentials: UpstreamCredentials;
  mirrorOf: string[];
  repositories: string[];
  tagFreshnessMs: number;
  staleIfErrorMs: number;
  evictAfterMs: number | null;
  limits: { requestsPerSecond: number; concurrency: number };
  createdAt: number | null;
  updatedAt: number | null;
}

export function specFromInput(input: CacheRuleInput): CacheRuleSpec {
  return {
    prefix: input.prefix,
    upstream: { url: input.upstream.url, credentials: input.upstream.credentials },
    ...(input.mirrorOf !== undefined ? { mirrorOf: [...new Set(input.mirrorOf)] } : {}),
    repositories: input.repositories,
    ...(input.tagFreshnessMs !== undefined ? { tagFreshnessMs: input.tagFreshnessMs } : {}),
    ...(input.staleIfErrorMs !== undefined ? { staleIfErrorMs: input.staleIfErrorMs } : {}),
    ...(input.evictAfterMs !== undefined ? { evictAfterMs: input.evictAfterMs } : {}),
    limits: stripUndefined(input.limits),
  };
}

/** The spec after a PATCH: objects merge one level deep, lists are replaced, null resets a default. */
export function applyUpdate(spec: CacheRuleSpec, update: CacheRuleUpdate): CacheRuleSpec {
  const next: CacheRuleSpec = {
    prefix: update.prefix ?? spec.prefix,
    upstream: { url: update.upstream?.url ?? spec.upstream.url, credentials: update.upstream?.credentials ?? spec.upstream.credentials },
    repositories: update.repositories ?? spec.repositories,
    limits: update.limits === undefined ? spec.limits : Object.assign({}, spec.limits, stripUndefined(update.limits)),
  };
  const mirrorOf = update.mirrorOf === undefined ? spec.mirrorOf : update.mirrorOf === null ? undefined : [...new Set(update.mirrorOf)];
  if (mirrorOf !== undefined) next.mirrorOf = mirrorOf;
  const freshness = update.tagFreshnessMs === undefined ? spec.tagFreshnessMs : (update.tagFreshnessMs ?? undefined);
  const stale = update.staleIfErrorMs === undefined ? spec.staleIfErrorMs : (update.staleIfErrorMs ?? undefined);
  const evict = update.evictAfterMs === undefined ? spec.evictAfterMs : update.evictAfterMs;
  if (freshness !== undefined) next.tagFreshnessMs = freshness;
  if (stale !== undefined) next.staleIfErrorMs = stale;
  if (evict !== undefined) next.evictAfterMs = evict;
  return next;
}

export function specJson(spec: CacheRuleSpec): string {
  return JSON.stringify(spec);
}

export function parseSpec(json: string): CacheRuleSpec {
  return JSON.parse(json) as CacheRuleSpec;
}

/** The rule with the defaults applied. */
export function effectiveRule(
  name: string,
  spec: CacheRuleSpec,
  meta: { managedBy: 'config' | 'api'; id: string | null; createdAt: number | null; updatedAt: number | null },
  defaults: RuleDefaults,
): CacheRule {
  const url = new URL(spec.upstream.url);
  return {
    name,
    ...meta,
    spec,
    prefix: spec.prefix,
    upstreamUrl: url.origin,
    upstreamHost: url.host,
    credentials: spec.upstream.credentials,
    mirrorOf: effectiveMirrorOf(spec),
    repositories: spec.repositories,
    tagFreshnessMs: spec.tagFreshnessMs ?? defaults.tagFreshnessMs,
    staleIfErrorMs: spec.staleIfErrorMs ?? defaults.staleIfErrorMs,
    evictAfterMs: spec.evictAfterMs ?? null,
    limits: {
      requestsPerSecond: spec.limits.requestsPerSecond ?? defaults.requestsPerSecond,
      concurrency: spec.limits.concurrency ?? defaults.concurrency,
    },
  };
}

/**
 * The hosts a rule answers for as a mirror: the ones it names (none for `[]`), else the upstream's
 * own host, plus `docker.io` for Docker Hub's registry host (containerd names Docker Hub images
 * `docker.io/…` and sends `ns=docker.io`, while the registry API lives at registry-1.docker.io).
 */
export function effectiveMirrorOf(spec: Pick<CacheRuleSpec, 'mirrorOf' | 'upstream'>): string[] {
  if (spec.mirrorOf !== undefined) return spec.mirrorOf;
  const host = new URL(spec.upstream.url).host.toLowerCase();
  return host === 'registry-1.docker.io' ? [host, 'docker.io'] : [host];
}

/**
 * Why `rules` cannot be served together, or undefined: names, mirror hosts and prefixes must be
 * unique, and no prefix may contain another (`hub` and `hub/library` would both own
 * `hub/library/alpine`).
 */
export function conflict(rules: readonly Pick<CacheRule, 'name' | 'prefix' | 'mirrorOf'>[]): string | undefined {
  for (let i = 1; i < rules.length; i++) {
    const problem = conflictWith(rules[i] as CacheRule, rules.slice(0, i));
    if (problem) return problem;
  }
  return undefined;
}

/** Why `rule` cannot join `others` (which do not conflict among themselves), or undefined. */
export function conflictWith(
  rule: Pick<CacheRule, 'name' | 'prefix' | 'mirrorOf'>,
  others: readonly Pick<CacheRule, 'name' | 'prefix' | 'mirrorOf'>[],
): string | undefined {
  for (const other of others) {
    if (other.name === rule.name) return `two cache rules are named ${rule.name}`;
    if (ownsPrefix(other.prefix, rule.prefix) || ownsPrefix(rule.prefix, other.prefix)) {
      return `the prefixes of cache rules ${other.name} (${other.prefix}/) and ${rule.name} (${rule.prefix}/) overlap`;
    }
    const shared = other.mirrorOf.find((host) => rule.mirrorOf.includes(host));
    if (shared !== undefined) {
      return `cache rules ${other.name} and ${rule.name} are both mirrors of ${shared} (mirrorOf defaults to the upstream's host: give one of them other hosts, or mirrorOf: [] for none)`;
    }
  }
  return undefined;
}

function ownsPrefix(outer: string, inner: string): boolean {
  return inner === outer || inner.startsWith(`${outer}/`);
}

/** The rule whose prefix owns the local repository `name`, and the upstream repository it stands for. */
export function ruleForRepository<R extends Pick<CacheRule, 'prefix'>>(rules: readonly R[], name: string): { rule: R; upstream: string } | undefined {
  for (const rule of rules) {
    if (name.length > rule.prefix.length + 1 && name.startsWith(`${rule.prefix}/`)) return { rule, upstream: name.slice(rule.prefix.length + 1) };
  }
  return undefined;
}

/** The rule a mirror request for `ns` (containerd's upstream host) goes to. */
export function ruleForMirror<R extends Pick<CacheRule, 'mirrorOf'>>(rules: readonly R[], ns: string): R | undefined {
  const host = ns.toLowerCase();
  return rules.find((rule) => rule.mirrorOf.includes(host));
}

/** The local repository a rule keeps an upstream repository in. */
export function localRepository(rule: Pick<CacheRule, 'prefix'>, upstream: string): string {
  return `${rule.prefix}/${upstream}`;
}

/** True if the rule's allow-list lets the cache fetch `upstream` (a validated repository name). */
export function upstreamAllowed(rule: Pick<CacheRule, 'repositories'>, upstream: string): boolean {
  return rule.repositories.some((pattern) => matchesRepositoryPattern(pattern, upstream));
}

function stripUndefined<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> };
}
