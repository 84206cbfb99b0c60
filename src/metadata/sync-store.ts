/**
 * What selective sync keeps in the metadata database, one index per thing it holds (`SyncMetadata`):
 * rules, their reconcile runs, the work queue, per-image status and the ids of deliveries already
 * received. Shared by every replica: reconciles and queue items are claimed with a lease
 * (`shared/lease.ts`) in one conditional update, so two processes never do the same item or
 * reconcile the same rule at once, and a crashed process's lease simply runs out.
 *
 * Contract: times are milliseconds (`now` injected); rule ids are opaque; `owner` is the claiming
 * process's id. A rule's spec is JSON written and read by `sync/rule.ts` (opaque here). Webhook
 * secrets and inline source passwords are stored as given (HMAC needs the secret itself): they are
 * as safe as the database file.
 */
import type { ClaimRequest, Lease } from '../shared/lease.js';

/** A rule as written: identity, switches and times; the spec is `sync/rule.ts`'s JSON. */
export interface NewSyncRule {
  id: string;
  name: string;
  /** JSON of the rule's spec (source, repositories, tags, destination, triggers, limits, referrers). */
  spec: string;
  enabled: boolean;
  /** The shared secret of the webhook trigger; null without it. */
  webhookSecret: string | null;
  createdAt: number;
  updatedAt: number;
}

/** A stored rule with the state of its runs. */
export interface SyncRuleRow extends NewSyncRule {
  state: SyncRuleState;
}

/** Scheduling and outcome of a rule's reconcile runs, plus its last sync. */
export interface SyncRuleState {
  /** When the next reconcile is due (null: only on demand or by webhook). */
  nextReconcileAt: number | null;
  /** An on-demand run asked for at this time and not yet started. */
  runRequestedAt: number | null;
  /** Until when a replica holds the reconcile lease (a time in the past: none is running). */
  reconcileLeaseUntil: number | null;
  lastReconcileStartedAt: number | null;
  lastReconcileAt: number | null;
  lastReconcileError: string | null;
  /** Counts of the last (or running) reconcile: repositories and tags checked, images queued. */
  lastReconcileStats: ReconcileStats | null;
  /** When the first complete reconcile (the backfill) finished. */
  backfilledAt: number | null;
  lastSyncAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
}

export interface ReconcileStats {
  repositories: number;
  tags: number;
  queued: number;
  errors: number;
  /**
   * Whether the source's catalog could be listed. When it could not (a credential scoped to some
   * repositories may not read it), the reconcile covers the rule's literal repository names and
   * the repositories it already knows from notifications and earlier runs.
   */
  catalog?: 'listed' | 'unavailable' | 'not needed';
}

/** A (rule, source repository, tag) that needs checking and maybe copying. */
export interface SyncWorkItem {
  ruleId: string;
  repository: string;
  tag: string;
  /** The digest a notification or reconcile saw at the source (a hint: the worker asks again). */
  digest: string | null;
  reason: 'webhook' | 'reconcile' | 'manual';
  /** Bumped whenever new information arrives, so a claim can tell it went stale while running. */
  version: number;
  /** When the current information (digest, reason) arrived: the insert, or the last update that changed it. */
  enqueuedAt: number;
  notBefore: number;
  attempts: number;
  lastError: string | null;
}

export interface SyncImageStatus {
  ruleId: string;
  repository: string;
  tag: string;
  /** What the source's tag pointed at when last checked. */
  sourceDigest: string | null;
  /** What this registry's copy points at after the last sync. */
  digest: string | null;
  lastCheckedAt: number | null;
  lastSyncAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
  /** How many times it was copied (an unchanged tag is not copied again). */
  copies: number;
}

export type EnqueueResult = 'queued' | 'updated' | 'unchanged';

/** The rules: what is copied from where, and the outcome of the last copies. */
export interface SyncRuleIndex {
  /** Creates a rule; false if the name is taken. A new rule with automatic triggers is due at `firstReconcileAt`. */
  create(rule: NewSyncRule, firstReconcileAt: number | null): Promise<boolean>;
  get(id: string): Promise<SyncRuleRow | undefined>;
  findByName(name: string): Promise<SyncRuleRow | undefined>;
  /** Every rule, sorted by name. */
  list(): Promise<SyncRuleRow[]>;
  /** Replaces the spec, enabled flag and webhook secret; reschedules the next reconcile. */
  update(id: string, change: { spec: string; enabled: boolean; webhookSecret: string | null; nextReconcileAt: number | null; now: number }): Promise<void>;
  /** Deletes the rule with its queue, status and delivery ids; false if it did not exist. */
  delete(id: string): Promise<boolean>;
  /** Asks for a reconcile as soon as a worker is free. */
  requestRun(id: string, now: number): Promise<void>;
  /** Records a copy (`syncedAt`) or a failure (`error`, at `at`) on the rule. */
  recordOutcome(id: string, outcome: { syncedAt?: number; error?: string; at: number }): Promise<void>;
}

