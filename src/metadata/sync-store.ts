/**
 * What selective sync keeps in the metadata database: rules, the work queue, per-image status and
 * the ids of deliveries already received. Shared by every replica: work is claimed with a lease
 * (`claimed_by`, `claimed_until`) in one conditional update, so two processes never do the same
 * item or reconcile the same rule at once, and a crashed process's lease simply runs out.
 *
 * Contract: times are milliseconds (`now` injected); rule ids are opaque; `owner` is the claiming
 * process's id. Webhook secrets and inline source passwords are stored as given (HMAC needs the
 * secret itself): they are as safe as the database file.
 */
import type { SyncRule, SyncRuleSpec } from '../sync/rule.js';

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

export interface SyncRuleRecord extends SyncRule {
  state: SyncRuleState;
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

export interface SyncIndex {
  /** Creates a rule; false if the name is taken. A new rule with automatic triggers is due at `firstReconcileAt`. */
  createRule(rule: SyncRule, firstReconcileAt: number | null): Promise<boolean>;
  getRule(id: string): Promise<SyncRuleRecord | undefined>;
  findRuleByName(name: string): Promise<SyncRuleRecord | undefined>;
  listRules(): Promise<SyncRuleRecord[]>;
  /** Replaces the spec, enabled flag and webhook secret; reschedules the next reconcile. */
  updateRule(
    id: string,
    change: { spec: SyncRuleSpec; enabled: boolean; webhookSecret: string | null; nextReconcileAt: number | null; now: number },
  ): Promise<void>;
  /** Deletes the rule with its queue, status and delivery ids; false if it did not exist. */
  deleteRule(id: string): Promise<boolean>;

  /** Asks for a reconcile as soon as a worker is free. */
  requestRun(id: string, now: number): Promise<void>;
  /**
   * Claims one enabled rule whose reconcile is due (or asked for) and not leased by a live owner,
   * leasing it to `owner` until `leaseUntil`.
   */
  claimDueRule(owner: string, now: number, leaseUntil: number): Promise<SyncRuleRecord | undefined>;
  /** Extends a reconcile lease (and records progress); false if the lease was lost. */
  renewRuleLease(id: string, owner: string, leaseUntil: number, stats: ReconcileStats): Promise<boolean>;
  /**
   * Ends a reconcile: records its outcome, releases the lease, schedules the next one. With
   * `clearsRuleError` (the reconcile found every image here, so nothing of the rule is failing)
   * the rule's last error is cleared too.
   */
  finishReconcile(
    id: string,
    owner: string,
    outcome: { at: number; error: string | null; stats: ReconcileStats; nextReconcileAt: number | null; backfilled: boolean; clearsRuleError: boolean },
  ): Promise<void>;
  /** Records a copy (`syncedAt`) or a failure (`error`, at `at`) on the rule. */
  recordRuleOutcome(id: string, outcome: { syncedAt?: number; error?: string; at: number }): Promise<void>;

  /**
   * Queues (rule, repository, tag), or refreshes the queued item: one item per key however many
   * notifications arrive. A notification naming the digest already queued changes nothing
   * (`unchanged`); new information bumps the item's version (`updated`).
   */
  enqueue(
    item: { ruleId: string; repository: string; tag: string; digest: string | null; reason: SyncWorkItem['reason'] },
    now: number,
  ): Promise<EnqueueResult>;
  /**
   * Records a delivery's event id for the rule and, if it was not seen before, queues its item in
   * the same transaction. Returns `duplicate` for an id already recorded.
   */
  acceptDelivery(eventId: string, item: Parameters<SyncIndex['enqueue']>[0], now: number): Promise<EnqueueResult | 'duplicate'>;
  /** Claims up to `limit` items that are due and not leased by a live owner. */
  claimItems(owner: string, limit: number, now: number, leaseUntil: number): Promise<SyncWorkItem[]>;
  /** Extends an item's lease; false if it was lost. */
  renewItemLease(item: SyncWorkItem, owner: string, leaseUntil: number): Promise<boolean>;
  /** Done with the claimed version: removes the item, or releases it when newer information arrived meanwhile. */
  completeItem(item: SyncWorkItem, owner: string): Promise<void>;
  /** Hands a claimed item back untouched (shutdown). */
  releaseItem(item: SyncWorkItem, owner: string): Promise<void>;
  /** Not yet: the item waits until `notBefore` without counting an attempt; `note` (why) shows as its last error. */
  deferItem(item: SyncWorkItem, owner: string, notBefore: number, note: string): Promise<void>;
  /** A failed attempt: the item waits until `notBefore` and counts the attempt. */
  retryItem(item: SyncWorkItem, owner: string, notBefore: number, error: string): Promise<void>;
  /** Queued items per rule (for status), and how many of them failed at least once. */
  queueSummary(ruleId: string): Promise<{ pending: number; running: number; failing: number }>;
  listQueue(ruleId: string, limit: number): Promise<SyncWorkItem[]>;

  /** Merges what is known about one image (fields left out are kept; `copied` adds one copy). */
  recordImage(
    status: { ruleId: string; repository: string; tag: string } & Partial<Omit<SyncImageStatus, 'ruleId' | 'repository' | 'tag' | 'copies'>> & {
        copied?: boolean;
      },
  ): Promise<void>;
  listImages(ruleId: string, filter: { repository?: string | undefined; limit: number }): Promise<SyncImageStatus[]>;
  /** Source repositories the rule has a status row for (seen in a notification, a run or a reconcile), sorted. */
  knownRepositories(ruleId: string): Promise<string[]>;

  /** Forgets delivery ids received before `cutoff`; returns how many. */
  pruneDeliveries(cutoff: number): Promise<number>;
}
