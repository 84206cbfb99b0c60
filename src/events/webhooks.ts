/**
 * Webhooks as a capability (`services.webhooks`): managing subscriptions, pings and redeliveries,
 * and the dispatcher that runs in the background from `App.listen()` to `App.close()`.
 *
 * Rules enforced here, whoever calls (API handlers, tests):
 * - A target URL must be http(s) and pass the egress policy when it is set (so a push cannot be
 *   turned into a probe of the internal network); the dispatcher checks again at every connect.
 * - The signing secret is generated unless given, shown once, and kept retrievably (HMAC needs it).
 *   Rotating keeps the previous secret signing too for a grace period, so receivers can switch over.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { EventMetadata, WebhookRecord } from '../metadata/event-store.js';
import type { Pusher } from '../metadata/store.js';
import type { RequestInfo } from '../registry/changes.js';
import { EgressRefused } from '../net/egress.js';
import { RegistryError } from '../oci/errors.js';
import { Dispatcher, type DispatcherDependencies } from './dispatcher.js';
import { pingPayload } from './payload.js';

/** What an owner sets on a webhook (the rest of the record is identity, secrets and times). */
export type WebhookSettings = Pick<WebhookRecord, 'url' | 'events' | 'filters' | 'headers' | 'format' | 'enabled'>;

/** The service runs the dispatcher and needs exactly what it needs. */
export type WebhooksDependencies = DispatcherDependencies;

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
    });
  }

  get store(): EventMetadata {
    return this.deps.store;
  }

  /** Starts delivering (unless `webhooks.dispatch` is off in this process). */
  start(): void {
    if (this.deps.config.dispatch) this.dispatcher.start();
  }

  stop(): Promise<void> {
    return this.dispatcher.stop();
  }

  /** The subscription by id or by name. */
  async find(ref: string): Promise<WebhookRecord | undefined> {
    return (await this.deps.store.webhooks.get(ref)) ?? (await this.deps.store.webhooks.findByName(ref));
  }

  /** Creates a subscription; returns it and its secret (the only time the secret is shown). */
  async create(name: string, settings: WebhookSettings, secret: string | undefined): Promise<{ record: WebhookRecord; secret: string }> {
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
      throw new RegistryError('WEBHOOK_EXISTS', `a webhook named ${JSON.stringify(name)} already exists`);
    }
    return { record, secret: record.secret };
  }

  /** Changes a subscription's settings (the secret only through `rotateSecret`). */
  async update(
    record: WebhookRecord,
    changes: { [K in keyof WebhookSettings | 'name']?: (WebhookSettings & { name: string })[K] | undefined },
  ): Promise<WebhookRecord> {
    if (changes.url !== undefined && changes.url !== record.url) await this.checkTarget(changes.url);
    const next = { ...record, ...(definedOnly(changes) as Partial<WebhookRecord>), updatedAt: this.deps.clock.now() };
    if (!(await this.deps.store.webhooks.update(next))) {
      throw new RegistryError('WEBHOOK_EXISTS', `a webhook named ${JSON.stringify(next.name)} already exists`);
    }
    return next;
  }

  /** A new secret (given or generated); the old one also signs for `overlapMs` (0: stops at once). */
  async rotateSecret(
    record: WebhookRecord,
    secret: string | undefined,
    overlapMs = defaultSecretOverlapMs,
  ): Promise<{ record: WebhookRecord; secret: string }> {
    const now = this.deps.clock.now();
    const next: WebhookRecord = {
      ...record,
      secret: secret ?? generateSecret(),
      previousSecret: overlapMs > 0 ? record.secret : undefined,
      previousSecretUntil: overlapMs > 0 ? now + overlapMs : undefined,
      updatedAt: now,
    };
    await this.deps.store.webhooks.update(next);
    return { record: next, secret: next.secret };
  }

  /**
   * Sends a `ping` event to this subscription through the same outbox and dispatcher as real
   * events (so it shows in its delivery history), even while the subscription is disabled.
   * Returns the delivery created for it.
   */
  async ping(record: WebhookRecord, actor: Pusher | undefined, request: RequestInfo | undefined) {
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
        payload: JSON.stringify(pingPayload(id, now, record.name, actor, request)),
        subscriptionId: record.id,
      },
      now,
    );
    // Fan out at once so the caller gets the delivery; the dispatcher may race to it, harmlessly.
    await store.events.fanOut([{ eventId: id, subscriptionIds: [record.id] }], now);
    const [delivery] = await store.deliveries.list(record.id, { eventId: id, limit: 1 });
    if (!delivery) throw new Error(`ping ${id} has no delivery`);
    this.dispatcher.wake();
    return delivery;
  }

  /** Starts a new delivery cycle (same event id, so the receiver can dedupe); undefined if unknown. */
  async redeliver(record: WebhookRecord, deliveryId: string) {
    const delivery = await this.deps.store.deliveries.redeliver(record.id, deliveryId, this.deps.clock.now());
    if (delivery) this.dispatcher.wake();
    return delivery;
  }

  /**
   * Rule: a target must be an http(s) URL the egress policy allows. The policy's message names the
   * refused range and the setting that would allow it.
   */
  private async checkTarget(url: string): Promise<void> {
    try {
      await this.deps.egress.check(url);
    } catch (err) {
      if (err instanceof EgressRefused) throw new RegistryError('INVALID_REQUEST', `url: ${err.message}`);
      throw err;
    }
  }
}

/** 32 random bytes, base64url: as strong as the HMAC key can use. */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
