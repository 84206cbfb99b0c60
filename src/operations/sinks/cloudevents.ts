/**
 * The CloudEvents sink: every batch is one HTTP POST of a JSON array of CloudEvents 1.0
 * (`application/cloudevents-batch+json`, the spec's batched content mode). Any 2xx acknowledges the
 * whole batch; anything else, or no answer within the timeout, fails it (and it is sent again).
 * Each event's `id` is `audit-<entry id>`: the same entry always carries the same id, so a receiver
 * dedupes retried batches on it.
 *
 * The URL is configured by the operator (config, not the API), so it is not subject to the egress
 * policy that guards user-supplied destinations; a SIEM on a private network is the usual case.
 */
import { readFileSync } from 'node:fs';
import type { Dispatcher } from 'undici';
import type { ExportedEntry, AuditSink } from './sink.js';
import { auditEntryView, type AuditEntryView } from '../../api/audit.js';

export const cloudEventsBatchContentType = 'application/cloudevents-batch+json; charset=utf-8';

export interface CloudEventsSinkSettings {
  name: string;
  url: string;
  headers: Record<string, string>;
  caFile?: string | undefined;
  timeoutMs: number;
}

export interface AuditCloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  time: string;
  datacontenttype: 'application/json';
  subject?: string;
  /** The entry as `GET /api/v1/audit` shows it. */
  data: AuditEntryView;
}

/** An audit entry as a CloudEvent (type `io.berth.audit.<event>`, subject the repository or principal). */
export function auditCloudEvent(entry: ExportedEntry): AuditCloudEvent {
  const event: AuditCloudEvent = {
    specversion: '1.0',
    id: `audit-${entry.id}`,
    source: '/api/v1/audit',
    type: `io.berth.audit.${entry.event}`,
    time: new Date(entry.at).toISOString(),
    datacontenttype: 'application/json',
    data: auditEntryView(entry),
  };
  const subject = entry.repository ?? entry.principalName;
  if (subject !== undefined) event.subject = subject;
  return event;
}

export class CloudEventsSink implements AuditSink {
  readonly name: string;
  private dispatcher: Dispatcher | undefined;

  constructor(private readonly settings: CloudEventsSinkSettings) {
    this.name = settings.name;
  }

  async send(entries: readonly ExportedEntry[], signal: AbortSignal): Promise<void> {
    const undici = await import('undici');
    this.dispatcher ??= this.settings.caFile ? new undici.Agent({ connect: { ca: readFileSync(this.settings.caFile, 'utf8') } }) : undefined;
    const res = await undici.request(this.settings.url, {
      method: 'POST',
      headers: { ...this.settings.headers, 'content-type': cloudEventsBatchContentType, 'user-agent': 'Berth-Audit/1' },
      body: JSON.stringify(entries.map(auditCloudEvent)),
      signal: AbortSignal.any([signal, AbortSignal.timeout(this.settings.timeoutMs)]),
      headersTimeout: this.settings.timeoutMs,
      bodyTimeout: this.settings.timeoutMs,
      ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
    });
    const snippet = (await res.body.text().catch(() => '')).slice(0, 200);
    if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`HTTP ${res.statusCode}${snippet ? `: ${snippet}` : ''}`);
  }

  async close(): Promise<void> {
    await this.dispatcher?.close();
  }
}
