/**
 * The webhook dispatcher: turns the event outbox into HTTP deliveries, in the background.
 *
 * One cycle: (1) fan out events not yet fanned out to the enabled subscriptions whose `events`
 * and filters match (a ping to its one subscription), creating one delivery per pair; (2) lease
 * due deliveries (up to the free concurrency) and send each; (3) now and then, prune what is
 * older than the retention. A cycle runs when this process commits an event (the in-process
 * notification), when a delivery finishes, and otherwise every `pollIntervalMs` or at the next
 * retry's due time, whichever is sooner (events from other replicas are found by that poll).
 * Notifications are coalesced for a few milliseconds, so a burst of pushes costs one cycle.
 *
 * Several processes may share one database: fan-out is idempotent (one delivery per event and
 * subscription) and a delivery is sent only by the process holding its lease. The lease lasts
 * 2 × timeoutMs + 1 s, longer than an attempt may take; a crashed process's leases run out and
 * another process (or the same one restarted) retries, so delivery is at least once and the
 * receiver dedupes on the event id.
 *
 * Nothing here ever blocks a push: the registry only writes the event row.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { ClaimedDelivery, DeliveryStatus, EventMetadata, EventRecord, WebhookRecord } from '../metadata/event-store.js';
import type { Egress } from '../net/egress.js';
import type { Clock } from '../shared/clock.js';
import { backoffDelay } from './backoff.js';
import { matchesFilters } from './filter.js';
import { cloudEvent, cloudEventsContentType, type AcrPayload } from './payload.js';
import { sendDelivery } from './sender.js';
import { eventIdHeader, eventTypeHeader, signatureHeader, signDelivery } from '../shared/webhook-signature.js';
import { redactUrl } from './views.js';

export type WebhooksConfig = Config['webhooks'];

/** Header naming the delivery (distinct from the event id: one event, several subscriptions). */
export const deliveryIdHeader = 'berth-delivery';
export const userAgent = 'Berth-Webhooks/1';

const fanOutBatch = 100;
/** How long a commit notification waits to coalesce with others (a burst of pushes: one fan-out). */
const notifyDelayMs = 20;
/** Shortest sleep between cycles, so a burst of due retries cannot spin the loop. */
const minSleepMs = 20;
/** How often retention pruning runs (at most). */
const pruneEveryMs = 3600 * 1000;

export interface DispatcherDependencies {
  config: WebhooksConfig;
  store: EventMetadata;
  egress: Egress;
  clock: Clock;
  logger: Logger;
  /** For backoff jitter; injectable so tests can pin it. */
  random?: () => number;
}

export class Dispatcher {
  /** This process's lease owner id. */
  readonly owner = randomUUID();
  private readonly inFlight = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  /** When the pending timer fires (wall clock), Infinity when none is set. */
  private timerAt = Infinity;
  private running = false;
  private rerun = false;
  private stopped = true;
  private unsubscribe: (() => void) | undefined;
  private lastPrune = 0;
  /** Whether the next pass must look for due deliveries (else it only fans out). */
  private claimNeeded = true;
  /** When (wall clock) the next look for due deliveries is due anyway: the poll, or the next retry. */
  private pollAt = 0;

  constructor(private readonly deps: DispatcherDependencies) {}

  /** Starts the loop (and an immediate cycle, which picks up whatever a previous run left). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.unsubscribe = this.deps.store.events.onAppended(() => this.runSoon(notifyDelayMs));
    this.wake();
  }

  /** Stops taking work and waits for the attempts in flight to be recorded. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    while (this.running || this.inFlight.size > 0) {
      await Promise.allSettled([...this.inFlight.values()]);
      if (this.running) await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Runs a full cycle (fan-out and delivery) now, or right after the one running. */
  wake(): void {
    this.claimNeeded = true;
    this.runSoon(0);
  }

