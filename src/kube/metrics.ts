/**
 * The controller's Prometheus metrics, in a registry of its own (no global state): refreshes,
 * failures by reason, reconciles by result, and the seconds until the earliest expiry of any
 * binding's credentials, the number to alert on (it should never drop below about half a token
 * lifetime).
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export class ControllerMetrics {
  readonly registry = new Registry();
  private readonly expiries = new Map<string, number>();
  readonly refreshes: Counter;
  readonly failures: Counter<'reason'>;
  readonly reconciles: Counter<'result'>;

  constructor(
    private readonly now: () => number = Date.now,
    options: { processMetrics?: boolean } = {},
  ) {
    this.refreshes = new Counter({
      name: 'berth_controller_token_refreshes_total',
      help: 'Pull secrets written with fresh registry credentials.',
      registers: [this.registry],
    });
    this.failures = new Counter({
      name: 'berth_controller_token_refresh_failures_total',
      help: 'Reconciles that could not produce fresh credentials, by condition reason.',
      labelNames: ['reason'],
      registers: [this.registry],
    });
    this.reconciles = new Counter({
      name: 'berth_controller_reconciles_total',
      help: 'Reconciles by result (success, failure).',
      labelNames: ['result'],
      registers: [this.registry],
    });
    const expiries = this.expiries;
    const clock = this.now;
    new Gauge({
      name: 'berth_controller_seconds_until_earliest_expiry',
      help: 'Seconds until the earliest expiry of the credentials in any managed pull secret (NaN with none).',
      registers: [this.registry],
      collect() {
        const earliest = Math.min(...expiries.values());
        this.set(Number.isFinite(earliest) ? (earliest - clock()) / 1000 : Number.NaN);
      },
    });
    new Gauge({
      name: 'berth_controller_managed_pull_secrets',
      help: 'Pull secrets the controller currently keeps fresh.',
      registers: [this.registry],
      collect() {
        this.set(expiries.size);
      },
    });
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'berth_controller_' });
  }

  /** The credentials of binding `key` expire at `expiresAt` (ms). */
  trackExpiry(key: string, expiresAt: number): void {
    this.expiries.set(key, expiresAt);
  }

  /** Binding `key` is gone. */
  forget(key: string): void {
    this.expiries.delete(key);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
