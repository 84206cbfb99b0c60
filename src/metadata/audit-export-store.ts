/**
 * The audit export's outbox: one row per (sink, audit entry) until that sink has the entry.
 * Rows are written by `AuditIndex.append` in the entry's own transaction; an exporter leases a
 * sink's due rows (oldest entry first), sends them, and removes them, or hands them back with a
 * retry time. Leases use the one claim helper (`sql/claim.ts`), so replicas never send one row at
 * once, and a crashed exporter's rows are claimed again when its lease lapses: at least once.
 */
import type { AuditEntry } from './auth-store.js';
import type { ClaimRequest, Lease } from '../shared/lease.js';

export interface ClaimedAuditExport {
  entry: AuditEntry & { id: number };
  /** Failed attempts so far. */
  attempts: number;
}

export interface AuditExportIndex {
  /** Leases up to `request.limit` due rows of `sink`, oldest entry first, with their entries. */
  claim(sink: string, request: ClaimRequest): Promise<ClaimedAuditExport[]>;
  /** Extends the lease on the rows `lease.owner` still holds; false if it holds none of them any more. */
  renew(sink: string, entryIds: readonly number[], lease: Lease): Promise<boolean>;
  /** The sink has these entries: removes the rows `owner` holds. */
  complete(sink: string, entryIds: readonly number[], owner: string): Promise<void>;
  /** Hands the rows `owner` holds back, due at `nextAttemptAt`; `error` counts an attempt and is kept. */
  release(sink: string, entryIds: readonly number[], owner: string, nextAttemptAt: number, error?: string): Promise<void>;
  /** When the next row of `sink` falls due (its retry time, or its lapsed lease), if any. */
  nextDueAt(sink: string): Promise<number | undefined>;
  /** Removes the rows of every sink not in `keep` (removed from the configuration); returns how many. */
  dropOtherSinks(keep: readonly string[]): Promise<number>;
}
