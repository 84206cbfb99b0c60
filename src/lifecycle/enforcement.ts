/**
 * The lifecycle policies on the push path: the registry's `PushPolicy` (`registry/policy-hooks.ts`).
 * Every manifest push and every completed upload asks it, whoever pushes (clients, import, sync).
 *
 * Manifest push, in order (the first refusal wins, nothing is written):
 * 1. tags: for each tag the push sets, the immutability rules that apply (`immutability.ts`): an
 *    immutable tag that points elsewhere is DENIED, naming the rule and who first pushed what it
 *    points at (from the push history); a tag whose rule names writers is DENIED unless the pusher
 *    is one of them, saying who pushed. Write-once tags go back to the registry, which checks them
 *    again inside the push's transaction (a concurrent push that created one in between loses
 *    there, with the same message).
 * 2. rate: a quota's `perPrincipal.pushesPerHour` (TOOMANYREQUESTS with Retry-After);
 * 3. quota: the bytes the push makes reachable against each matching quota's limit (DENIED with the
 *    limit and the usage; a `quota_exceeded` event the first time).
 * Once committed, the bytes are added to the quotas' usage (`usage.ts`).
 *
 * Completed upload: the rate (`perPrincipal.bytesPerHour`, TOOMANYREQUESTS) and the quota (the blob
 * alone must fit; a blob the repository already has adds nothing). A refusal discards the upload.
 */
import type { Logger } from 'pino';
import type { QuotaRule } from '../api/lifecycle.js';
import type { RepositoryStateIndex } from '../metadata/lifecycle-store.js';
import type { BlobIndex, Pusher } from '../metadata/store.js';
import type { Metrics } from '../metrics/index.js';
import { RegistryError } from '../oci/errors.js';
import type { ManifestPushDecision, PendingBlob, PendingManifest, PushPolicy } from '../registry/index.js';
import type { Clock } from '../shared/clock.js';
import { decideTag, describePusher, rulesFor, type Verdict } from './immutability.js';
import type { PolicyStore, StoredPolicy } from './policies.js';
import { overQuota, type RateLimiter } from './quota.js';
import { repositoryMatches } from './selectors.js';
import type { UsageAccounting } from './usage.js';

export interface EnforcementDependencies {
  policies: PolicyStore;
  state: Pick<RepositoryStateIndex, 'tagDigests' | 'firstPush' | 'newlyReferencedBytes'>;
  blobs: Pick<BlobIndex, 'getInRepository'>;
  usage: UsageAccounting;
  rates: RateLimiter;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}

export class PushEnforcement implements PushPolicy {
  private readonly refusals;

  constructor(private readonly deps: EnforcementDependencies) {
    this.refusals = deps.metrics.counter('berth_lifecycle_push_refusals_total', 'Pushes (manifests and blobs) refused by lifecycle policies, by reason.', [
      'reason',
    ]);
  }

  async checkManifest(push: PendingManifest): Promise<ManifestPushDecision> {
    const { policies, state } = this.deps;
    const rules = await policies.rules();
    const immutability = rules.immutability.map((p) => p.rule);
    const governed = push.tags.filter((tag) => rulesFor(immutability, push.repository, tag).length > 0);
    const current = governed.length > 0 ? await state.tagDigests(push.repository, governed) : new Map<string, string>();
    const writeOnceTags: string[] = [];
    for (const tag of governed) {
      const { verdict, writeOnce } = decideTag(immutability, push.repository, tag, push.digest, current.get(tag), push.pusher);
      if (writeOnce) writeOnceTags.push(tag);
      if (verdict.kind !== 'allowed') throw await this.refuseTag(push, tag, verdict);
    }

    const quotas = this.quotasFor(rules.quotas, push.repository);
    this.takeRate(quotas, push.pusher, 'pushesPerHour', 1, 'manifest pushes');
    let adding = 0;
    const limited = quotas.filter((q) => q.rule.limit !== undefined);
    if (limited.length > 0) {
      adding = await state.newlyReferencedBytes(push.repository, { digest: push.digest, size: push.size }, push.blobs);
      await this.checkQuotas(limited, adding, `this push of ${push.digest.slice(0, 19)}…`, push);
    }
    return {
      writeOnceTags,
      conflict: async (tags) => {
        const moved = await state.tagDigests(push.repository, tags);
        const tag = tags[0] as string;
        const rule = rulesFor(immutability, push.repository, tag).find((r) => r.immutable);
        return this.refuseTag(push, tag, { kind: 'immutable', rule: rule?.name ?? 'unknown', current: moved.get(tag) ?? 'another digest' });
      },
      committed: async () => {
        try {
          await this.deps.usage.pushed(limited, adding, { repository: push.repository, actor: push.pusher });
        } catch (err) {
          this.deps.logger.warn({ err, repository: push.repository }, 'could not account a push to its quotas; the next usage refresh counts it');
        }
      },
    };
  }

