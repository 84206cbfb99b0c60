/**
 * Reconciles as a job kind of the lease runner (`jobs/runner.ts`): a due rule is claimed with a
 * lease, renewed (with the running counts) while it runs, and finished with its outcome.
 *
 * A reconcile lists the source's repositories (the catalog filtered by the rule's globs, plus the
 * globs without wildcards, which is all there is when the source hides its catalog) and their
 * selected tags, HEADs each tag, and queues those whose digest differs from this registry's. The
 * first successful one is the backfill. Outcomes: done or failed: the outcome is recorded and the
 * next reconcile scheduled; stopped: the lease is handed back without an outcome (the next process
 * picks the reconcile up); lease lost: nothing is written.
 */
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/index.js';
import type { Config } from '../config/schema.js';
import type { JobKind, Lease, Outcome } from '../jobs/runner.js';
import type { ReconcileStats, SyncMetadata } from '../metadata/sync-store.js';
import type { Registry } from '../registry/index.js';
import type { RemoteRegistry } from '../remote/client.js';
import { errorText } from './error-text.js';
import { literalRepositories, repositorySelected, tagSelected } from './filters.js';
import { destinationOf, reconcileInterval, ruleRecord, type SyncRule, type SyncRuleRecord } from './rule.js';
import type { SourcePool } from './sources.js';
import type { Clock } from '../shared/clock.js';

export interface SyncJobDependencies {
  store: SyncMetadata;
  registry: Registry;
  sources: SourcePool;
  settings: Config['sync'];
  clock: Clock;
  logger: Logger;
  metrics?: Metrics | undefined;
}

/** A reconcile while it runs: what the heartbeat records and the outcome is made of. */
export interface RunningReconcile {
  rule: SyncRuleRecord;
  stats: ReconcileStats;
  firstImageError: string | undefined;
  /** Every selected tag was already here at the source's digest (so no image of the rule is failing). */
  allInSync: boolean;
}

export class ReconcileJobs implements JobKind<RunningReconcile> {
  readonly name = 'sync reconcile';

  constructor(
    private readonly deps: SyncJobDependencies,
    /** Called when a reconcile queued an image (wakes the copies). */
    private readonly onQueued: () => void,
  ) {}

  private now(): number {
    return this.deps.clock.now();
  }

  key(item: RunningReconcile): string {
    return item.rule.id;
  }

  async claim(limit: number, lease: Lease): Promise<RunningReconcile[]> {
    const rows = await this.deps.store.reconciles.claim({ ...lease, limit });
    return rows.map((row) => ({
      rule: ruleRecord(row),
      stats: { repositories: 0, tags: 0, queued: 0, errors: 0 },
      firstImageError: undefined,
      allInSync: true,
    }));
  }

  renew(item: RunningReconcile, lease: Lease): Promise<boolean> {
    return this.deps.store.reconciles.renew(item.rule.id, lease, item.stats);
  }

  async run(item: RunningReconcile, signal: AbortSignal): Promise<void> {
    const { rule, stats } = item;
    this.deps.logger.info({ rule: rule.name, backfill: rule.state.backfilledAt === null }, 'sync reconcile started');
    const remote = await this.deps.sources.get(rule);
    const repositories = await this.sourceRepositories(rule, remote, signal, stats);
    const concurrency = this.deps.sources.limits(rule).concurrency;
    for (const repository of repositories) {
      signal.throwIfAborted();
      stats.repositories++;
      let tags: string[];
      try {
        tags = (await remote.listTags(repository, signal)).filter((tag) => tagSelected(rule.tags, tag));
      } catch (err) {
        if (signal.aborted) throw err;
        stats.errors++;
        item.firstImageError ??= `${repository}: ${errorText(err)}`;
        continue;
      }
      await forEachLimited(tags, concurrency, async (tag) => {
        signal.throwIfAborted();
        stats.tags++;
        try {
          const found = await this.check(rule, remote, repository, tag, signal);
          if (found !== 'in-sync') item.allInSync = false;
          if (found === 'queued') stats.queued++;
        } catch (err) {
          if (signal.aborted) throw err;
          stats.errors++;
          const message = errorText(err);
          item.firstImageError ??= `${repository}:${tag}: ${message}`;
          await this.deps.store.images.record({ ruleId: rule.id, repository, tag, lastCheckedAt: this.now(), lastError: message, lastErrorAt: this.now() });
        }
      });
    }
  }

