/**
 * Table shapes for the metadata database (SQLite by default, PostgreSQL for scale-out).
 * Times are integer milliseconds since the epoch. Digests are canonical `alg:hex` strings.
 */
import type { Generated } from 'kysely';

export interface RepositoriesTable {
  id: Generated<number>;
  name: string;
  created_at: number;
}

/** Content present in blob storage, stored once for all repositories. */
export interface BlobsTable {
  digest: string;
  size: number;
  /** Last time a client pushed or mounted this content; GC keeps blobs pushed within its grace period. */
  pushed_at: number;
}

/** Which repository may serve which blob (pushed or mounted there). */
export interface RepositoryBlobsTable {
  repository_id: number;
  digest: string;
  created_at: number;
}

/** Exact manifest bytes, stored once per digest. */
export interface ManifestContentsTable {
  digest: string;
  content: Buffer;
  created_at: number;
}

export interface ManifestsTable {
  repository_id: number;
  digest: string;
  media_type: string;
  size: number;
  subject_digest: string | null;
  artifact_type: string | null;
  /** JSON text of the manifest's top-level annotations (for referrers responses). */
  annotations: string | null;
  created_at: number;
}

/** Edges from a manifest to what it needs: blobs (config, layers) and child manifests. */
export interface ManifestReferencesTable {
  repository_id: number;
  manifest_digest: string;
  child_digest: string;
  kind: 'blob' | 'manifest';
}

export interface TagsTable {
  repository_id: number;
  name: string;
  digest: string;
  updated_at: number;
}

export interface UploadsTable {
  id: string;
  repository_id: number;
  created_at: number;
  updated_at: number;
  /** The layout of the session's storage object: `flat` or, for sessions begun before 0070, `directory`. */
  layout: Generated<string>;
}

export type PrincipalKind = 'user' | 'admin' | 'service' | 'token';

/** Anything that can authenticate: a user, the admin user, a service principal, a scoped token. */
export interface PrincipalsTable {
  id: string;
  kind: PrincipalKind;
  /** Login name: user name, admin user name, token name, or a service principal's client id. */
  name: string;
  description: string | null;
  disabled: number;
  expires_at: number | null;
  created_at: number;
}

/** Hashed secrets (passwords, client secrets); never stored in clear. */
export interface CredentialsTable {
  id: string;
  principal_id: string;
  /** `password`, `password1`/`password2` (admin user, tokens), or a client secret's name. */
  label: string;
  hash: string;
  expires_at: number | null;
  created_at: number;
}

export interface GrantsTable {
  principal_id: string;
  pattern: string;
  permission: string;
}

export interface RefreshTokensTable {
  id: string;
  principal_id: string;
  /** The credential that bought it; rotating that credential revokes the token. */
  credential_id: string | null;
  /** `secret` or `federated`: which table `credential_id` is in (null: from before 0011, either). */
  credential_kind: string | null;
  expires_at: number;
  created_at: number;
  revoked_at: number | null;
}

/** Token signing keys, shared by every replica through the database. */
export interface SigningKeysTable {
  kid: string;
  alg: string;
  private_jwk: string;
  public_jwk: string;
  created_at: number;
  /** When it stopped signing; it is still published (to verify) for the longest token lifetime. */
  retired_at: number | null;
  /** When an owner revoked it: from then on it verifies nothing and is no longer published. */
  revoked_at: number | null;
}

/** Values that identify this installation, shared by its replicas (name -> value, written once). */
export interface InstanceSettingsTable {
  name: string;
  value: string;
  created_at: number;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  event: string;
  principal_id: string | null;
  principal_name: string | null;
  client_address: string | null;
  detail: string | null;
  /** The repository an entry is about, when it is about one (0020). */
  repository: string | null;
}

/** One audit entry waiting to be exported to one sink (the audit export's outbox, 0020). */
export interface AuditExportsTable {
  sink: string;
  entry_id: number;
  attempts: number;
  next_attempt_at: number;
  claimed_by: string | null;
  claimed_until: number | null;
  last_error: string | null;
}

/** One garbage-collection run (`berth gc`), for metrics (0020). */
export interface GcRunsTable {
  id: Generated<number>;
  started_at: number;
  finished_at: number;
  status: string;
  blobs: number;
  bytes: number;
  uploads: number;
}

