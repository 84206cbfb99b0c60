/**
 * The wire contract of webhook subscriptions (`/api/v1/webhooks…`, `berth webhooks`). Times are ISO
 * 8601 strings, absent values `null`.
 *
 * Secrets never leave the server except once: the signing secret in the response that creates or
 * rotates it. Custom header values, and the password and query values of the target URL (Logic
 * Apps and similar receivers put their access key in the query string) are shown as `redacted`.
 */

export const redacted = '<redacted>';

/** `quota_warning` and `quota_exceeded` come from lifecycle quotas (docs/lifecycle.md). */
export type WebhookEventAction = 'push' | 'delete' | 'ping' | 'quota_warning' | 'quota_exceeded';
export type WebhookFormat = 'acr' | 'cloudevents';
export type DeliveryStatus = 'pending' | 'delivered' | 'failed';
export const deliveryStatuses: readonly DeliveryStatus[] = ['pending', 'delivered', 'failed'];

export interface WebhookView {
  id: string;
  name: string;
  /** The target URL with its password and query values redacted. */
  url: string;
  events: WebhookEventAction[];
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
  action: WebhookEventAction;
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

/** The one response that shows a signing secret (POST /webhooks → 201, POST …/secret → 200). */
export interface WebhookWithSecretView {
  webhook: WebhookView;
  secret: string;
}

/** POST …/ping, POST …/redeliver → 202. */
export interface DeliveryQueuedView {
  delivery: DeliveryView;
}