  async release(item: RunningReconcile, outcome: Outcome<void>, owner: string): Promise<void> {
    const { store, settings, logger } = this.deps;
    const { rule, stats } = item;
    if (outcome.status === 'aborted') {
      if (outcome.reason === 'lease-lost') {
        logger.warn({ rule: rule.name }, 'sync reconcile lease lost; another replica runs it');
        return;
      }
      // Hand the lease back without an outcome; the next process picks the reconcile up.
      const at = this.now();
      await store.reconciles.finish(rule.id, owner, {
        at,
        error: 'interrupted by a shutdown',
        stats,
        nextReconcileAt: at,
        backfilled: false,
        clearsRuleError: false,
      });
      return;
    }
    const at = this.now();
    const interval = reconcileInterval(rule, settings);
    const error =
      outcome.status === 'failed'
        ? errorText(outcome.error)
        : stats.errors > 0
          ? `${stats.errors} of ${stats.tags} images failed; first: ${item.firstImageError ?? 'unknown'}`
          : null;
    await store.reconciles.finish(rule.id, owner, {
      at,
      error,
      stats,
      nextReconcileAt: interval === undefined ? null : at + interval,
      // Complete only if every selected tag was listed and checked: then everything is queued or here.
      backfilled: error === null,
      // A clean reconcile with copies still pending (or failing) leaves their error on the rule.
      clearsRuleError: error === null && item.allInSync,
    });
    if (error) await store.rules.recordOutcome(rule.id, { error, at });
    logger.info({ rule: rule.name, ...stats, error }, 'sync reconcile finished');
  }

  /**
   * The source repositories a reconcile covers: the catalog filtered by the rule's globs, plus the
   * globs without wildcards. A source that will not list its catalog to this credential (a token
   * scoped to some repositories, as vendors hand out) leaves the literal names and the
   * repositories the rule already knows (from notifications and earlier runs); with none of
   * those the reconcile fails and says what to do.
   */
  private async sourceRepositories(rule: SyncRule, remote: RemoteRegistry, signal: AbortSignal, stats: ReconcileStats): Promise<string[]> {
    const literal = literalRepositories(rule.repositories);
    if (rule.repositories.length === literal.length) {
      stats.catalog = 'not needed';
      return literal;
    }
    const known = (await this.deps.store.images.repositories(rule.id)).filter((name) => repositorySelected(rule.repositories, name));
    let catalog: string[];
    try {
      catalog = await remote.listRepositories(signal);
      stats.catalog = 'listed';
    } catch (err) {
      if (signal.aborted) throw err;
      stats.catalog = 'unavailable';
      if (literal.length === 0 && known.length === 0) {
        throw new Error(
          `cannot list the source's repositories (${errorText(err)}); name the repositories without wildcards, or let the credential read the catalog (until then, repositories are learnt from webhook notifications)`,
          { cause: err },
        );
      }
      this.deps.logger.info({ rule: rule.name, err: errorText(err) }, 'source catalog unavailable; reconciling the named and known repositories');
      return [...new Set([...literal, ...known])].sort();
    }
    return [...new Set([...catalog.filter((name) => repositorySelected(rule.repositories, name)), ...literal, ...known])].sort();
  }

  /**
   * HEADs one tag; queues it when this registry's copy differs. `in-sync`: here at the source's
   * digest; `queued`: newly queued (or with new information); `pending`: already queued as is.
   */
  private async check(rule: SyncRule, remote: RemoteRegistry, repository: string, tag: string, signal: AbortSignal): Promise<'in-sync' | 'queued' | 'pending'> {
    const { store, registry } = this.deps;
    const source = await remote.resolve(repository, tag, signal);
    if (!source) return 'in-sync'; // deleted between the listing and the HEAD: nothing to copy
    const local = await registry.manifests.digestOfTag(destinationOf(rule, repository), tag);
    const now = this.now();
    if (local === source.digest) {
      await store.images.record({
        ruleId: rule.id,
        repository,
        tag,
        sourceDigest: source.digest,
        digest: local,
        lastCheckedAt: now,
        lastError: null,
        lastErrorAt: null,
      });
      return 'in-sync';
    }
    await store.images.record({ ruleId: rule.id, repository, tag, sourceDigest: source.digest, lastCheckedAt: now });
    const queued = await store.queue.enqueue({ ruleId: rule.id, repository, tag, digest: source.digest, reason: 'reconcile' }, now);
    if (queued === 'unchanged') return 'pending';
    this.onQueued();
    return 'queued';
  }
}

/** Runs `task` over `values` with at most `limit` at once; the first failure stops new starts and is rethrown after the others settle. */
async function forEachLimited<T>(values: readonly T[], limit: number, task: (value: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { error: unknown } | undefined;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, values.length)) }, async () => {
    while (!failed && next < values.length) {
      const value = values[next++] as T;
      try {
        await task(value);
      } catch (error) {
        failed ??= { error };
      }
    }
  });
  await Promise.all(lanes);
  if (failed) throw failed.error;
}
