/**
 * Lifecycle policies (docs/lifecycle.md): retention, tag immutability bound to CI identity, storage
 * usage and quotas. `createLifecycle` builds them from explicit dependencies; the app gives the
 * registry the push policy and the pull recorder (`RegistryContext.pushPolicy`, `.pulled`), the HTTP
 * layer the service, and starts and stops the background parts with the server.
 *
 * The retention engine is exposed for features that delete by the same rules (the pull-through
 * cache's last-pull eviction): plan with `engine.plan(rule, repository)`, carry out with
 * `engine.apply(plan, …)`.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { LeaseRunner } from '../jobs/runner.js';
import type { AuditIndex } from '../metadata/auth-store.js';
import type { Metadata } from '../metadata/store.js';
import type { Metrics } from '../metrics/index.js';
import type { PullRecorder, PushPolicy, Registry } from '../registry/index.js';
import type { Clock } from '../shared/clock.js';
import { PushEnforcement } from './enforcement.js';
import { RetentionEngine } from './engine.js';
import { PolicyStore } from './policies.js';
import { PullTracker } from './pulls.js';
import { RateLimiter } from './quota.js';
import { LifecycleRuns } from './runs.js';
import { LifecycleService } from './service.js';
import { UsageAccounting } from './usage.js';

export { planRepository, type RepositoryPlan, type RepositorySnapshot, type PlannedAction } from './retention.js';
export { RetentionEngine, type ActionResult, type ApplyOptions } from './engine.js';
export { LifecycleService } from './service.js';

export interface LifecycleDependencies {
  config: Config['lifecycle'];
  metadata: Metadata;
  /** Built before the hooks are given to it (the registry's context is completed by the app). */
  registry: Registry;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** The audit log as the app's services write it (entries also queued for the audit export). */
  audit: AuditIndex;
}

export interface Lifecycle {
  service: LifecycleService;
  engine: RetentionEngine;
  /** For `RegistryContext.pushPolicy`. */
  pushPolicy: PushPolicy;
  /** For `RegistryContext.pulled`; undefined when last-pull tracking is off. */
  pulled: PullRecorder | undefined;
  /** Starts the runs (if `lifecycle.enabled`) and the last-pull flushes. */
  start(): void;
  /** Stops the runs (handing running ones back) and writes the buffered pulls. */
  stop(): Promise<void>;
}

export function createLifecycle(deps: LifecycleDependencies): Lifecycle {
  const { config, metadata, registry, clock, metrics } = deps;
  const logger = deps.logger.child({ component: 'lifecycle' });
  const store = metadata.lifecycle;
  const policies = new PolicyStore(store.policies, clock, config.policyCacheMs, logger);
  const usage = new UsageAccounting({ store, policies, events: metadata.events.events, clock, logger, metrics });
  const engine = new RetentionEngine({
    registry,
    state: store.state,
    immutability: async () => (await policies.rules()).immutability.map((p) => p.rule),
    audit: deps.audit,
    clock,
    settings: { minimumAgeMs: config.retention.minimumAgeMs, pushMarginMs: config.retention.pushMarginMs },
    metrics,
  });
  const runs = new LifecycleRuns({
    store,
    policies,
    engine,
    usage,
    clock,
    logger,
    settings: { usageRefreshMs: config.usage.refreshIntervalMs, runRetentionMs: config.runRetentionMs },
  });
  const runner = new LeaseRunner(runs, {
    concurrency: 2,
    leaseMs: config.leaseMs,
    pollMs: config.pollIntervalMs,
    onStop: 'abort',
    clock,
    logger,
    maintenance: { everyMs: Math.min(3_600_000, config.usage.refreshIntervalMs), run: (now) => runs.maintain(now) },
  });
  const pulls = config.lastPull.enabled
    ? new PullTracker(store.state, clock, { flushIntervalMs: config.lastPull.flushIntervalMs, maxBuffered: config.lastPull.maxBuffered }, logger, metrics)
    : undefined;
  const service = new LifecycleService({
    store,
    policies,
    engine,
    runs,
    usage,
    audit: deps.audit,
    clock,
    previewLimit: config.retention.previewLimit,
    wake: () => runner.wake(),
  });
  const pushPolicy = new PushEnforcement({ policies, state: store.state, blobs: metadata.blobs, usage, rates: new RateLimiter(), clock, logger, metrics });
  return {
    service,
    engine,
    pushPolicy,
    pulled: pulls?.record,
    start() {
      pulls?.start();
      if (config.enabled) runner.start();
    },
    async stop() {
      await runner.stop();
      await pulls?.stop();
    },
  };
}