  async checkBlob(blob: PendingBlob): Promise<void> {
    const quotas = this.quotasFor((await this.deps.policies.rules()).quotas, blob.repository);
    if (quotas.length === 0) return;
    this.takeRate(quotas, blob.pusher, 'bytesPerHour', blob.size, 'uploaded bytes');
    const limited = quotas.filter((q) => q.rule.limit !== undefined);
    if (limited.length === 0 || (await this.deps.blobs.getInRepository(blob.repository, blob.digest))) return;
    await this.checkQuotas(limited, blob.size, `this upload of ${blob.digest.slice(0, 19)}…`, blob);
  }

  private quotasFor(quotas: readonly StoredPolicy<QuotaRule>[], repository: string): StoredPolicy<QuotaRule>[] {
    return quotas.filter((q) => q.rule.enabled && repositoryMatches(q.rule.repositories, repository));
  }

  /** Refuses with DENIED when `adding` bytes do not fit in one of the quotas (and reports the quota exceeded). */
  private async checkQuotas(
    quotas: readonly StoredPolicy<QuotaRule>[],
    adding: number,
    what: string,
    cause: { repository: string; pusher: Pusher | undefined },
  ): Promise<void> {
    for (const quota of quotas) {
      const usage = await this.deps.usage.quotaUsage(quota);
      const message = overQuota(quota.rule, usage, adding, what);
      if (message === undefined) continue;
      this.refusals.inc({ reason: 'quota' });
      await this.deps.usage.refused(quota, usage, adding, { repository: cause.repository, actor: cause.pusher }).catch((err: unknown) => {
        this.deps.logger.warn({ err, quota: quota.rule.name }, 'could not record a quota refusal');
      });
      throw new RegistryError('DENIED', message, { quota: quota.rule.name, limit: quota.rule.limit, usage, adding });
    }
  }

  /** Takes from the pusher's rate allowance under each quota that sets one; TOOMANYREQUESTS with Retry-After when one is spent. */
  private takeRate(
    quotas: readonly StoredPolicy<QuotaRule>[],
    pusher: Pusher | undefined,
    limit: 'pushesPerHour' | 'bytesPerHour',
    amount: number,
    what: string,
  ): void {
    if (!pusher) return;
    const now = this.deps.clock.now();
    for (const quota of quotas) {
      const perHour = quota.rule.perPrincipal?.[limit];
      if (perHour === undefined) continue;
      const wait = this.deps.rates.peek(`${quota.id}\u0000${limit}\u0000${pusher.principalId}`, amount, perHour, now);
      if (wait === undefined) continue;
      this.refusals.inc({ reason: 'rate' });
      const seconds = Math.max(1, Math.ceil(wait / 1000));
      throw new RegistryError(
        'TOOMANYREQUESTS',
        `${pusher.principalName} reached the ${what} allowed per hour by quota ${quota.rule.name} (${perHour}); try again in ${seconds} s`,
        { quota: quota.rule.name, limit, perHour },
        { 'Retry-After': String(seconds) },
      );
    }
    // Every allowance has room: take from each (only now, so a refusal by one spends none of the others).
    for (const quota of quotas) {
      const perHour = quota.rule.perPrincipal?.[limit];
      if (perHour !== undefined) this.deps.rates.take(`${quota.id}\u0000${limit}\u0000${pusher.principalId}`, amount, perHour, now);
    }
  }

  /** The DENIED refusal of a tag, with the rule, and who pushed what (see the module comment). */
  private async refuseTag(push: PendingManifest, tag: string, verdict: Exclude<Verdict, { kind: 'allowed' }>): Promise<RegistryError> {
    this.refusals.inc({ reason: verdict.kind === 'immutable' ? 'immutable' : 'writer' });
    if (verdict.kind === 'writer') {
      return new RegistryError(
        'DENIED',
        `tag ${tag} of ${push.repository} may be created only by the writers of immutability rule ${verdict.rule}: ${verdict.writers}; this push is by ${describePusher(push.pusher)}`,
        { rule: verdict.rule, tag },
      );
    }
    const first = await this.deps.state.firstPush(push.repository, tag, verdict.current);
    const origin = first
      ? `, first pushed ${new Date(first.at).toISOString()} by ${describePusher({ principalName: first.principalName, provenance: first.provenance })}`
      : '';
    return new RegistryError(
      'DENIED',
      `tag ${tag} of ${push.repository} is immutable (rule ${verdict.rule}): it points at ${verdict.current}${origin}; push a new tag instead`,
      { rule: verdict.rule, tag, digest: verdict.current },
    );
  }
}
