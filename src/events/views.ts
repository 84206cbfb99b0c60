/**
 * Webhook records as the management API shows them (the wire types are in `api/webhooks.ts`):
 * secrets never, header values and the URL's password and query values redacted.
 */
import { redacted, type AttemptView, type DeliveryView, type WebhookView } from '../api/webhooks.js';
import type { AttemptRecord, DeliveryRecord, WebhookRecord } from '../metadata/event-store.js';

const iso = (ms: number): string => new Date(ms).toISOString();

export function webhookView(record: WebhookRecord, now: number): WebhookView {
  return {
    id: record.id,
    name: record.name,
    url: redactUrl(record.url),
    events: [...record.events],
    filters: [...record.filters],
    headers: Object.fromEntries(Object.keys(record.headers).map((name) => [name, redacted])),
    format: record.format,
    enabled: record.enabled,
    previousSecretUntil:
      record.previousSecret !== undefined && record.previousSecretUntil !== undefined && record.previousSecretUntil > now
        ? iso(record.previousSecretUntil)
        : null,
    createdAt: iso(record.createdAt),
    updatedAt: iso(record.updatedAt),
  };
}

/** The URL with any password and every query value replaced, so it can be shown and logged. */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return redacted;
  }
  if (parsed.password) parsed.password = 'redacted';
  const names = [...parsed.searchParams.keys()];
  if (names.length === 0) return parsed.toString();
  parsed.search = '';
  return `${parsed.toString()}?${names.map((name) => `${encodeURIComponent(name)}=${redacted}`).join('&')}`;
}

export function attemptView(a: AttemptRecord): AttemptView {
  return {
    cycle: a.cycle,
    attempt: a.attempt,
    at: iso(a.at),
    ok: a.ok,
    statusCode: a.statusCode ?? null,
    error: a.error ?? null,
    latencyMs: a.latencyMs,
    responseSnippet: a.responseSnippet ?? null,
  };
}

export function deliveryView(d: DeliveryRecord): DeliveryView {
  return {
    id: d.id,
    eventId: d.eventId,
    action: d.event.action,
    repository: d.event.repository ?? null,
    tags: [...d.event.tags],
    digest: d.event.digest ?? null,
    status: d.status,
    attempts: d.attempts,
    cycle: d.cycle,
    nextAttemptAt: d.status === 'pending' ? iso(d.nextAttemptAt) : null,
    eventAt: iso(d.event.createdAt),
    createdAt: iso(d.createdAt),
    updatedAt: iso(d.updatedAt),
    lastAttempt: d.lastAttempt ? attemptView(d.lastAttempt) : null,
  };
}