  /**
   * Runs a cycle within `delayMs` (coalesced with one already running or already due sooner).
   * Events committed here wake the loop after a few milliseconds rather than at once, so a burst
   * of pushes costs one fan-out, not one per push.
   */
  private runSoon(delayMs: number): void {
    if (this.stopped) return;
    if (this.running) {
      this.rerun = true;
      return;
    }
    const at = Date.now() + delayMs;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      void this.cycle();
    }, delayMs);
    this.timer.unref();
  }

  private async cycle(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      do {
        this.rerun = false;
        await this.step('fan-out', () => this.fanOut());
        if (this.claimNeeded || Date.now() >= this.pollAt) {
          this.claimNeeded = false;
          await this.step('claim', () => this.claimAndSend());
          await this.step('prune', () => this.prune());
          // Until told otherwise, look again at the poll interval or the next retry, whichever is sooner.
          this.pollAt = Date.now() + this.deps.config.pollIntervalMs;
          await this.step('schedule', () => this.planSleep());
        }
      } while (this.rerun && !this.stopped);
    } finally {
      this.running = false;
      this.runSoon(Math.max(0, this.pollAt - Date.now()));
    }
  }

  /** A failing step (database busy, say) is logged and retried on the next cycle. */
  private async step(name: string, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      this.deps.logger.warn({ err, step: name }, 'webhook dispatcher step failed; retrying on the next cycle');
    }
  }

  private async fanOut(): Promise<void> {
    const { store, clock } = this.deps;
    const events = await store.events.pendingFanOut(fanOutBatch);
    if (events.length === 0) return;
    const subscriptions = await store.webhooks.list();
    const created = await store.events.fanOut(
      events.map((event) => ({ eventId: event.id, subscriptionIds: subscriptions.filter((s) => receives(s, event)).map((s) => s.id) })),
      clock.now(),
    );
    this.claimNeeded ||= created > 0;
    if (events.length === fanOutBatch) this.rerun = true;
  }

  private async claimAndSend(): Promise<void> {
    const { config, store, clock } = this.deps;
    const free = config.concurrency - this.inFlight.size;
    if (free <= 0 || this.stopped) return;
    const now = clock.now();
    const claimed = await store.deliveries.claimDue(this.owner, now, now + 2 * config.timeoutMs + 1000, free);
    for (const item of claimed) {
      const work = this.attempt(item).finally(() => {
        this.inFlight.delete(item.delivery.id);
        // A slot is free: look for more due work soon (coalescing a burst of finishes).
        this.claimNeeded = true;
        this.runSoon(notifyDelayMs);
      });
      this.inFlight.set(item.delivery.id, work);
    }
  }

  private async attempt({ delivery, payload, subscription }: ClaimedDelivery): Promise<void> {
    const { config, store, clock, egress, logger } = this.deps;
    const attempt = delivery.attempts + 1;
    const at = clock.now();
    const body = subscription.format === 'cloudevents' ? JSON.stringify(cloudEvent(JSON.parse(payload) as AcrPayload)) : payload;
    const result = await sendDelivery(
      egress,
      {
        url: subscription.url,
        body,
        headers: {
          'content-type': subscription.format === 'cloudevents' ? cloudEventsContentType : 'application/json',
          'user-agent': userAgent,
          [eventTypeHeader]: delivery.event.action,
          [eventIdHeader]: delivery.eventId,
          [deliveryIdHeader]: delivery.id,
          [signatureHeader]: signDelivery(signingSecrets(subscription, at), body, at),
        },
        customHeaders: subscription.headers,
      },
      { timeoutMs: config.timeoutMs, maxRedirects: config.maxRedirects },
    );
    const done = clock.now();
    let status: DeliveryStatus = 'pending';
    let nextAttemptAt = done;
    if (result.ok) status = 'delivered';
    else if (attempt >= config.maxAttempts) status = 'failed';
    else nextAttemptAt = done + backoffDelay(config.backoff, attempt, this.deps.random);
    const fields = {
      webhook: subscription.name,
      target: redactUrl(subscription.url),
      delivery: delivery.id,
      event: delivery.eventId,
      action: delivery.event.action,
      attempt,
      cycle: delivery.cycle,
      statusCode: result.statusCode,
      latencyMs: result.latencyMs,
    };
    try {
      await store.deliveries.complete(
        delivery.id,
        this.owner,
        {
          cycle: delivery.cycle,
          attempt,
          at,
          statusCode: result.statusCode,
          error: result.error,
          latencyMs: result.latencyMs,
          responseSnippet: result.responseSnippet,
          ok: result.ok,
        },
        { status, nextAttemptAt },
        done,
      );
    } catch (err) {
      // The lease runs out and the delivery is tried again: at least once, never lost.
      logger.warn({ err, ...fields }, 'could not record a webhook attempt');
      return;
    }
    if (result.ok) logger.info(fields, 'webhook delivered');
    else if (status === 'failed') logger.warn({ ...fields, error: result.error }, 'webhook delivery failed for good; redeliver it once the receiver works');
    else logger.info({ ...fields, error: result.error, retryInMs: nextAttemptAt - done }, 'webhook attempt failed; will retry');
  }

  private async prune(): Promise<void> {
    const now = this.deps.clock.now();
    if (now - this.lastPrune < Math.min(pruneEveryMs, this.deps.config.retentionMs)) return;
    this.lastPrune = now;
    const removed = await this.deps.store.events.prune(now - this.deps.config.retentionMs);
    if (removed > 0) this.deps.logger.info({ events: removed }, 'pruned old webhook events and their deliveries');
  }

  private async planSleep(): Promise<void> {
    const { config, store, clock } = this.deps;
    // With every slot busy, the next cycle comes when a delivery finishes (it wakes the loop).
    const due = await store.deliveries.nextDueAt();
    if (due !== undefined) this.pollAt = Date.now() + Math.min(config.pollIntervalMs, Math.max(minSleepMs, due - clock.now()));
  }
}

/**
 * Rule: an event goes to every enabled subscription that lists its action and whose filters match,
 * and that existed when the event happened (a new subscription gets no backlog). A ping goes to
 * the subscription it names, whatever its settings.
 */
export function receives(subscription: WebhookRecord, event: EventRecord): boolean {
  if (event.subscriptionId !== undefined) return event.subscriptionId === subscription.id;
  if (event.action === 'ping') return false;
  return (
    subscription.enabled &&
    subscription.createdAt <= event.createdAt &&
    subscription.events.includes(event.action) &&
    matchesFilters(subscription.filters, { repository: event.repository ?? '', tags: event.tags })
  );
}

/** The current secret, plus the previous one during its grace period after a rotation. */
function signingSecrets(subscription: WebhookRecord, now: number): string[] {
  const secrets = [subscription.secret];
  if (subscription.previousSecret !== undefined && (subscription.previousSecretUntil ?? 0) > now) secrets.push(subscription.previousSecret);
  return secrets;
}
