/**
 * The audit log every service writes to, as the app hands it out: the store's `AuditIndex` with
 * two additions made once here instead of at every writer (the token endpoint, the admin, webhook,
 * sync and import services, the request observer):
 * - every entry is queued for each export sink in its own transaction (`audit-export.ts`), and the
 *   exporter is woken after the commit;
 * - entries are counted by event name (`berth_audit_events_total`; event names come from the code,
 *   so the label set is bounded).
 * Other index methods pass through unchanged.
 */
import type { AuditEntry, AuditIndex } from '../metadata/auth-store.js';
import type { Metrics } from '../metrics/index.js';

export interface RecordingOptions {
  /** Export sinks every entry is queued for. */
  exportTo: readonly string[];
  /** Called after an entry with exports has been committed. */
  onQueued: () => void;
  metrics?: Metrics | undefined;
}

export function recordingAudit(inner: AuditIndex, options: RecordingOptions): AuditIndex {
  const events = options.metrics?.counter('berth_audit_events_total', 'Audit entries recorded, by event.', ['event']);
  const exportTo = [...options.exportTo];
  const wrapper = Object.create(inner) as AuditIndex;
  wrapper.append = async (entry: AuditEntry, extra?: readonly string[]) => {
    const sinks = extra && extra.length > 0 ? [...new Set([...exportTo, ...extra])] : exportTo;
    await inner.append(entry, sinks);
    events?.labels(entry.event).inc();
    if (sinks.length > 0) options.onQueued();
  };
  return wrapper;
}
