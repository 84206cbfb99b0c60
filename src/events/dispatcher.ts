/**
 * The webhook dispatcher: turns the event outbox into HTTP deliveries, in the background, as a
 * job kind of the lease runner (`jobs/runner.ts`), which owns wake-ups, polling, concurrency,
 * heartbeats and stop.
 *
 * One cycle: (1) fan out events not yet fanned out to the enabled subscriptions whose `events`
 * and filters match (a ping to its one subscription), creating one delivery per pair (`prepare`);
 * (2) lease due deliveries (up to the free concurrency) and send each; (3) now and then, prune what
 * is older than the retention. A cycle runs when this process commits an event (the in-process
 * notification, coalesced for a few milliseconds so a burst of pushes costs one cycle), when a
 * delivery finishes, and otherwise every `pollIntervalMs` or at the next retry's due time, whichever
 * is sooner (events from other replicas are found by that poll).
 *
 * Several processes may share one database: fan-out is idempotent (one delivery per event and
 * subscription) and a delivery is sent only by the process holding its lease. The lease lasts
 * 2 × timeoutMs + 1 s, longer than an attempt may take (and is renewed while one runs); a crashed
 * process's leases run out and another process (or the same one restarted) retries, so delivery
 * is at least once and the receiver dedupes on the event id. An attempt is not aborted: it is
 * bounded by `timeoutMs`, and `stop()` waits for the attempts in flight to be recorded.
 *
 * Nothing here ever blocks a push: the registry only writes the event row.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { LeaseRunner, type JobKind, type Lease, type Outcome } from '../jobs/runner.js';
import type { ClaimedDelivery, DeliveryStatus, EventMetadata, EventRecord, WebhookRecord } from '../metadata/event-store.js';
import type { Egress } from '../net/egress.js';
import { latencyBuckets, type Metrics } from '../metrics/index.js';
import { tracer } from '../metrics/tracing.js';
import type { Clock } from '../shared/clock.js';
import { backoffDelay } from './backoff.js';
import { matchesFilters } from './filter.js';
import { cloudEvent, cloudEventsContentType, type AcrPayload } from './payload.js';
import { sendDelivery, type SendResult } from './sender.js';
import { eventIdHeader, eventTypeHeader, signatureHeader, signDelivery } from '../shared/webhook-signature.js';
import { redactUrl } from './views.js';

export type WebhooksConfig = Config['webhooks'];

/** Header naming the delivery (distinct from the event id: one event, several subscriptions). */
export const deliveryIdHeader = 'berth-delivery';
export const userAgent = 'Berth-Webhooks/1';

const fanOutBatch = 100;
/** How long a commit notification waits to coalesce with others (a burst of pushes: one fan-out). */
const notifyDelayMs = 20;
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
  /** Deliveries by result and latency, and the runner's own families. */
  metrics?: Metrics | undefined;
}

export class Dispatcher {
  private readonly runner: LeaseRunner<ClaimedDelivery, Attempt>;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly deps: DispatcherDependencies) {
    const { config, store, clock, logger } = deps;
    this.runner = new LeaseRunner(new DeliveryJobs(deps), {
      concurrency: config.concurrency,
      leaseMs: 2 * config.timeoutMs + 1000,
      pollMs: config.pollIntervalMs,
      onStop: 'finish',
      clock,
      logger,
      maintenance: {
        everyMs: Math.min(pruneEveryMs, config.retentionMs),
        run: async (now) => {
          const removed = await store.events.prune(now - config.retentionMs);
          if (removed > 0) logger.info({ events: removed }, 'pruned old webhook events and their deliveries');
        },
      },
      metrics: deps.metrics,
    });
  }

  /** This process's lease owner id. */
  get owner(): string {
    return this.runner.owner;
  }

  /** Starts the loop (and an immediate cycle, which picks up whatever a previous run left). */
  start(): void {
    if (this.unsubscribe) return;
    this.unsubscribe = this.deps.store.events.onAppended(() => this.runner.wake(notifyDelayMs));
    this.runner.start();
  }

  /** Stops taking work and waits for the attempts in flight to be recorded. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await this.runner.stop();
  }

  /** Runs a full cycle (fan-out and delivery) now, or right after the one running. */
  wake(): void {
    this.runner.wake();
  }
}

/** One attempt's result and times, from `run` to `release`. */
interface Attempt {
  result: SendResult;
  at: number;
  done: number;
}

