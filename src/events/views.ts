/**
 * What the management API sends about webhooks: the wire contract shared with the CLI
 * (`src/cli/webhooks.ts`). Times are ISO 8601 strings, absent values `null`.
 *
 * Secrets never leave the server except once: the signing secret in the response that creates or
 * rotates it. Custom header values, and the password and query values of the target URL (Logic
 * Apps and similar receivers put their access key in the query string) are shown as `redacted`.
 */
import type { AttemptRecord, DeliveryRecord, DeliveryStatus, WebhookFormat, WebhookRecord } from '../metadata/event-store.js';
import type { EventAction } from './payload.js';

export const redacted = '<redacted>';

export interface WebhookView {
  id: string;
  name: string;
  /** The target URL with its password and query values redacted. */
  url: string;
  events: EventAction[];
  filters: string[];
  /** Header names with redacted values. */
  headers: Record<string, string>;
  format: WebhookFormat;
  enabled: boolean;
  /** Until when the previous secret (after a rotation) also signs deliveries, or null. */
  previousSecretUntil: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface AttemptView {
  cycle: number;
  attempt: number;
  at: string;
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  latencyMs: number;
  responseSnippet: string | null;
}

export interface DeliveryView {
  id: string;
  eventId: string;
  action: EventAction;
  repository: string | null;
  tags: string[];
  digest: string | null;
  status: DeliveryStatus;
  /** Attempts in the current cycle (a redelivery starts a new cycle). */
  attempts: number;
  cycle: number;
  /** When the next attempt is due (pending deliveries), else null. */
  nextAttemptAt: string | null;
  eventAt: string;
  createdAt: string;
  updatedAt: string;
  lastAttempt: AttemptView | null;
}

/** One delivery in full: every attempt and the payload as stored (the body of an `acr` delivery). */
export interface DeliveryDetailView extends DeliveryView {
  attemptHistory: AttemptView[];
  payload: unknown;
}

/** The one response that shows a signing secret. */
export interface WebhookSecretView {
  secret: string;
}

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