/** Periodic tasks (retention pruning), one row per task, leased to one replica at a time. */
export interface ScheduledTasksTable {
  name: string;
  due_at: number;
  claimed_by: string | null;
  claimed_until: number | null;
  last_run_at: number | null;
  last_error: string | null;
}

export interface AnonymousPullTable {
  pattern: string;
  created_at: number;
}

/**
 * Trust in an external OIDC identity: a token from `issuer`, for one of `audiences`, whose `sub`
 * matches `subject` (exact or glob) and whose claims meet every condition, acts as the principal.
 */
export interface FederatedCredentialsTable {
  id: string;
  principal_id: string;
  name: string;
  issuer: string;
  /** JSON array of accepted `aud` values (non-empty). */
  audiences: string;
  subject: string;
  /** JSON array of `{claim, equals?|glob?|oneOf?}`; all must hold. */
  conditions: string;
  created_at: number;
}

/** Who pushed what: one row per manifest push (and per tag it set). */
export interface PushesTable {
  id: Generated<number>;
  repository_id: number;
  digest: string;
  tag: string | null;
  at: number;
  principal_id: string | null;
  principal_name: string | null;
  /** JSON: for federated logins the token's identifying claims (iss, sub, repository, ref, sha, …). */
  provenance: string | null;
}

/** Selective sync rules (`src/sync/`): the spec as JSON, plus scheduling and outcome columns. */
export interface SyncRulesTable {
  id: string;
  name: string;
  /** JSON of `SyncRuleSpec` (source, repositories, tags, destinationPrefix, triggers, limits). */
  spec: string;
  /** Shared secret of the webhook trigger, as given: the receiver needs it to check HMACs. */
  webhook_secret: string | null;
  enabled: number;
  created_at: number;
  updated_at: number;
  next_reconcile_at: number | null;
  run_requested_at: number | null;
  /** Lease of the replica running this rule's reconcile. */
  reconcile_claimed_by: string | null;
  reconcile_claimed_until: number | null;
  last_reconcile_started_at: number | null;
  last_reconcile_at: number | null;
  last_reconcile_error: string | null;
  /** JSON `{repositories, tags, queued, errors}` of the last or running reconcile. */
  last_reconcile_stats: string | null;
  backfilled_at: number | null;
  last_sync_at: number | null;
  last_error: string | null;
  last_error_at: number | null;
}

/** Sync work: one row per (rule, source repository, tag), however many notifications named it. */
export interface SyncQueueTable {
  rule_id: string;
  repository: string;
  tag: string;
  digest: string | null;
  reason: string;
  version: number;
  enqueued_at: number;
  not_before: number;
  attempts: number;
  last_error: string | null;
  claimed_by: string | null;
  claimed_until: number | null;
}

/** Per-image sync status: what the source had, what was copied, when, and the last error. */
export interface SyncImagesTable {
  rule_id: string;
  repository: string;
  tag: string;
  source_digest: string | null;
  digest: string | null;
  last_checked_at: number | null;
  last_sync_at: number | null;
  last_error: string | null;
  last_error_at: number | null;
  copies: number;
}

/** Event ids of webhook deliveries already received, so a replay is not queued twice. */
export interface SyncDeliveriesTable {
  rule_id: string;
  event_id: string;
  received_at: number;
}

/** Webhook subscriptions (see metadata/event-store.ts). */
export interface WebhooksTable {
  id: string;
  name: string;
  url: string;
  /** JSON array of actions. */
  events: string;
  /** JSON array of filter entries. */
  filters: string;
  /** JSON object of extra request headers. */
  headers: string;
  /** The HMAC signing key, stored retrievably (signing needs it). */
  secret: string;
  previous_secret: string | null;
  previous_secret_until: number | null;
  format: string;
  enabled: number;
  created_at: number;
  updated_at: number;
}

/** The outbox: one row per repository change (or ping), written in the change's transaction. */
export interface EventsTable {
  id: string;
  action: string;
  repository: string | null;
  /** JSON array: the tags the change carries, for filter matching. */
  tags: string;
  digest: string | null;
  /** The payload document, serialised once. */
  payload: string;
  /** A ping's one subscription. */
  subscription_id: string | null;
  created_at: number;
  fanned_out_at: number | null;
}

