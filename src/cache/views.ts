/** Cache rules and cached tags as the management API shows them (wire types in `api/cache.ts`): never a password. */
import type { CacheRuleView, CacheTagView } from '../api/cache.js';
import { upstreamCredentialsView } from '../api/source-credentials.js';
import type { CachedTag } from '../metadata/cache-store.js';
import { freshUntil, staleUntil } from './freshness.js';
import type { CacheRule } from './rule.js';
import type { UpstreamState } from './upstreams.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function ruleView(rule: CacheRule, state: UpstreamState): CacheRuleView {
  return {
    name: rule.name,
    managedBy: rule.managedBy,
    prefix: rule.prefix,
    upstream: { url: rule.upstreamUrl, credentials: upstreamCredentialsView(rule.credentials) },
    mirrorOf: rule.mirrorOf,
    repositories: rule.repositories,
    tagFreshnessMs: rule.tagFreshnessMs,
    staleIfErrorMs: rule.staleIfErrorMs,
    evictAfterMs: rule.evictAfterMs,
    limits: rule.limits,
    createdAt: iso(rule.createdAt),
    updatedAt: iso(rule.updatedAt),
    state: { upstreamBlockedUntil: iso(state.blockedUntil), lastUpstreamError: state.lastError, lastUpstreamErrorAt: iso(state.lastErrorAt) },
  };
}

export function tagView(rule: CacheRule, tag: CachedTag): CacheTagView {
  return {
    repository: tag.repository,
    upstreamRepository: tag.repository.slice(rule.prefix.length + 1),
    tag: tag.tag,
    digest: tag.digest,
    checkedAt: new Date(tag.checkedAt).toISOString(),
    freshUntil: new Date(tag.expired ? tag.checkedAt : freshUntil(rule, tag)).toISOString(),
    staleUntil: new Date(staleUntil(rule, tag)).toISOString(),
  };
}

/** What the audit log records of a rule: its shape, never a password. */
export function auditDetail(rule: CacheRule): Record<string, unknown> {
  return {
    rule: rule.name,
    prefix: rule.prefix,
    upstream: rule.upstreamUrl,
    credentials: rule.credentials.kind,
    repositories: rule.repositories,
    mirrorOf: rule.mirrorOf,
  };
}
