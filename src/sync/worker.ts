/**
 * The sync worker: the background loop that reconciles rules and copies queued images. Started
 * by `App.listen()` and stopped by `App.close()`; several replicas may run it against one
 * database, because every reconcile and every image is claimed with a lease first (see
 * `metadata/sync-store.ts`), renewed by a heartbeat while it runs, and handed back on failure.
 *
 * Level-based: an item names (rule, repository, tag) and the worker re-reads the world (the
 * source's digest by HEAD, this registry's tag) instead of trusting what a notification said, so
 * duplicated, reordered or stale notifications converge on the source's current state, and an
 * image already at the source's digest is never copied again.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { isRegistryError } from '../oci/errors.js';
import type { Registry } from '../registry/index.js';
import type { Clock } from '../shared/clock.js';
import type { ReconcileStats, SyncIndex, SyncRuleRecord, SyncWorkItem } from '../metadata/sync-store.js';
import { copyImage } from '../replication/copy.js';
import type { RemoteRegistry } from '../remote/client.js';
import { literalRepositories, repositorySelected, tagSelected } from './filters.js';
import { destinationOf, reconcileInterval, type SyncRule } from './rule.js';
import type { SourcePool } from './sources.js';

export type SyncSettings = Config['sync'];

/** Errors that another attempt cannot fix (until the rule or the source changes). */
const permanentCodes = new Set(['INVALID_REQUEST', 'NAME_INVALID', 'EGRESS_REFUSED']);
const maxErrorLength = 1000;
/** How soon an item whose source has not settled is looked at again. */
const settleRecheckMs = 1000;