/** A rule's reconcile runs: their schedule, lease and outcome. */
export interface SyncReconcileIndex {
  /**
   * Leases up to `limit` enabled rules whose reconcile is due (or asked for) and not leased by a
   * live owner, marking the run started.
   */
  claim(request: ClaimRequest): Promise<SyncRuleRow[]>;
  /** Extends a reconcile lease (and records progress); false if the lease was lost. */
  renew(ruleId: string, lease: Lease, stats: ReconcileStats): Promise<boolean>;
  /**
   * Ends a reconcile: records its outcome, releases the lease, schedules the next one. With
   * `clearsRuleError` (the reconcile found every image here, so nothing of the rule is failing)
   * the rule's last error is cleared too.
   */
  finish(
    ruleId: string,
    owner: string,
    outcome: { at: number; error: string | null; stats: ReconcileStats; nextReconcileAt: number | null; backfilled: boolean; clearsRuleError: boolean },
  ): Promise<void>;
}

/** What `enqueue` queues. */
export type SyncQueueEntry = Pick<SyncWorkItem, 'ruleId' | 'repository' | 'tag' | 'digest' | 'reason'>;

/** The work queue: images to check and maybe copy, claimed with a lease. */
export interface SyncQueueIndex {
  /**
   * Queues (rule, repository, tag), or refreshes the queued item: one item per key however many
   * notifications arrive. A notification naming the digest already queued changes nothing
   * (`unchanged`); new information bumps the item's version (`updated`).
   */
  enqueue(item: SyncQueueEntry, now: number): Promise<EnqueueResult>;
  /** Leases up to `limit` items that are due, of enabled rules, and not leased by a live owner. */
  claim(request: ClaimRequest): Promise<SyncWorkItem[]>;
  /** Extends an item's lease; false if it was lost. */
  renew(item: SyncWorkItem, lease: Lease): Promise<boolean>;
  /** Done with the claimed version: removes the item, or releases it when newer information arrived meanwhile. */
  complete(item: SyncWorkItem, owner: string): Promise<void>;
  /** Hands a claimed item back untouched (shutdown). */
  release(item: SyncWorkItem, owner: string): Promise<void>;
  /** Not yet: the item waits until `notBefore` without counting an attempt; `note` (why) shows as its last error. */
  defer(item: SyncWorkItem, owner: string, notBefore: number, note: string): Promise<void>;
  /** A failed attempt: the item waits until `notBefore` and counts the attempt. */
  retry(item: SyncWorkItem, owner: string, notBefore: number, error: string): Promise<void>;
  /** Queued items of a rule (for status), how many are claimed, and how many failed at least once. */
  summary(ruleId: string): Promise<{ pending: number; running: number; failing: number }>;
  list(ruleId: string, limit: number): Promise<SyncWorkItem[]>;
}

/** What is known about each image of a rule. */
export interface SyncImageIndex {
  /** Merges what is known about one image (fields left out are kept; `copied` adds one copy). */
  record(
    status: { ruleId: string; repository: string; tag: string } & Partial<Omit<SyncImageStatus, 'ruleId' | 'repository' | 'tag' | 'copies'>> & {
        copied?: boolean;
      },
  ): Promise<void>;
  list(ruleId: string, filter: { repository?: string | undefined; limit: number }): Promise<SyncImageStatus[]>;
  /** Source repositories the rule has a status row for (seen in a notification, a run or a reconcile), sorted. */
  repositories(ruleId: string): Promise<string[]>;
}

/** The receiver's memory of delivery ids, so a repeated delivery is not queued twice. */
export interface SyncReceiptIndex {
  /**
   * Records a delivery's event id for the rule and, if it was not seen before, queues its item in
   * the same transaction. Returns `duplicate` for an id already recorded.
   */
  accept(eventId: string, item: SyncQueueEntry, now: number): Promise<EnqueueResult | 'duplicate'>;
  /** Forgets delivery ids received before `cutoff`; returns how many. */
  prune(cutoff: number): Promise<number>;
}

export interface SyncMetadata {
  readonly rules: SyncRuleIndex;
  readonly reconciles: SyncReconcileIndex;
  readonly queue: SyncQueueIndex;
  readonly images: SyncImageIndex;
  readonly receipts: SyncReceiptIndex;
}
