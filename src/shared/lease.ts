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
