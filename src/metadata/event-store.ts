/**
 * What the webhook machinery needs from the metadata database: subscriptions, the event outbox,
 * and deliveries with every attempt. Implemented once in `sql/` (event-index.ts, webhook-index.ts,
 * delivery-index.ts) for SQLite and PostgreSQL.
 *
 * Durability contract:
 * - An image event is written by the manifest index in the same transaction as the change it
 *   describes (the outbox), so a committed change always has its event and a rolled-back one never.
 *   The rows come from the caller (`ChangeOutbox` in store.ts): this layer stores a payload as the
 *   opaque text it is given and never reads it.
 * - Fan-out creates at most one delivery per (event, subscription), whoever does it and however
 *   often (a unique key), so a restart or a second replica never duplicates a delivery.
 * - A delivery is worked on only by the process holding its lease (`claimDue`); a crashed
 *   process's lease runs out and another process picks the delivery up. Delivery is therefore
 *   at least once, and every attempt is recorded.
 */
/** What an event reports, and what a subscription may ask to hear about. */
export const eventActions = ['push', 'delete', 'ping', 'quota_warning', 'quota_exceeded'] as const;
export type EventAction = (typeof eventActions)[number];
import type { ClaimRequest, Lease } from '../shared/lease.js';

export type WebhookFormat = 'acr' | 'cloudevents';

