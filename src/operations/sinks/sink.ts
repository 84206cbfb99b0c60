/** What an audit export sink does: take a batch of entries, or fail (the batch is then retried). */
import type { AuditEntry } from '../../metadata/auth-store.js';

export type ExportedEntry = AuditEntry & { id: number };

export interface AuditSink {
  /** The configured name (metrics label, log field, and the outbox's key). */
  readonly name: string;
  /**
   * Delivers `entries` (oldest first); resolves once the receiver has acknowledged them all, or
   * rejects. A rejected batch is sent again whole, so receivers dedupe on the entry id.
   */
  send(entries: readonly ExportedEntry[], signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** Event names whose entries record a refusal or failure (syslog severity warning rather than notice). */
export function isFailureEvent(event: string): boolean {
  return event.endsWith('.failed') || event.endsWith('.refused') || event.endsWith('.denied');
}
