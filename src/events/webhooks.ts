/**
 * Webhooks as a capability (`services.webhooks`): managing subscriptions, their delivery history,
 * pings and redeliveries (one method per management route, each change audited with its actor),
 * and the dispatcher that runs in the background from `App.listen()` to `App.close()`.
 *
 * Rules enforced here, whoever calls (API handlers, tests):
 * - A target URL must be http(s) and pass the egress policy when it is set (so a push cannot be
 *   turned into a probe of the internal network); the dispatcher checks again at every connect.
 * - The signing secret is generated unless given, shown once, and kept retrievably (HMAC needs it).
 *   Rotating keeps the previous secret signing too for a grace period, so receivers can switch over.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { DeliveryDetailView, DeliveryStatus, DeliveryView, WebhookView, WebhookWithSecretView } from '../api/webhooks.js';
import type { AuditIndex } from '../metadata/auth-store.js';
import type { DeliveryRecord, WebhookRecord } from '../metadata/event-store.js';
import type { Pusher } from '../metadata/store.js';
import type { RequestInfo } from '../registry/changes.js';
import { EgressRefused } from '../net/egress.js';
import { ApiError } from '../api/errors.js';
import type { Actor } from '../shared/actor.js';
import { Dispatcher, type DispatcherDependencies } from './dispatcher.js';
import { pingPayload } from './payload.js';
import { attemptView, deliveryView, redactUrl, webhookView } from './views.js';

/** What an owner sets on a webhook (the rest of the record is identity, secrets and times). */
export type WebhookSettings = Pick<WebhookRecord, 'url' | 'events' | 'filters' | 'headers' | 'format' | 'enabled'>;

/** The service runs the dispatcher and needs what it needs, plus the audit log its changes write to. */
export type WebhooksDependencies = DispatcherDependencies & { audit: AuditIndex };

/** How long a rotated-out secret keeps signing deliveries unless the rotation says otherwise. */
export const defaultSecretOverlapMs = 24 * 3600 * 1000;

export class Webhooks {
  readonly dispatcher: Dispatcher;

  constructor(private readonly deps: WebhooksDependencies) {
    this.dispatcher = new Dispatcher({
      config: deps.config,
      store: deps.store,
      egress: deps.egress,
      clock: deps.clock,
      logger: deps.logger.child({ component: 'webhooks' }),
      ...(deps.random ? { random: deps.random } : {}),
      metrics: deps.metrics,
    });
  }

  /** Starts delivering (unless `webhooks.dispatch` is off in this process). */
  start(): void {
    if (this.deps.config.dispatch) this.dispatcher.start();
  }

  stop(): Promise<void> {
    return this.dispatcher.stop();
  }

  /** The subscription by id or by name; 404 WEBHOOK_UNKNOWN otherwise. */
  async resolve(ref: string): Promise<WebhookRecord> {
    const record = (await this.deps.store.webhooks.get(ref)) ?? (await this.deps.store.webhooks.findByName(ref));
    if (!record) throw new ApiError('WEBHOOK_UNKNOWN', `no webhook with id or name ${JSON.stringify(ref.slice(0, 128))}`);
    return record;
  }

  /** Every subscription, sorted by name. */
  async list(): Promise<WebhookView[]> {
    const now = this.deps.clock.now();
    return (await this.deps.store.webhooks.list()).map((r) => webhookView(r, now));
  }

  view(record: WebhookRecord): WebhookView {
    return webhookView(record, this.deps.clock.now());
  }

  /** Creates a subscription; answers with it and its secret (the only time the secret is shown). */
  async create(actor: Actor, name: string, settings: WebhookSettings, secret: string | undefined): Promise<WebhookWithSecretView> {
    await this.checkTarget(settings.url);
    const now = this.deps.clock.now();
    const record: WebhookRecord = {
      id: randomUUID(),
      name,
      ...settings,
      secret: secret ?? generateSecret(),
      previousSecret: undefined,
      previousSecretUntil: undefined,
      createdAt: now,
      updatedAt: now,
    };
    if (!(await this.deps.store.webhooks.create(record))) {
      throw new ApiError('WEBHOOK_EXISTS', `a webhook named ${JSON.stringify(name)} already exists`);
    }
    await this.audit(actor, 'admin.webhook.created', { webhook: described(record), secretGiven: secret !== undefined });
    return { webhook: this.view(record), secret: record.secret };
  }

  /** Changes a subscription's settings (the secret only through `rotateSecret`); `headers` replaces all headers. */
  async update(
    actor: Actor,
    record: WebhookRecord,
    changes: { [K in keyof WebhookSettings | 'name']?: (WebhookSettings & { name: string })[K] | undefined },
  ): Promise<WebhookView> {
    if (changes.url !== undefined && changes.url !== record.url) await this.checkTarget(changes.url);
    const next = { ...record, ...(definedOnly(changes) as Partial<WebhookRecord>), updatedAt: this.deps.clock.now() };
    if (!(await this.deps.store.webhooks.update(next))) {
      throw new ApiError('WEBHOOK_EXISTS', `a webhook named ${JSON.stringify(next.name)} already exists`);
    }
    await this.audit(actor, 'admin.webhook.updated', { webhook: described(next), changed: Object.keys(changes) });
    return this.view(next);
  }

