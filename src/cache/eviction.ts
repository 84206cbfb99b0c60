/**
 * Last-pull based eviction: each rule with `evictAfterMs` is swept every `cache.eviction.intervalMs`
 * by one replica (a job kind of the lease runner, `jobs/runner.ts`; the sweep rows are claimed with
 * a lease). A sweep deletes, by digest, every cached manifest of the rule not pulled within
 * `evictAfterMs` (its tags go with it, and a `delete` webhook event is written as for any delete);
 * the blobs no manifest references any more go with the next GC, like pushed content.
 *
 * The last pull of each cached manifest is recorded by the pull path (`CachedManifests`). When the
 * lifecycle engine (retention rules with last-pull tracking) lands, this sweep should become one of
 * its policies; the rows it reads (`cache_pulls`) say what it needs.
 */
import type { Logger } from 'pino';
import { isRegistryError } from '../oci/errors.js';
import { tryParseDigest, type Digest } from '../oci/digest.js';
import type { JobKind, Lease, Outcome } from '../jobs/runner.js';
import type { CacheMetadata, CacheSweep } from '../metadata/cache-store.js';
import type { Registry } from '../registry/index.js';
import type { Clock } from '../shared/clock.js';
import type { CachedManifests } from './manifests.js';
import type { CacheMetrics } from './metrics.js';
import type { RuleSet } from './rules.js';

export interface SweepDependencies {
  store: CacheMetadata;
  registry: Registry;
  rules: RuleSet;
  manifests: CachedManifests;
  metrics: CacheMetrics;
  clock: Clock;
  logger: Logger;
  intervalMs: number;
}

/** Manifests read and deleted per round of a sweep. */
const batch = 200;

export class SweepJobs implements JobKind<CacheSweep, number> {
  readonly name = 'cache eviction sweep';

  constructor(private readonly deps: SweepDependencies) {}

  key(item: CacheSweep): string {
    return item.rule;
  }

  /** Gives every rule that evicts a sweep row, and drops the rows of rules that no longer do. */
  async prepare(): Promise<boolean> {
    const rules = (await this.deps.rules.all()).filter((r) => r.evictAfterMs !== null).map((r) => r.name);
    await this.deps.store.sweeps.reconcile(rules, this.deps.clock.now() + this.deps.intervalMs);
    return false;
  }

  claim(limit: number, lease: Lease): Promise<CacheSweep[]> {
    return this.deps.store.sweeps.claim(Object.assign({}, lease, { limit }));
  }

  renew(item: CacheSweep, lease: Lease): Promise<boolean> {
    return this.deps.store.sweeps.renew(item.rule, lease);
  }

  /** Evicts the rule's manifests not pulled within its `evictAfterMs`; returns how many. */
  async run(item: CacheSweep, signal: AbortSignal): Promise<number> {
    const { store, registry, clock, metrics, logger } = this.deps;
    const rule = (await this.deps.rules.all()).find((r) => r.name === item.rule);
    if (!rule || rule.evictAfterMs === null) return 0;
    const before = clock.now() - rule.evictAfterMs;
    const actor = { principalId: `proxy:${rule.name}`, principalName: `proxy:${rule.name}` };
    let evicted = 0;
    for (;;) {
      signal.throwIfAborted();
      const idle = await store.pulls.idle(rule.name, before, batch);
      for (const entry of idle) {
        const digest = tryParseDigest(entry.digest) as Digest;
        try {
          await registry.manifests.delete(entry.repository, { kind: 'digest', digest }, { actor });
          evicted++;
          metrics.evictions.inc({ rule: rule.name });
        } catch (err) {
          if (!isRegistryError(err) || err.code !== 'MANIFEST_UNKNOWN') throw err;
        }
        await store.tags.forgetDigest(entry.repository, entry.digest);
        await store.pulls.forget(entry.repository, entry.digest);
        this.deps.manifests.forgetPull(entry.repository, entry.digest);
      }
      if (idle.length < batch) break;
    }
    if (evicted > 0) logger.info({ rule: rule.name, evicted }, 'evicted cached manifests not pulled recently');
    return evicted;
  }

  async release(item: CacheSweep, outcome: Outcome<number>, owner: string): Promise<void> {
    const at = this.deps.clock.now();
    const error = outcome.status === 'failed' ? String((outcome.error as Error)?.message ?? outcome.error).slice(0, 500) : null;
    if (outcome.status === 'failed') this.deps.logger.warn({ rule: item.rule, err: error }, 'cache eviction sweep failed');
    await this.deps.store.sweeps.finish(item.rule, owner, {
      at,
      evicted: outcome.status === 'done' ? outcome.value : 0,
      error,
      // A sweep cut short by a shutdown or a lost lease is due again at once.
      nextAt: outcome.status === 'aborted' ? at : at + this.deps.intervalMs,
    });
  }
}
