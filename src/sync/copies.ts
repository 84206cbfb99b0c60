/**
 * Queued images as a job kind of the lease runner (`jobs/runner.ts`): an item is claimed with a
 * lease, renewed while it runs, and released with what became of it.
 *
 * Level-based: an item names (rule, repository, tag) and a run re-reads the world (the source's
 * digest by HEAD, this registry's tag) instead of trusting what a notification said, so duplicated,
 * reordered or stale notifications converge on the source's current state, and an image already at
 * the source's digest is never copied again.
 *
 * Outcomes: `complete` removes the item (or hands it back, due at once, when newer information
 * arrived while it ran); `defer` waits for a source that has not settled, without counting an
 * attempt; a failure counts an attempt and waits with backoff, or gives up (permanent errors, or
 * `retry.maxAttempts`) leaving the error in the image's status; stopped or lost: the item is handed
 * back untouched.
 */
import type { JobKind, Lease, Outcome } from '../jobs/runner.js';
import type { SyncWorkItem } from '../metadata/sync-store.js';
import { isCodedError } from '../shared/coded-error.js';
import { copyImage } from '../replication/copy.js';
import { errorText } from './error-text.js';
import { repositorySelected, tagSelected } from './filters.js';
import type { SyncJobDependencies } from './reconciles.js';
import { destinationOf, ruleRecord, type SyncRuleRecord } from './rule.js';

/** Errors that another attempt cannot fix (until the rule or the source changes). */
const permanentCodes = new Set(['INVALID_REQUEST', 'NAME_INVALID', 'EGRESS_REFUSED']);
/** How soon an item whose source has not settled is looked at again. */
const settleRecheckMs = 1000;

/** A queued image while it runs; `rule` is read by the run. */
export interface RunningCopy {
  item: SyncWorkItem;
  rule: SyncRuleRecord | undefined;
}

/** What a run decided: done with this version, look again later, or nothing to do (the rule is gone). */
export type CopyResult = { kind: 'complete' } | { kind: 'defer'; notBefore: number; note: string } | { kind: 'gone' };

export class CopyJobs implements JobKind<RunningCopy, CopyResult> {
  readonly name = 'sync copy';
  private readonly copies;

  constructor(private readonly deps: SyncJobDependencies) {
    this.copies = deps.metrics?.counter(
      'berth_sync_copies_total',
      'Queued images handled, by sync rule and result: copied, unchanged (already at the source digest), failed (will retry), given_up.',
      ['rule', 'result'],
    );
  }

  private now(): number {
    return this.deps.clock.now();
  }

  key({ item }: RunningCopy): string {
    return JSON.stringify([item.ruleId, item.repository, item.tag]);
  }

  async claim(limit: number, lease: Lease): Promise<RunningCopy[]> {
    const items = await this.deps.store.queue.claim({ ...lease, limit });
    return items.map((item) => ({ item, rule: undefined }));
  }

  renew({ item }: RunningCopy, lease: Lease): Promise<boolean> {
    return this.deps.store.queue.renew(item, lease);
  }