  /** Deletes a subscription; its deliveries and their history go with it. */
  async remove(actor: Actor, record: WebhookRecord): Promise<void> {
    await this.deps.store.webhooks.delete(record.id);
    await this.audit(actor, 'admin.webhook.deleted', { webhook: { id: record.id, name: record.name } });
  }

  /** A new secret (given or generated), shown once; the old one also signs for `overlapMs` (0: stops at once). */
  async rotateSecret(actor: Actor, record: WebhookRecord, secret: string | undefined, overlapMs: number | undefined): Promise<WebhookWithSecretView> {
    const now = this.deps.clock.now();
    const overlap = overlapMs ?? defaultSecretOverlapMs;
    const next: WebhookRecord = {
      ...record,
      secret: secret ?? generateSecret(),
      previousSecret: overlap > 0 ? record.secret : undefined,
      previousSecretUntil: overlap > 0 ? now + overlap : undefined,
      updatedAt: now,
    };
    await this.deps.store.webhooks.update(next);
    await this.audit(actor, 'admin.webhook.secret_rotated', { webhook: { id: record.id, name: record.name }, overlapMs: overlapMs ?? null });
    return { webhook: this.view(next), secret: next.secret };
  }

  /**
   * Sends a `ping` event to this subscription through the same outbox and dispatcher as real
   * events (so it shows in its delivery history), even while the subscription is disabled.
   * Answers with the delivery created for it. `pusher` and `request` go into the payload.
   */
  async ping(actor: Actor, record: WebhookRecord, pusher: Pusher | undefined, request: RequestInfo | undefined): Promise<DeliveryView> {
    const { store, clock } = this.deps;
    const now = clock.now();
    const id = randomUUID();
    await store.events.append(
      {
        id,
        action: 'ping',
        repository: undefined,
        tags: [],
        digest: undefined,
        payload: JSON.stringify(pingPayload(id, now, record.name, pusher, request)),
        subscriptionId: record.id,
      },
      now,
    );
    // Fan out at once so the caller gets the delivery; the dispatcher may race to it, harmlessly.
    await store.events.fanOut([{ eventId: id, subscriptionIds: [record.id] }], now);
    const [delivery] = await store.deliveries.list(record.id, { eventId: id, limit: 1 });
    if (!delivery) throw new Error(`ping ${id} has no delivery`);
    this.dispatcher.wake();
    await this.audit(actor, 'admin.webhook.pinged', { webhook: { id: record.id, name: record.name }, event: delivery.eventId });
    return deliveryView(delivery);
  }

  /** The subscription's deliveries, newest first, each with its last attempt. */
  async deliveries(record: WebhookRecord, filter: { status?: DeliveryStatus | undefined; limit: number }): Promise<DeliveryView[]> {
    return (await this.deps.store.deliveries.list(record.id, filter)).map(deliveryView);
  }

  /** One delivery with every attempt and the payload; 404 DELIVERY_UNKNOWN otherwise. */
  async delivery(record: WebhookRecord, deliveryId: string): Promise<DeliveryDetailView> {
    const deliveries = this.deps.store.deliveries;
    const found = await deliveries.get(record.id, deliveryId);
    if (!found) throw unknownDelivery(record, deliveryId);
    const [attempts, payload] = await Promise.all([deliveries.attempts(found.id), deliveries.payload(found.eventId)]);
    return {
      ...deliveryView(found),
      attemptHistory: attempts.map(attemptView),
      payload: payload === undefined ? null : (JSON.parse(payload) as unknown),
    };
  }

  /** Starts a new delivery cycle (same event id, so the receiver can dedupe); 404 DELIVERY_UNKNOWN otherwise. */
  async redeliver(actor: Actor, record: WebhookRecord, deliveryId: string): Promise<DeliveryView> {
    const delivery: DeliveryRecord | undefined = await this.deps.store.deliveries.redeliver(record.id, deliveryId, this.deps.clock.now());
    if (!delivery) throw unknownDelivery(record, deliveryId);
    this.dispatcher.wake();
    await this.audit(actor, 'admin.webhook.redelivered', { webhook: { id: record.id, name: record.name }, delivery: delivery.id, event: delivery.eventId });
    return deliveryView(delivery);
  }

  private async audit(actor: Actor, event: string, detail: Record<string, unknown>): Promise<void> {
    await this.deps.audit.append({ at: this.deps.clock.now(), event, ...actor, detail });
  }

  /**
   * Rule: a target must be an http(s) URL the egress policy allows. The policy's message names the
   * refused range and the setting that would allow it.
   */
  private async checkTarget(url: string): Promise<void> {
    try {
      await this.deps.egress.check(url);
    } catch (err) {
      if (err instanceof EgressRefused) throw new ApiError('INVALID_REQUEST', `url: ${err.message}`);
      throw err;
    }
  }
}

/** 32 random bytes, base64url: as strong as the HMAC key can use. */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

function unknownDelivery(record: WebhookRecord, deliveryId: string): ApiError {
  return new ApiError('DELIVERY_UNKNOWN', `webhook ${record.name} has no delivery ${JSON.stringify(deliveryId.slice(0, 64))}`);
}

/** A subscription for the audit log: no secret, no header values, the URL redacted. */
function described(record: WebhookRecord): Record<string, unknown> {
  return {
    id: record.id,
    name: record.name,
    url: redactUrl(record.url),
    events: record.events,
    filters: record.filters,
    headers: Object.keys(record.headers),
    format: record.format,
    enabled: record.enabled,
  };
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
