/**
 * The lease vocabulary shared by the job runner (`jobs/`) and the job tables (`metadata/`): one shape
 * for every claim and renewal, whatever the table. A row is held by `owner` until its expiry; from
 * the expiry on, any owner may claim it. Times are injected milliseconds.
 */

/** `owner` holds (or is to hold) an item until `until`; `now` decides which items are due and which leases lapsed. */
export interface Lease {
  owner: string;
  now: number;
  until: number;
  /** Called by a claim for each item it took over: one whose previous owner's lease had lapsed (for metrics). */
  onTakeover?: (() => void) | undefined;
}

/** Lease up to `limit` due items. */
export interface ClaimRequest extends Lease {
  limit: number;
}

/**
 * Periodic tasks that one process at a time runs (retention pruning): one row per task name in the
 * metadata database, leased like a job item. The runner (`jobs/scheduled.ts`) drives it; the
 * metadata store implements it (`metadata/sql/scheduled-task-index.ts`).
 */
export interface ScheduledTaskStore {
  /** Leases up to `request.limit` of the named tasks that are due (a task never seen is due at once). */
  claim(names: readonly string[], request: ClaimRequest): Promise<string[]>;
  /** Extends the lease if `lease.owner` still holds the task; false otherwise. */
  renew(name: string, lease: Lease): Promise<boolean>;
  /** Records a run and gives the lease up, only if `owner` holds it. */
  release(name: string, owner: string, run: { at: number; nextDueAt: number; error: string | undefined }): Promise<void>;
}