export class SyncWorker {
  /** This process's lease-holder id. */
  readonly owner = `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  private started = false;
  private stopped = false;
  private ticking = false;
  private tickAgain = false;
  private reconciling = false;
  private copying = 0;
  private lastPrune = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly abort = new AbortController();

  constructor(
    private readonly store: SyncIndex,
    private readonly registry: Registry,
    private readonly sources: SourcePool,
    private readonly settings: SyncSettings,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  start(): void {
    if (this.started || !this.settings.enabled) return;
    this.started = true;
    this.schedule(0);
  }

  /** Look for work now (a webhook queued something, an on-demand run was asked for). */
  nudge(): void {
    if (this.started && !this.stopped) this.schedule(0);
  }

  /** Stops claiming work, aborts what runs and waits for it to hand its claims back. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.abort.abort(new Error('the server is shutting down'));
    await Promise.allSettled([...this.inFlight]);
  }

  private now(): number {
    return this.clock.now();
  }

  /** Wakes the loop after `delayMs`, unless an earlier wake-up is already set (so a nudge is never pushed back). */
  private schedule(delayMs: number): void {
    if (this.stopped) return;
    const at = Date.now() + delayMs;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, delayMs);
    this.timer.unref();
  }

  /** Keeps background work visible to `stop()`; a failure is logged, never an unhandled rejection. */
  private track(work: Promise<void>): void {
    const tracked = work.then(
      () => undefined,
      (err: unknown) => this.logger.error({ err }, 'sync work failed'),
    );
    this.inFlight.add(tracked);
    void tracked.then(() => {
      this.inFlight.delete(tracked);
      this.nudge();
    });
  }

  private async tick(): Promise<void> {
    if (this.ticking) {
      this.tickAgain = true;
      return;
    }
    this.ticking = true;
    try {
      const now = this.now();
      const leaseUntil = now + this.settings.leaseMs;
      // One reconcile at a time per process; the copies it queues run alongside.
      if (!this.reconciling) {
        const rule = await this.store.claimDueRule(this.owner, now, leaseUntil);
        if (rule) {
          this.reconciling = true;
          this.track(this.reconcile(rule).finally(() => (this.reconciling = false)));
        }
      }
      const free = this.settings.queueConcurrency - this.copying;
      if (free > 0 && !this.stopped) {
        for (const item of await this.store.claimItems(this.owner, free, now, leaseUntil)) {
          this.copying++;
          this.track(this.process(item).finally(() => this.copying--));
        }
      }
      if (now - this.lastPrune > 60_000) {
        this.lastPrune = now;
        await this.store.pruneDeliveries(now - this.settings.dedupeWindowMs);
      }
    } catch (err) {
      this.logger.error({ err }, 'sync worker tick failed');
    } finally {
      this.ticking = false;
      if (this.tickAgain) {
        this.tickAgain = false;
        this.schedule(0);
      } else {
        this.schedule(this.settings.workerIntervalMs);
      }
    }
  }

  /**
   * A reconcile: list the source's repositories (catalog filtered by the rule's globs, plus the
   * globs without wildcards, which is all there is when the source hides its catalog) and their
   * selected tags, HEAD each tag, and queue those whose digest differs from this registry's. The
   * first successful one is the backfill.
   */
  private async reconcile(rule: SyncRuleRecord): Promise<void> {
    const stats: ReconcileStats = { repositories: 0, tags: 0, queued: 0, errors: 0 };
    const signal = this.abort.signal;
    const heartbeat = setInterval(
      () => {
        void this.store.renewRuleLease(rule.id, this.owner, this.now() + this.settings.leaseMs, stats).catch(() => undefined);
      },
      Math.max(1000, Math.floor(this.settings.leaseMs / 3)),
    );
    heartbeat.unref();
    let failure: string | null = null;
    let firstImageError: string | undefined;
    /** Every selected tag was already here at the source's digest (so no image of the rule is failing). */
    let allInSync = true;
    this.logger.info({ rule: rule.name, backfill: rule.state.backfilledAt === null }, 'sync reconcile started');
    try {
      const remote = await this.sources.get(rule);
      const repositories = await this.sourceRepositories(rule, remote, signal, stats);
      const concurrency = this.sources.limits(rule).concurrency;
      for (const repository of repositories) {
        signal.throwIfAborted();
        stats.repositories++;
        let tags: string[];
        try {
          tags = (await remote.listTags(repository, signal)).filter((tag) => tagSelected(rule.tags, tag));
        } catch (err) {
          if (signal.aborted) throw err;
          stats.errors++;
          firstImageError ??= `${repository}: ${errorText(err)}`;
          continue;
        }
        await forEachLimited(tags, concurrency, async (tag) => {
          signal.throwIfAborted();
          stats.tags++;
          try {
            const found = await this.check(rule, remote, repository, tag, signal);
            if (found !== 'in-sync') allInSync = false;
            if (found === 'queued') stats.queued++;
          } catch (err) {
            if (signal.aborted) throw err;
            stats.errors++;
            const message = errorText(err);
            firstImageError ??= `${repository}:${tag}: ${message}`;
            await this.store.recordImage({ ruleId: rule.id, repository, tag, lastCheckedAt: this.now(), lastError: message, lastErrorAt: this.now() });
          }
        });
      }
    } catch (err) {
      if (signal.aborted) {
        clearInterval(heartbeat);
        // Hand the lease back without an outcome; the next process picks the reconcile up.
        await this.store
          .finishReconcile(rule.id, this.owner, {
            at: this.now(),
            error: 'interrupted by a shutdown',
            stats,
            nextReconcileAt: this.now(),
            backfilled: false,
            clearsRuleError: false,
          })
          .catch(() => undefined);
        return;
      }
      failure = errorText(err);
    } finally {
      clearInterval(heartbeat);
    }
    const at = this.now();
    const interval = reconcileInterval(rule, this.settings);
    const error = failure ?? (stats.errors > 0 ? `${stats.errors} of ${stats.tags} images failed; first: ${firstImageError ?? 'unknown'}` : null);
    await this.store.finishReconcile(rule.id, this.owner, {
      at,
      error,
      stats,
      nextReconcileAt: interval === undefined ? null : at + interval,
      // Complete only if every selected tag was listed and checked: then everything is queued or here.
      backfilled: error === null,
      // A clean reconcile with copies still pending (or failing) leaves their error on the rule.
      clearsRuleError: error === null && allInSync,
    });
    if (error) await this.store.recordRuleOutcome(rule.id, { error, at });
    this.logger.info({ rule: rule.name, ...stats, error }, 'sync reconcile finished');
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
    const known = (await this.store.knownRepositories(rule.id)).filter((name) => repositorySelected(rule.repositories, name));
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
      this.logger.info({ rule: rule.name, err: errorText(err) }, 'source catalog unavailable; reconciling the named and known repositories');
      return [...new Set([...literal, ...known])].sort();
    }
    return [...new Set([...catalog.filter((name) => repositorySelected(rule.repositories, name)), ...literal, ...known])].sort();
  }

  /**
   * HEADs one tag; queues it when this registry's copy differs. `in-sync`: here at the source's
   * digest; `queued`: newly queued (or with new information); `pending`: already queued as is.
   */
  private async check(rule: SyncRule, remote: RemoteRegistry, repository: string, tag: string, signal: AbortSignal): Promise<'in-sync' | 'queued' | 'pending'> {
    const source = await remote.resolve(repository, tag, signal);
    if (!source) return 'in-sync'; // deleted between the listing and the HEAD: nothing to copy
    const local = await this.registry.manifests.digestOfTag(destinationOf(rule, repository), tag);
    const now = this.now();
    if (local === source.digest) {
      await this.store.recordImage({
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
    await this.store.recordImage({ ruleId: rule.id, repository, tag, sourceDigest: source.digest, lastCheckedAt: now });
    const queued = await this.store.enqueue({ ruleId: rule.id, repository, tag, digest: source.digest, reason: 'reconcile' }, now);
    if (queued === 'unchanged') return 'pending';
    this.nudge();
    return 'queued';
  }

  /** One queued image: HEAD the source, compare with this registry, copy if they differ. */
  private async process(item: SyncWorkItem): Promise<void> {
    const signal = this.abort.signal;
    const rule = await this.store.getRule(item.ruleId);
    if (!rule) return; // deleted with its queue
    if (!rule.enabled || !repositorySelected(rule.repositories, item.repository) || !tagSelected(rule.tags, item.tag)) {
      // The rule changed since this was queued; re-enabling a rule reconciles it.
      await this.store.completeItem(item, this.owner);
      return;
    }
    const heartbeat = setInterval(
      () => {
        void this.store.renewItemLease(item, this.owner, this.now() + this.settings.leaseMs).catch(() => undefined);
      },
      Math.max(1000, Math.floor(this.settings.leaseMs / 3)),
    );
    heartbeat.unref();
    const key = { ruleId: rule.id, repository: item.repository, tag: item.tag };
    const target = destinationOf(rule, item.repository);
    try {
      const remote = await this.sources.get(rule);
      const source = await remote.resolve(item.repository, item.tag, signal);
      if (this.sourceUnsettled(item, source?.digest)) {
        const shows = source ? `still ${source.digest}` : 'no such tag';
        const note = `waiting for the source to show ${item.digest} as ${item.repository}:${item.tag} (${shows}); notifications can arrive before the tag moves`;
        await this.store.deferItem(item, this.owner, this.now() + settleRecheckMs, note);
        return;
      }
      if (!source) {
        const message = `${item.repository}:${item.tag} does not exist on the source (deleted after it was announced?)`;
        await this.store.recordImage({ ...key, lastCheckedAt: this.now(), lastError: message, lastErrorAt: this.now() });
        await this.store.completeItem(item, this.owner);
        return;
      }
      const local = await this.registry.manifests.digestOfTag(target, item.tag);
      if (local === source.digest) {
        await this.store.recordImage({
          ...key,
          sourceDigest: source.digest,
          digest: local,
          lastCheckedAt: this.now(),
          lastError: null,
          lastErrorAt: null,
        });
        await this.store.completeItem(item, this.owner);
        return;
      }
      const result = await copyImage(this.registry, {
        source: remote,
        sourceRepository: item.repository,
        reference: item.tag,
        targetRepository: target,
        targetTags: [item.tag],
        includeReferrers: rule.includeReferrers,
        force: true,
        signal,
        concurrency: this.sources.limits(rule).concurrency,
        pusher: {
          principalId: `sync:${rule.id}`,
          principalName: `sync:${rule.name}`,
          provenance: { sync: { rule: rule.name, source: rule.source.url, repository: item.repository, tag: item.tag, reason: item.reason } },
        },
      });
      const at = this.now();
      await this.store.recordImage({
        ...key,
        sourceDigest: result.digest,
        digest: result.digest,
        lastCheckedAt: at,
        lastSyncAt: at,
        lastError: null,
        lastErrorAt: null,
        copied: true,
      });
      await this.store.recordRuleOutcome(rule.id, { syncedAt: at, at });
      await this.store.completeItem(item, this.owner);
      this.logger.info(
        {
          rule: rule.name,
          source: `${item.repository}:${item.tag}`,
          target: `${target}:${item.tag}`,
          digest: result.digest,
          blobsCopied: result.blobsCopied,
          bytes: result.bytesCopied,
        },
        'synced image',
      );
    } catch (err) {
      if (signal.aborted) {
        await this.store.releaseItem(item, this.owner).catch(() => undefined);
        return;
      }
      await this.failed(rule, item, err);
    } finally {
      clearInterval(heartbeat);
    }
  }

  /**
   * True while a notification's digest is not (yet) what the source's tag resolves to, within the
   * settle window. CNCF Distribution sends a manifest push event before it links the tag, so a
   * fast receiver would otherwise find the tag missing, or still at the previous digest, and
   * drop the push. Past the window the source's current state is the answer (the notification
   * was stale, or the tag moved again).
   */
  private sourceUnsettled(item: SyncWorkItem, sourceDigest: string | undefined): boolean {
    if (item.reason !== 'webhook' || item.digest === null || sourceDigest === item.digest) return false;
    return this.now() - item.enqueuedAt < this.settings.notificationSettleMs;
  }

  private async failed(rule: SyncRuleRecord, item: SyncWorkItem, err: unknown): Promise<void> {
    const message = errorText(err);
    const at = this.now();
    const attempts = item.attempts + 1;
    const permanent = isRegistryError(err) && permanentCodes.has(err.code);
    const giveUp = permanent || attempts >= this.settings.retry.maxAttempts;
    if (!isRegistryError(err)) this.logger.error({ err, rule: rule.name, image: `${item.repository}:${item.tag}` }, 'sync copy failed');
    else this.logger.warn({ rule: rule.name, image: `${item.repository}:${item.tag}`, code: err.code, attempts, giveUp, error: message }, 'sync copy failed');
    await this.store.recordImage({ ruleId: rule.id, repository: item.repository, tag: item.tag, lastCheckedAt: at, lastError: message, lastErrorAt: at });
    await this.store.recordRuleOutcome(rule.id, { error: `${item.repository}:${item.tag}: ${message}`, at });
    if (giveUp) {
      // The error stays in the image's status; the next reconcile queues it again.
      await this.store.completeItem(item, this.owner);
      return;
    }
    const { initialDelayMs, maxDelayMs } = this.settings.retry;
    // A source that asked for a longer pause than the client waits out gets it here.
    const delay = Math.max(Math.min(maxDelayMs, initialDelayMs * 2 ** (attempts - 1)), retryAfterOf(err) ?? 0);
    await this.store.retryItem(item, this.owner, at + delay, message);
  }
}

/** How long the source asked us to wait, when the error carries it (`detail.retryAfterMs`). */
function retryAfterOf(err: unknown): number | undefined {
  const value = isRegistryError(err) ? (err.detail as { retryAfterMs?: unknown } | undefined)?.retryAfterMs : undefined;
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}

/** A failure as stored in status rows: RegistryErrors say what to do; anything else is a bug, logged in full. */
export function errorText(err: unknown): string {
  const text = isRegistryError(err) || err instanceof Error ? err.message : String(err);
  return text.length > maxErrorLength ? `${text.slice(0, maxErrorLength - 1)}…` : text;
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
