/**
 * The wire contract of selective sync (`/api/v1/sync/rules…`, `berth sync`). Rule views never carry
 * secrets or inline passwords, only where a password comes from; a webhook secret Berth generated
 * is in the one response that created (or rotated) it.
 */

export type SourceCredentialsView =
  | { kind: 'anonymous' }
  | { kind: 'basic'; username: string; passwordSource: 'stored' | 'file' | 'env'; passwordFile: string | null; passwordEnv: string | null }
  | { kind: 'oidc'; clientId: string; tokenFile: string };

export interface ReconcileStatsView {
  repositories: number;
  tags: number;
  queued: number;
  errors: number;
  /** Whether the source's catalog could be listed (absent for reconciles recorded before this was kept). */
  catalog?: 'listed' | 'unavailable' | 'not needed';
}

export interface SyncRuleView {
  name: string;
  enabled: boolean;
  source: { url: string; credentials: SourceCredentialsView };
  repositories: string[];
  tags: { include: string[]; exclude: string[] };
  destinationPrefix: string;
  /** `webhook.url` is where senders deliver; null without the webhook trigger. */
  triggers: { webhook: { url: string } | null; pollIntervalMs: number | null; onDemand: boolean };
  /** The effective per-source limits (the rule's, else `sync.defaultLimits`). */
  limits: { requestsPerSecond: number; concurrency: number };
  includeReferrers: boolean;
  createdAt: string;
  updatedAt: string;
  state: {
    /** The next scheduled reconcile; null for rules that run only on demand (or by webhook without a safety net). */
    nextReconcileAt: string | null;
    runRequestedAt: string | null;
    reconciling: boolean;
    lastReconcileStartedAt: string | null;
    lastReconcileAt: string | null;
    lastReconcileError: string | null;
    lastReconcileStats: ReconcileStatsView | null;
    /** When the first complete reconcile finished: everything that existed at the source then is queued or copied. */
    backfilledAt: string | null;
    lastSyncAt: string | null;
    lastError: string | null;
    lastErrorAt: string | null;
  };
}

export interface SyncImageView {
  /** The source repository, and where it lands here. */
  repository: string;
  destination: string;
  tag: string;
  sourceDigest: string | null;
  digest: string | null;
  lastCheckedAt: string | null;
  lastSyncAt: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  copies: number;
}

export interface SyncQueueItemView {
  repository: string;
  tag: string;
  digest: string | null;
  reason: string;
  enqueuedAt: string;
  notBefore: string;
  attempts: number;
  lastError: string | null;
}

export interface SyncStatusView {
  rule: SyncRuleView;
  queue: { pending: number; running: number; failing: number; items: SyncQueueItemView[] };
  images: SyncImageView[];
}

/** Where senders deliver, and the secret: in the response that created or rotated it only. */
export interface SyncWebhookSecretView {
  url: string;
  secret: string;
}

/** POST /sync/rules → 201, PATCH /sync/rules/{rule} → 200. */
export interface SyncRuleChangeView {
  rule: SyncRuleView;
  webhook: SyncWebhookSecretView | null;
}

/** POST /sync/rules/{rule}/run → 202. */
export interface SyncRunView {
  rule: SyncRuleView;
  requestedAt: string;
  image?: { repository: string; tag: string };
}

export type SyncEventOutcome = 'queued' | 'updated' | 'unchanged' | 'duplicate' | 'ignored' | 'rejected' | 'ping';

export interface SyncEventResult {
  repository: string | null;
  tag: string | null;
  digest: string | null;
  outcome: SyncEventOutcome;
  reason?: string;
}

/** POST /sync/rules/{rule}/webhook → 202. */
export interface SyncDeliveryResult {
  /** Events in the delivery. */
  received: number;
  /** Events that queued (or refreshed) work. */
  queued: number;
  duplicates: number;
  ignored: number;
  rejected: number;
  /** Per event, in order (the first 100). */
  events: SyncEventResult[];
}
