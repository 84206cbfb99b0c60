/**
 * Sync rules, queue items and image statuses as the management API shows them (the wire types are
 * in `api/sync.ts`): never a secret or an inline password, only where a password comes from.
 */
import { urls } from '../api/urls.js';
import type { SourceCredentialsView, SyncImageView, SyncQueueItemView, SyncRuleView } from '../api/sync.js';
import type { SyncImageStatus, SyncWorkItem } from '../metadata/sync-store.js';
import type { SyncRuleRecord } from './rule.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export interface RuleViewContext {
  now: number;
  /** `sync.defaultLimits`, shown for a rule that sets none. */
  defaultLimits: { requestsPerSecond: number; concurrency: number };
  /** Where this registry is reached (no trailing slash): the webhook receiver's URL starts with it. */
  baseUrl: string;
}

/** Where senders deliver a rule's notifications. */
export function webhookUrl(baseUrl: string, name: string): string {
  return `${baseUrl}${urls.api.syncWebhook(name)}`;
}

export function ruleView(rule: SyncRuleRecord, context: RuleViewContext): SyncRuleView {
  const c = rule.source.credentials;
  const credentials: SourceCredentialsView =
    c.kind === 'basic'
      ? {
          kind: 'basic',
          username: c.username,
          passwordSource: c.passwordFile !== undefined ? 'file' : c.passwordEnv !== undefined ? 'env' : 'stored',
          passwordFile: c.passwordFile ?? null,
          passwordEnv: c.passwordEnv ?? null,
        }
      : c;
  return {
    name: rule.name,
    enabled: rule.enabled,
    source: { url: rule.source.url, credentials },
    repositories: rule.repositories,
    tags: rule.tags,
    destinationPrefix: rule.destinationPrefix,
    triggers: {
      webhook: rule.triggers.webhook ? { url: webhookUrl(context.baseUrl, rule.name) } : null,
      pollIntervalMs: rule.triggers.pollIntervalMs,
      onDemand: rule.triggers.onDemand,
    },
    limits: {
      requestsPerSecond: rule.limits.requestsPerSecond ?? context.defaultLimits.requestsPerSecond,
      concurrency: rule.limits.concurrency ?? context.defaultLimits.concurrency,
    },
    includeReferrers: rule.includeReferrers,
    createdAt: new Date(rule.createdAt).toISOString(),
    updatedAt: new Date(rule.updatedAt).toISOString(),
    state: {
      nextReconcileAt: iso(rule.state.nextReconcileAt),
      runRequestedAt: iso(rule.state.runRequestedAt),
      reconciling: rule.state.reconcileLeaseUntil !== null && rule.state.reconcileLeaseUntil > context.now,
      lastReconcileStartedAt: iso(rule.state.lastReconcileStartedAt),
      lastReconcileAt: iso(rule.state.lastReconcileAt),
      lastReconcileError: rule.state.lastReconcileError,
      lastReconcileStats: rule.state.lastReconcileStats,
      backfilledAt: iso(rule.state.backfilledAt),
      lastSyncAt: iso(rule.state.lastSyncAt),
      lastError: rule.state.lastError,
      lastErrorAt: iso(rule.state.lastErrorAt),
    },
  };
}

export function imageView(rule: SyncRuleRecord, image: SyncImageStatus): SyncImageView {
  return {
    repository: image.repository,
    destination: `${rule.destinationPrefix}${image.repository}`,
    tag: image.tag,
    sourceDigest: image.sourceDigest,
    digest: image.digest,
    lastCheckedAt: iso(image.lastCheckedAt),
    lastSyncAt: iso(image.lastSyncAt),
    lastError: image.lastError,
    lastErrorAt: iso(image.lastErrorAt),
    copies: image.copies,
  };
}

export function itemView(item: SyncWorkItem): SyncQueueItemView {
  return {
    repository: item.repository,
    tag: item.tag,
    digest: item.digest,
    reason: item.reason,
    enqueuedAt: new Date(item.enqueuedAt).toISOString(),
    notBefore: new Date(item.notBefore).toISOString(),
    attempts: item.attempts,
    lastError: item.lastError,
  };
}

/** What the audit log keeps of a rule: never a secret or an inline password. */
export function auditDetail(rule: SyncRuleRecord): Record<string, unknown> {
  return {
    rule: rule.name,
    source: rule.source.url,
    credentials: rule.source.credentials.kind,
    repositories: rule.repositories,
    destinationPrefix: rule.destinationPrefix,
    enabled: rule.enabled,
  };
}
