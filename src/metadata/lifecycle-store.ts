/**
 * What lifecycle policies (`src/lifecycle/`) keep in the metadata database, split by concern:
 * policies, schedules, runs with their actions, repository state (snapshots for retention, last
 * pulls, first pushes), and storage usage. Implemented once in `sql/lifecycle-index.ts` and
 * `sql/usage-index.ts` for SQLite and PostgreSQL.
 *
 * Rows in, rows out: a policy's rule and a run's progress are JSON documents this layer stores as
 * given and never reads.
 */
import type { ClaimRequest, Lease } from '../shared/lease.js';
import type { PushRecord } from './store.js';

export interface PolicyRecord {
  id: string;
  kind: string;
  name: string;
  /** The rule, as JSON text (opaque here). */
  spec: string;
  createdAt: number;
  updatedAt: number;
}

export interface PolicyIndex {
  /** Every policy, or those of one kind, sorted by kind then name. */
  list(kind?: string): Promise<PolicyRecord[]>;
  get(kind: string, name: string): Promise<PolicyRecord | undefined>;
  /** Creates the policy, or replaces the spec of the one with its kind and name (its id and creation time stay). */
  put(kind: string, name: string, spec: string, now: number): Promise<{ record: PolicyRecord; created: boolean }>;
  /** Deletes it (its quota usage row goes with it); the deleted record, or undefined if there was none. */
  delete(kind: string, name: string): Promise<PolicyRecord | undefined>;
  /** A value that changes whenever any policy is created, changed or deleted (for caches on other replicas). */
  version(): Promise<string>;
}

export interface ScheduleIndex {
  /** Sets when `name` is next due (creating the entry). */
  set(name: string, nextAt: number): Promise<void>;
  remove(name: string): Promise<void>;
  get(name: string): Promise<number | undefined>;
  /** Entries due at `now` (next_at <= now), with the time each was due. */
  due(now: number): Promise<Array<{ name: string; nextAt: number }>>;
  /** Moves `name` from `from` to `to` if it is still due at `from`: true for exactly one of several callers. */
  advance(name: string, from: number, to: number): Promise<boolean>;
}

export type RunStatusText = 'queued' | 'running' | 'succeeded' | 'failed';

export interface NewRun {
  id: string;
  kind: string;
  policyId: string | undefined;
  policyName: string;
  /** The rule the run applies, as JSON text (undefined for runs that need none). */
  spec: string | undefined;
  dryRun: boolean;
  trigger: 'schedule' | 'request';
  requestedBy: string | undefined;
}

export interface RunRecord extends NewRun {
  status: RunStatusText;
  attempts: number;
  /** JSON text of the progress (opaque here). */
  progress: string | undefined;
  error: string | undefined;
  createdAt: number;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  updatedAt: number;
}

export interface NewRunAction {
  repository: string;
  action: string;
  digest: string;
  tags: readonly string[];
  reason: string;
  outcome: string;
  detail: string | undefined;
}

export interface RunActionRecord extends NewRunAction {
  id: number;
  at: number;
}

export interface RunIndex {
  create(run: NewRun, now: number): Promise<RunRecord>;
  get(id: string): Promise<RunRecord | undefined>;
  /** Newest first; optionally of one policy (by name) or one kind. */
  list(filter: { policyName?: string | undefined; kind?: string | undefined; limit: number }): Promise<RunRecord[]>;
  /** A queued or running run of the policy and kind, if any. */
  active(kind: string, policyName: string): Promise<RunRecord | undefined>;
  /** Leases up to `limit` runnable runs (queued, or running under a lapsed lease), oldest first; marks them running. */
  claim(request: ClaimRequest): Promise<RunRecord[]>;
  renew(id: string, lease: Lease): Promise<boolean>;
  /** Saves progress while `owner` holds the run; false (nothing written) otherwise. */
  saveProgress(id: string, owner: string, progress: string, now: number): Promise<boolean>;
  /** Ends the run (succeeded or failed) if `owner` holds it, or hands it back to the queue (`queued`, for another runner to resume). */
  release(
    id: string,
    owner: string,
    outcome: { status: RunStatusText; progress?: string | undefined; error?: string | undefined },
    now: number,
  ): Promise<boolean>;
  /** Appends actions to the run's report, in order. */
  addActions(runId: string, actions: readonly NewRunAction[], now: number): Promise<void>;
  /** The run's actions in order, after action `after` (exclusive). */
  actions(runId: string, page: { after?: number | undefined; limit: number }): Promise<RunActionRecord[]>;
  /** Deletes finished runs (with their actions) that finished before `cutoff`; returns how many. */
  prune(cutoff: number): Promise<number>;
}