/** One event to one subscription; unique per (event, subscription). */
export interface DeliveriesTable {
  id: string;
  event_id: string;
  subscription_id: string;
  status: string;
  attempts: number;
  cycle: number;
  next_attempt_at: number;
  /** The process holding the lease, and until when. */
  claimed_by: string | null;
  claimed_until: number | null;
  created_at: number;
  updated_at: number;
}

export interface DeliveryAttemptsTable {
  id: Generated<number>;
  delivery_id: string;
  cycle: number;
  attempt: number;
  at: number;
  status_code: number | null;
  error: string | null;
  latency_ms: number;
  response_snippet: string | null;
  ok: number;
}

/** Import jobs (`metadata/import-store.ts`): the spec as JSON, the lease, progress and outcome. */
export interface ImportJobsTable {
  id: string;
  /** queued | running | succeeded | failed */
  status: string;
  /** JSON of `ImportJobSpec`. */
  spec: string;
  /** JSON `{username, password}` given with the request, kept only while the job may still run. */
  credentials: string | null;
  requested_by_id: string | null;
  requested_by_name: string | null;
  attempts: number;
  not_before: number;
  /** Lease of the process running the job. */
  claimed_by: string | null;
  claimed_until: number | null;
  /** JSON of `ImportProgress`. */
  progress: string | null;
  /** JSON of `ImportResult`. */
  result: string | null;
  error_code: string | null;
  error_message: string | null;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  finished_at: number | null;
}

/**
 * Keys that sign push attestations (`attestations/`). Retired keys keep their row for good: their
 * public half verifies every attestation they signed, however old.
 */
export interface AttestationKeysTable {
  /** The key's hint: hex sha256 of its SubjectPublicKeyInfo (DER). */
  id: string;
  algorithm: string;
  private_pem: string;
  public_pem: string;
  created_at: number;
  retired_at: number | null;
}

/** A web console session: the cookie's opaque id is stored only as its SHA-256 (base64url). */
export interface ConsoleSessionsTable {
  id_hash: string;
  principal_id: string;
  /** How the person signed in: `password` or `sso`. */
  method: string;
  /** The SSO provider's configured name, for `sso` sessions. */
  provider: string | null;
  created_at: number;
  /** Absolute end, however active. */
  expires_at: number;
  /** Last request (refreshed at most once a minute); the idle timeout counts from here. */
  last_seen_at: number;
}

/** A single-sign-on identity (the ID token's `iss` + `sub`) and the principal it signs in as. */
export interface ConsoleIdentitiesTable {
  issuer: string;
  subject: string;
  provider: string;
  principal_id: string;
  created_at: number;
  last_sign_in_at: number;
}

/** Pull-through cache rules managed through /api/v1 (`cache/rule.ts` writes the spec JSON). */
export interface CacheRulesTable {
  id: string;
  name: string;
  spec: string;
  created_at: number;
  updated_at: number;
}

/** A cached tag (`repository` is the local name, prefix included): what it points at and when the upstream last confirmed it. */
export interface CacheTagsTable {
  repository: string;
  tag: string;
  /** The rule's name. */
  rule: string;
  digest: string;
  checked_at: number;
  /** 1: re-check on the next pull whatever the freshness window says (a refresh asked for it). */
  expired: number;
}

/** A cached manifest and when a client last pulled it (eviction). */
export interface CachePullsTable {
  repository: string;
  digest: string;
  rule: string;
  cached_at: number;
  last_pulled_at: number;
}

/** Each rule's eviction sweep: when it is due, and the replica holding it. */
export interface CacheSweepsTable {
  rule: string;
  next_at: number;
  claimed_by: string | null;
  claimed_until: number | null;
  last_run_at: number | null;
  last_evicted: number | null;
  last_error: string | null;
}

/** Lifecycle policies (`src/lifecycle/`): retention rules, immutability rules, quotas; the rule as JSON. */
export interface LifecyclePoliciesTable {
  id: string;
  /** retention | immutability | quotas */
  kind: string;
  name: string;
  /** JSON of the rule in canonical form (`api/lifecycle.ts`). */
  spec: string;
  created_at: number;
  updated_at: number;
}