/** Webhook deliveries as a job kind: claim due deliveries, send one attempt each, record it. */
class DeliveryJobs implements JobKind<ClaimedDelivery, Attempt> {
  readonly name = 'webhook delivery';
  private readonly attempts;
  private readonly latency;

  constructor(private readonly deps: DispatcherDependencies) {
    this.attempts = deps.metrics?.counter(
      'berth_webhook_deliveries_total',
      'Webhook delivery attempts by result: delivered, retry (failed, will be retried), failed (gave up).',
      ['result'],
    );
    this.latency = deps.metrics?.histogram('berth_webhook_delivery_duration_seconds', 'How long webhook delivery attempts take.', latencyBuckets);
  }

  key(item: ClaimedDelivery): string {
    return item.delivery.id;
  }

  /** Fan-out: one delivery per (event, receiving subscription). A full batch asks for another cycle. */
  async prepare(): Promise<boolean> {
    const { store, clock } = this.deps;
    const events = await store.events.pendingFanOut(fanOutBatch);
    if (events.length === 0) return false;
    const subscriptions = await store.webhooks.list();
    await store.events.fanOut(
      events.map((event) => ({ eventId: event.id, subscriptionIds: subscriptions.filter((s) => receives(s, event)).map((s) => s.id) })),
      clock.now(),
    );
    return events.length === fanOutBatch;
  }

  claim(limit: number, lease: Lease): Promise<ClaimedDelivery[]> {
    return this.deps.store.deliveries.claimDue({ ...lease, limit });
  }

  renew(item: ClaimedDelivery, lease: Lease): Promise<boolean> {
    return this.deps.store.deliveries.renew(item.delivery, lease);
  }

  nextDueAt(): Promise<number | undefined> {
    return this.deps.store.deliveries.nextDueAt();
  }

  /** One attempt. Not aborted by a lost lease: it is bounded by the timeout, and recorded as history either way. */
  async run({ delivery, payload, subscription }: ClaimedDelivery): Promise<Attempt> {
    const { config, clock, egress } = this.deps;
    const at = clock.now();
    const body = subscription.format === 'cloudevents' ? JSON.stringify(cloudEvent(JSON.parse(payload) as AcrPayload)) : payload;
    // The delivery's span (a root span per run, see jobs/runner.ts) continues at the receiver.
    const trace: Record<string, string> = {};
    tracer().inject(trace);
    const result = await sendDelivery(
      egress,
      {
        url: subscription.url,
        body,
        headers: {
          ...trace,
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
    return { result, at, done: clock.now() };
  }

  /** Records the attempt and moves the delivery on: delivered, failed for good, or pending until its retry. */
  async release({ delivery, subscription }: ClaimedDelivery, outcome: Outcome<Attempt>, owner: string): Promise<void> {
    const { config, store, logger } = this.deps;
    const attempt = delivery.attempts + 1;
    const fields = {
      webhook: subscription.name,
      target: redactUrl(subscription.url),
      delivery: delivery.id,
      event: delivery.eventId,
      action: delivery.event.action,
      attempt,
      cycle: delivery.cycle,
    };
    if (outcome.status !== 'done') {
      // Nothing to record: the lease runs out and the delivery is tried again (at least once).
      const err = outcome.status === 'failed' ? outcome.error : outcome.reason;
      logger.warn({ err, ...fields }, 'webhook attempt did not complete; retrying once its lease runs out');
      return;
    }
    const { result, at, done } = outcome.value;
    let status: DeliveryStatus = 'pending';
    let nextAttemptAt = done;
    if (result.ok) status = 'delivered';
    else if (attempt >= config.maxAttempts) status = 'failed';
    else nextAttemptAt = done + backoffDelay(config.backoff, attempt, this.deps.random);
    const logged = { ...fields, statusCode: result.statusCode, latencyMs: result.latencyMs };
    this.attempts?.inc({ result: status === 'pending' ? 'retry' : status });
    this.latency?.observe(result.latencyMs / 1000);
    try {
      await store.deliveries.complete(
        delivery.id,
        owner,
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
      logger.warn({ err, ...logged }, 'could not record a webhook attempt');
      return;
    }
    if (result.ok) logger.info(logged, 'webhook delivered');
    else if (status === 'failed') logger.warn({ ...logged, error: result.error }, 'webhook delivery failed for good; redeliver it once the receiver works');
    else logger.info({ ...logged, error: result.error, retryInMs: nextAttemptAt - done }, 'webhook attempt failed; will retry');
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