export interface SnapshotRows {
  manifests: Array<{ digest: string; mediaType: string; size: number; createdAt: number; subject: string | undefined; artifactType: string | undefined }>;
  /** Edges from a manifest to the child manifests it lists. */
  children: Array<{ parent: string; child: string }>;
  tags: Array<{ name: string; digest: string; updatedAt: number }>;
  pulls: Array<{ digest: string; lastPulledAt: number }>;
}

export interface RepositoryStateIndex {
  /** Every repository holding at least one manifest, sorted by name, after `after` (exclusive). */
  repositories(page: { after?: string | undefined; limit: number }): Promise<string[]>;
  /** What the repository holds now; undefined if it was never written to. */
  snapshot(repository: string): Promise<SnapshotRows | undefined>;
  /** The digests the tags point at now (tags that do not exist are absent). */
  tagDigests(repository: string, tags: readonly string[]): Promise<Map<string, string>>;
  /** The earliest push that set `tag` to `digest`. */
  firstPush(repository: string, tag: string, digest: string): Promise<PushRecord | undefined>;
  /**
   * Bytes a manifest push would make the repository reference anew: the manifest's own size unless
   * the repository holds it, plus the sizes of `blobs` no manifest of the repository references yet
   * (blobs the registry does not store count nothing).
   */
  newlyReferencedBytes(repository: string, manifest: { digest: string; size: number }, blobs: readonly string[]): Promise<number>;
  /** Records pulls (the latest time per manifest wins, whatever order replicas write in); unknown repositories are skipped. */
  recordPulls(pulls: ReadonlyArray<{ repository: string; digest: string; at: number }>): Promise<void>;
  /** Forgets last pulls of manifests no longer in their repository; returns how many. */
  prunePulls(): Promise<number>;
}

export interface RepositoryUsage {
  repository: string;
  logicalBytes: number;
  exclusiveBytes: number;
  manifests: number;
  blobs: number;
  computedAt: number;
}

export interface QuotaUsageRecord {
  policyId: string;
  usageBytes: number;
  deltaBytes: number;
  state: string;
  stateChangedAt: number;
  computedAt: number;
}

export interface UsageIndex {
  /** Computes one repository's usage from the live tables (undefined: never written to). */
  compute(repository: string, now: number): Promise<RepositoryUsage | undefined>;
  /** Stores computed usage rows (replacing earlier ones). */
  save(rows: readonly RepositoryUsage[]): Promise<void>;
  /** Stored usage rows, sorted by repository name, after `after`, optionally only the named repositories. */
  list(page: { after?: string | undefined; limit: number; only?: readonly string[] | undefined }): Promise<RepositoryUsage[]>;
  /** Bytes deleting every listed repository would free (blobs and manifests nothing else references). */
  exclusiveOf(repositories: readonly string[]): Promise<number>;
  quotas(): Promise<QuotaUsageRecord[]>;
  quota(policyId: string): Promise<QuotaUsageRecord | undefined>;
  /**
   * Records a freshly computed usage: `usage` replaces the sum, and `consumed` (the delta read when
   * the computation started) is taken off the delta, keeping what pushes added meanwhile. Creates
   * the row (state `state`) if there is none.
   */
  setQuota(policyId: string, usage: number, consumed: number, state: string, now: number): Promise<void>;
  /** Adds accepted push bytes to each quota's delta (rows that do not exist yet are skipped). */
  addQuotaDelta(policyIds: readonly string[], bytes: number): Promise<void>;
  /** Moves the quota's state from `from` to `to`; true for exactly one of several callers. */
  transitionQuota(policyId: string, from: string, to: string, now: number): Promise<boolean>;
}

export interface LifecycleMetadata {
  readonly policies: PolicyIndex;
  readonly schedule: ScheduleIndex;
  readonly runs: RunIndex;
  readonly state: RepositoryStateIndex;
  readonly usage: UsageIndex;
}