/** When each periodic lifecycle job is next due (`usage`, `retention:<policy id>`); advanced by compare-and-set. */
export interface LifecycleScheduleTable {
  name: string;
  next_at: number;
}

/** Lifecycle runs (retention runs, usage refreshes), claimed with a lease by one replica each. */
export interface LifecycleRunsTable {
  id: string;
  /** retention | usage */
  kind: string;
  policy_id: string | null;
  policy_name: string;
  /** JSON of the rule as it was when the run was created (what the run applies). */
  spec: string | null;
  dry_run: number;
  /** schedule | request */
  trigger: string;
  /** queued | running | succeeded | failed */
  status: string;
  requested_by: string | null;
  attempts: number;
  claimed_by: string | null;
  claimed_until: number | null;
  /** JSON of the run's progress (counts, and the repository it finished last: where it resumes). */
  progress: string | null;
  error: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
}

/** What a retention run deleted (or, dry, would have), in order, with why. */
export interface LifecycleRunActionsTable {
  id: Generated<number>;
  run_id: string;
  repository: string;
  /** delete | untag */
  action: string;
  digest: string;
  /** JSON array of tags. */
  tags: string;
  reason: string;
  /** deleted | would-delete | skipped */
  outcome: string;
  detail: string | null;
  at: number;
}

/** When each manifest was last pulled, written in batches (never once per pull). */
export interface ManifestPullsTable {
  repository_id: number;
  digest: string;
  last_pulled_at: number;
}

/** Storage usage per repository as the usage job last computed it. */
export interface RepositoryUsageTable {
  repository_id: number;
  logical_bytes: number;
  exclusive_bytes: number;
  manifests: number;
  blobs: number;
  computed_at: number;
}

/** A quota's usage: the last computed sum, plus what pushes accepted since added, and its state. */
export interface QuotaUsageTable {
  policy_id: string;
  usage_bytes: number;
  delta_bytes: number;
  /** ok | warning | exceeded */
  state: string;
  state_changed_at: number;
  computed_at: number;
}

export interface Schema {
  repositories: RepositoriesTable;
  blobs: BlobsTable;
  repository_blobs: RepositoryBlobsTable;
  manifest_contents: ManifestContentsTable;
  manifests: ManifestsTable;
  manifest_references: ManifestReferencesTable;
  tags: TagsTable;
  uploads: UploadsTable;
  principals: PrincipalsTable;
  credentials: CredentialsTable;
  grants: GrantsTable;
  refresh_tokens: RefreshTokensTable;
  signing_keys: SigningKeysTable;
  instance_settings: InstanceSettingsTable;
  audit_log: AuditLogTable;
  anonymous_pull: AnonymousPullTable;
  federated_credentials: FederatedCredentialsTable;
  pushes: PushesTable;
  import_jobs: ImportJobsTable;
  webhooks: WebhooksTable;
  events: EventsTable;
  deliveries: DeliveriesTable;
  delivery_attempts: DeliveryAttemptsTable;
  sync_rules: SyncRulesTable;
  sync_queue: SyncQueueTable;
  sync_images: SyncImagesTable;
  sync_deliveries: SyncDeliveriesTable;
  scheduled_tasks: ScheduledTasksTable;
  attestation_keys: AttestationKeysTable;
  console_sessions: ConsoleSessionsTable;
  console_identities: ConsoleIdentitiesTable;
  cache_rules: CacheRulesTable;
  cache_tags: CacheTagsTable;
  cache_pulls: CachePullsTable;
  cache_sweeps: CacheSweepsTable;
  lifecycle_policies: LifecyclePoliciesTable;
  lifecycle_schedule: LifecycleScheduleTable;
  lifecycle_runs: LifecycleRunsTable;
  lifecycle_run_actions: LifecycleRunActionsTable;
  manifest_pulls: ManifestPullsTable;
  repository_usage: RepositoryUsageTable;
  quota_usage: QuotaUsageTable;
  audit_exports: AuditExportsTable;
  gc_runs: GcRunsTable;
}