  /** One queued image: HEAD the source, compare with this registry, copy if they differ. */
  async run(running: RunningCopy, signal: AbortSignal): Promise<CopyResult> {
    const { store, registry, sources, logger } = this.deps;
    const { item } = running;
    const row = await store.rules.get(item.ruleId);
    if (!row) return { kind: 'gone' }; // deleted with its queue
    const rule = ruleRecord(row);
    running.rule = rule;
    // The rule changed since this was queued; re-enabling a rule reconciles it.
    if (!rule.enabled || !repositorySelected(rule.repositories, item.repository) || !tagSelected(rule.tags, item.tag)) return { kind: 'complete' };
    const key = { ruleId: rule.id, repository: item.repository, tag: item.tag };
    const target = destinationOf(rule, item.repository);
    const remote = await sources.get(rule);
    const source = await remote.resolve(item.repository, item.tag, signal);
    if (this.sourceUnsettled(item, source?.digest)) {
      const shows = source ? `still ${source.digest}` : 'no such tag';
      const note = `waiting for the source to show ${item.digest} as ${item.repository}:${item.tag} (${shows}); notifications can arrive before the tag moves`;
      return { kind: 'defer', notBefore: this.now() + settleRecheckMs, note };
    }
    if (!source) {
      const message = `${item.repository}:${item.tag} does not exist on the source (deleted after it was announced?)`;
      await store.images.record({ ...key, lastCheckedAt: this.now(), lastError: message, lastErrorAt: this.now() });
      return { kind: 'complete' };
    }
    const local = await registry.manifests.digestOfTag(target, item.tag);
    if (local === source.digest) {
      await store.images.record({ ...key, sourceDigest: source.digest, digest: local, lastCheckedAt: this.now(), lastError: null, lastErrorAt: null });
      this.copies?.inc({ rule: rule.name, result: 'unchanged' });
      return { kind: 'complete' };
    }
    const result = await copyImage(registry, {
      source: remote,
      sourceRepository: item.repository,
      reference: item.tag,
      targetRepository: target,
      targetTags: [item.tag],
      includeReferrers: rule.includeReferrers,
      force: true,
      signal,
      concurrency: sources.limits(rule).concurrency,
      pusher: {
        principalId: `sync:${rule.id}`,
        principalName: `sync:${rule.name}`,
        provenance: { sync: { rule: rule.name, source: rule.source.url, repository: item.repository, tag: item.tag, reason: item.reason } },
      },
    });
    const at = this.now();
    await store.images.record({
      ...key,
      sourceDigest: result.digest,
      digest: result.digest,
      lastCheckedAt: at,
      lastSyncAt: at,
      lastError: null,
      lastErrorAt: null,
      copied: true,
    });
    await store.rules.recordOutcome(rule.id, { syncedAt: at, at });
    this.copies?.inc({ rule: rule.name, result: 'copied' });
    logger.info(
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
    return { kind: 'complete' };
  }

  async release({ item, rule }: RunningCopy, outcome: Outcome<CopyResult>, owner: string): Promise<void> {
    const { queue } = this.deps.store;
    if (outcome.status === 'aborted') {
      await queue.release(item, owner);
      return;
    }
    if (outcome.status === 'failed') {
      if (rule) return this.failed(rule, item, outcome.error, owner);
      // The rule could not even be read: the lease runs out and the item is tried again.
      this.deps.logger.error({ err: outcome.error, image: `${item.repository}:${item.tag}` }, 'sync work failed');
      return;
    }
    const result = outcome.value;
    if (result.kind === 'complete') await queue.complete(item, owner);
    else if (result.kind === 'defer') await queue.defer(item, owner, result.notBefore, result.note);
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
    return this.now() - item.enqueuedAt < this.deps.settings.notificationSettleMs;
  }

  private async failed(rule: SyncRuleRecord, item: SyncWorkItem, err: unknown, owner: string): Promise<void> {
    const { store, settings, logger } = this.deps;
    const message = errorText(err);
    const at = this.now();
    const attempts = item.attempts + 1;
    const permanent = isCodedError(err) && permanentCodes.has(err.code);
    const giveUp = permanent || attempts >= settings.retry.maxAttempts;
    if (!isCodedError(err)) logger.error({ err, rule: rule.name, image: `${item.repository}:${item.tag}` }, 'sync copy failed');
    else logger.warn({ rule: rule.name, image: `${item.repository}:${item.tag}`, code: err.code, attempts, giveUp, error: message }, 'sync copy failed');
    await store.images.record({ ruleId: rule.id, repository: item.repository, tag: item.tag, lastCheckedAt: at, lastError: message, lastErrorAt: at });
    await store.rules.recordOutcome(rule.id, { error: `${item.repository}:${item.tag}: ${message}`, at });
    this.copies?.inc({ rule: rule.name, result: giveUp ? 'given_up' : 'failed' });
    if (giveUp) {
      // The error stays in the image's status; the next reconcile queues it again.
      await store.queue.complete(item, owner);
      return;
    }
    const { initialDelayMs, maxDelayMs } = settings.retry;
    // A source that asked for a longer pause than the client waits out gets it here.
    const delay = Math.max(Math.min(maxDelayMs, initialDelayMs * 2 ** (attempts - 1)), retryAfterOf(err) ?? 0);
    await store.queue.retry(item, owner, at + delay, message);
  }
}

/** How long the source asked us to wait, when the error carries it (`detail.retryAfterMs`). */
function retryAfterOf(err: unknown): number | undefined {
  const value = isCodedError(err) ? (err.detail as { retryAfterMs?: unknown } | undefined)?.retryAfterMs : undefined;
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}