export interface WebhookRecord {
  id: string;
  /** Unique, chosen by the owner: what the CLI and API paths name it by. */
  name: string;
  url: string;
  /** The actions it hears about. */
  events: EventAction[];
  /** Repository/tag filter entries (`events/filter.ts`); empty = everything. */
  filters: string[];
  /** Sent with every delivery. Values may be secrets: they never leave the API unredacted. */
  headers: Record<string, string>;
  /** The HMAC key deliveries are signed with; stored retrievably because signing needs it. */
  secret: string;
  /** After a rotation, the old secret, also signed with until `previousSecretUntil`. */
  previousSecret: string | undefined;
  previousSecretUntil: number | undefined;
  format: WebhookFormat;
  enabled: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface WebhookIndex {
  /** Stores a new subscription; false (and nothing stored) when the name is taken. */
  create(record: WebhookRecord): Promise<boolean>;
  get(id: string): Promise<WebhookRecord | undefined>;
  findByName(name: string): Promise<WebhookRecord | undefined>;
  /** Every subscription, sorted by name. */
  list(): Promise<WebhookRecord[]>;
  /** Replaces the subscription's fields (matched by id); false when the new name is taken by another. */
  update(record: WebhookRecord): Promise<boolean>;
  /** Deletes it with its deliveries and their attempts; false if it did not exist. */
  delete(id: string): Promise<boolean>;
}

export interface NewEvent {
  /** Stable id (UUID v4): the payload's `id`, `Berth-Event-Id`; receivers dedupe on it. */
  id: string;
  action: EventAction;
  repository: string | undefined;
  /** Tags for filter matching (webhook filters: `events/filter.ts`). */
  tags: readonly string[];
  digest: string | undefined;
  /** The payload, serialised once by the caller: every delivery of the event sends the same document. */
  payload: string;
  /** A ping: the one subscription it goes to (filters and `events` do not apply). */
  subscriptionId?: string | undefined;
}

export interface EventRecord extends Omit<NewEvent, 'tags'> {
  tags: string[];
  createdAt: number;
  /** When deliveries were created for it; undefined while waiting for fan-out. */
  fannedOutAt: number | undefined;
}

export interface EventIndex {
  /** Appends an event outside a repository change (a ping), then notifies like the manifest index does. */
  append(event: NewEvent, now: number): Promise<void>;
  get(id: string): Promise<EventRecord | undefined>;
  /** Events still waiting for fan-out, oldest first. */
  pendingFanOut(limit: number): Promise<EventRecord[]>;
  /**
   * For each event, creates a pending delivery to each of its subscriptions (skipping any that
   * exists) and marks the event fanned out; an event with no subscription (and no delivery) is
   * deleted instead. All in one transaction. Returns the deliveries created now.
   */
  fanOut(events: ReadonlyArray<{ eventId: string; subscriptionIds: readonly string[] }>, now: number): Promise<number>;
  /** Deletes events created before `cutoff` that are fanned out and have nothing pending, with their deliveries and attempts; returns how many. */
  prune(cutoff: number): Promise<number>;
  /** Calls `listener` after every event committed by this process (an image change or a ping); returns an unsubscribe. */
  onAppended(listener: () => void): () => void;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface AttemptRecord {
  /** Which redelivery cycle (0 for the first). */
  cycle: number;
  /** 1-based within the cycle. */
  attempt: number;
  at: number;
  /** The final HTTP status, when a response arrived. */
  statusCode: number | undefined;
  /** Why it failed without a usable response (timeout, refused by the egress policy, connection error), or a non-2xx note. */
  error: string | undefined;
  latencyMs: number;
  /** At most 1 KiB of the response body. */
  responseSnippet: string | undefined;
  ok: boolean;
}

export interface DeliveryRecord {
  id: string;
  eventId: string;
  subscriptionId: string;
  status: DeliveryStatus;
  /** Attempts made in the current cycle. */
  attempts: number;
  cycle: number;
  nextAttemptAt: number;
  createdAt: number;
  updatedAt: number;
  event: { action: EventAction; repository: string | undefined; tags: string[]; digest: string | undefined; createdAt: number };
  lastAttempt: AttemptRecord | undefined;
}

/** A delivery this process holds the lease on, with what sending it needs. */
export interface ClaimedDelivery {
  delivery: DeliveryRecord;
  payload: string;
  subscription: WebhookRecord;
}

export interface DeliveryIndex {
  /**
   * Leases up to `limit` deliveries that are due (pending, `nextAttemptAt` passed, unleased or
   * lease expired) to `owner` until `until`. Deliveries of a disabled subscription wait (pings
   * excepted). Each row is taken by a conditional update, so two processes never hold one.
   */
  claimDue(request: ClaimRequest): Promise<ClaimedDelivery[]>;
  /** Extends the lease on the delivery's current cycle; false if `lease.owner` no longer holds it (redelivered, or taken over). */
  renew(delivery: { id: string; cycle: number }, lease: Lease): Promise<boolean>;
  /**
   * Records an attempt and, if `owner` still holds the lease (a redelivery or an expired lease
   * takes it away), moves the delivery on: delivered, failed, or pending again at `nextAttemptAt`.
   * Returns whether the delivery's state was changed.
   */
  complete(id: string, owner: string, attempt: AttemptRecord, next: { status: DeliveryStatus; nextAttemptAt: number }, now: number): Promise<boolean>;
  /** The earliest `nextAttemptAt` (or lease expiry) of any pending delivery, to sleep until. */
  nextDueAt(): Promise<number | undefined>;
  /** A subscription's deliveries, newest first; optionally only those in one status or of one event. */
  list(subscriptionId: string, filter: { status?: DeliveryStatus | undefined; eventId?: string | undefined; limit: number }): Promise<DeliveryRecord[]>;
  get(subscriptionId: string, id: string): Promise<DeliveryRecord | undefined>;
  /** Every attempt of a delivery, oldest first. */
  attempts(id: string): Promise<AttemptRecord[]>;
  /** Starts a new cycle: pending, no attempts, due at `now`, lease released. Same event, same id. */
  redeliver(subscriptionId: string, id: string, now: number): Promise<DeliveryRecord | undefined>;
  /** The payload document of an event. */
  payload(eventId: string): Promise<string | undefined>;
}

export interface EventMetadata {
  readonly webhooks: WebhookIndex;
  readonly events: EventIndex;
  readonly deliveries: DeliveryIndex;
}
