/**
 * Storage usage and quota accounting.
 *
 * The choice: **cached aggregates refreshed by a job, plus a delta from accepted pushes**, not
 * counters maintained inside the manifest and blob transactions. Exact incremental counters would
 * have to decide, inside every manifest put and delete, whether each blob is still referenced
 * elsewhere in the repository (and, for exclusive bytes, in any other repository), serialise every
 * push to a repository on one counter row (on PostgreSQL, across replicas), and reach into the
 * transactions other features keep minimal. Instead:
 *
 * - the usage job (a lifecycle run of kind `usage`, every `lifecycle.usage.refreshIntervalMs`, one
 *   replica at a time, resumable) computes each repository's logical and exclusive bytes from the
 *   live tables (`UsageIndex.compute`: indexed aggregates) and stores them; then each quota's usage
 *   as the sum over the repositories its globs match;
 * - every accepted manifest push adds the bytes it made reachable (its own size and the blobs the
 *   repository did not reference yet) to the delta of each quota it falls under, in the database,
 *   so every replica sees it; a refresh replaces the sum and takes off the delta it had read when
 *   it started, keeping what pushes added meanwhile.
 *
 * Consistency: a quota's usage (`sum + delta`) is exact as of the last refresh plus every push
 * accepted since, on any replica. Deletions lower it at the next refresh, and a push counted both
 * by a refresh that ran meanwhile and by the delta counts twice until the next one: so the number
 * errs only upwards, and only for one interval. Two pushes checked at once may each fit and together
 * exceed the limit by at most their own sizes (the check is not serialised, by design: it would
 * make every push to a quota wait on every other). Repository usage shown by the API and metrics
 * is as of the last refresh.
 */
import type { Logger } from 'pino';
import type { QuotaRule, QuotaUsageView, RepositoryUsageView, UsageView } from '../api/lifecycle.js';
import { quotaEvent } from '../events/payload.js';
import type { EventIndex } from '../metadata/event-store.js';
import type { LifecycleMetadata, RepositoryUsage } from '../metadata/lifecycle-store.js';
import type { Pusher } from '../metadata/store.js';
import type { Metrics } from '../metrics/index.js';
import type { Clock } from '../shared/clock.js';
import { matchesRepositoryPattern } from '../shared/glob.js';
import type { PolicyStore, StoredPolicy } from './policies.js';
import { quotaState, stateRank, type QuotaState } from './quota.js';
import { repositoryMatches } from './selectors.js';

/** Repositories read per page while refreshing or listing. */
const page = 200;
/** The most repositories whose joint exclusive size a usage view computes on request. */
const maxExclusiveSet = 2000;

/** Where a usage refresh is (saved as the run's progress, so a resumed refresh continues). */
export interface UsageProgress {
  startedAt: number;
  /** Each quota's delta when the refresh started (taken off when it ends). */
  consumed: Record<string, number>;
  /** The repository computed last. */
  cursor: string | null;
  repositories: number;
}

export interface UsageDependencies {
  store: Pick<LifecycleMetadata, 'usage' | 'state'>;
  policies: PolicyStore;
  events: Pick<EventIndex, 'append'>;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}

export class UsageAccounting {
  /** The last known usage per quota name, for the metrics. */
  private readonly known = new Map<string, { usage: number; limit: number | undefined }>();
  private totals = { logical: 0, repositories: 0 };

  constructor(private readonly deps: UsageDependencies) {
    const { metrics } = deps;
    metrics.gauge(
      'berth_lifecycle_quota_usage_bytes',
      'Usage of each quota (sum of its repositories’ logical sizes, with pushes since the last refresh).',
      ['quota'],
      (gauge) => {
        gauge.reset();
        for (const [quota, { usage }] of this.known) gauge.set({ quota }, usage);
      },
    );
    metrics.gauge('berth_lifecycle_quota_limit_bytes', 'Limit of each quota that sets one.', ['quota'], (gauge) => {
      gauge.reset();
      for (const [quota, { limit }] of this.known) if (limit !== undefined) gauge.set({ quota }, limit);
    });
    metrics.gauge('berth_lifecycle_logical_bytes', 'Sum of every repository’s logical size, as of the last usage refresh.', [], (gauge) =>
      gauge.set(this.totals.logical),
    );
    metrics.gauge('berth_lifecycle_repositories', 'Repositories counted by the last usage refresh.', [], (gauge) => gauge.set(this.totals.repositories));
  }

  private get store() {
    return this.deps.store;
  }

  /** A quota's usage now (sum + delta), computing it first if it never was. */
  async quotaUsage(policy: StoredPolicy<QuotaRule>): Promise<number> {
    const row = await this.store.usage.quota(policy.id);
    const usage = row ? row.usageBytes + row.deltaBytes : await this.refreshQuota(policy);
    this.known.set(policy.rule.name, { usage, limit: policy.rule.limit });
    return usage;
  }

  /**
   * Computes a quota's usage now from the repositories its globs match (for a quota just created or
   * changed, so it is enforced at once) and stores it; returns it.
   */
  async refreshQuota(policy: StoredPolicy<QuotaRule>): Promise<number> {
    const now = this.deps.clock.now();
    const consumed = (await this.store.usage.quota(policy.id))?.deltaBytes ?? 0;
    let sum = 0;
    const rows: RepositoryUsage[] = [];
    for (let after: string | undefined; ;) {
      const names = await this.store.state.repositories({ after, limit: page });
      for (const name of names) {
        if (!repositoryMatches(policy.rule.repositories, name)) continue;
        const usage = await this.store.usage.compute(name, now);
        if (usage) {
          rows.push(usage);
          sum += usage.logicalBytes;
        }
      }
      if (names.length < page) break;
      after = names[names.length - 1];
    }
    await this.store.usage.save(rows);
    // A new row starts `ok`; `settle` then moves it (and reports a crossing) like any change.
    await this.store.usage.setQuota(policy.id, sum, consumed, 'ok', now);
    const remaining = (await this.store.usage.quota(policy.id))?.deltaBytes ?? 0;
    await this.settle(policy, sum + remaining, {});
    this.known.set(policy.rule.name, { usage: sum + remaining, limit: policy.rule.limit });
    return sum + remaining;
  }

  /** After an accepted push: adds what it made reachable to its quotas, and reports any quota it took past a level. */
  async pushed(quotas: readonly StoredPolicy<QuotaRule>[], bytes: number, cause: { repository: string; actor: Pusher | undefined }): Promise<void> {
    if (quotas.length === 0 || bytes <= 0) return;
    await this.store.usage.addQuotaDelta(
      quotas.map((q) => q.id),
      bytes,
    );
    for (const quota of quotas) {
      const row = await this.store.usage.quota(quota.id);
      if (!row) continue;
      const usage = row.usageBytes + row.deltaBytes;
      this.known.set(quota.rule.name, { usage, limit: quota.rule.limit });
      await this.settle(quota, usage, cause);
    }
  }

  /** After a push refused for `quota`: it is exceeded, and says so once. */
  async refused(quota: StoredPolicy<QuotaRule>, usage: number, adding: number, cause: { repository: string; actor: Pusher | undefined }): Promise<void> {
    await this.settle(quota, usage, cause, adding);
  }

  /**
   * Moves the quota's stored state to what `usage` makes it (or `exceeded`, for a refusal) and sends
   * a `quota_warning` / `quota_exceeded` event when it got worse. The state changes by compare-and-
   * set, so of several replicas seeing the same crossing one sends the event.
   */
  private async settle(
    quota: StoredPolicy<QuotaRule>,
    usage: number,
    cause: { repository?: string | undefined; actor?: Pusher | undefined },
    refusedBytes?: number,
  ): Promise<void> {
    const row = await this.store.usage.quota(quota.id);
    if (!row || quota.rule.limit === undefined) return;
    const to: QuotaState = refusedBytes !== undefined ? 'exceeded' : quotaState(quota.rule, usage);
    const from = row.state as QuotaState;
    if (from === to) return;
    const now = this.deps.clock.now();
    if (!(await this.store.usage.transitionQuota(quota.id, from, to, now))) return;
    if (stateRank(to) <= stateRank(from)) return;
    const detail = {
      name: quota.rule.name,
      repositories: quota.rule.repositories,
      limitBytes: quota.rule.limit,
      usageBytes: usage,
      ...(refusedBytes !== undefined ? { refusedBytes } : {}),
    };
    await this.deps.events.append(quotaEvent(to === 'exceeded' ? 'quota_exceeded' : 'quota_warning', detail, cause, now), now);
    this.deps.logger.info({ quota: quota.rule.name, state: to, usage, limit: quota.rule.limit }, 'quota state changed');
  }

  /**
   * The usage job (see the module comment): every repository's usage computed again, then every
   * quota's. Resumes from `progress`; reports progress through `save` after each page.
   */
  async refreshAll(signal: AbortSignal, resume: UsageProgress | undefined, save: (progress: UsageProgress) => void): Promise<UsageProgress> {
    const { clock } = this.deps;
    const progress: UsageProgress = resume ?? {
      startedAt: clock.now(),
      consumed: Object.fromEntries((await this.store.usage.quotas()).map((q) => [q.policyId, q.deltaBytes])),
      cursor: null,
      repositories: 0,
    };
    for (;;) {
      signal.throwIfAborted();
      const names = await this.store.state.repositories({ after: progress.cursor ?? undefined, limit: page });
      const rows: RepositoryUsage[] = [];
      for (const name of names) {
        const usage = await this.store.usage.compute(name, clock.now());
        if (usage) rows.push(usage);
      }
      await this.store.usage.save(rows);
      progress.repositories += names.length;
      if (names.length > 0) progress.cursor = names[names.length - 1] as string;
      save({ ...progress });
      if (names.length < page) break;
    }
    // Repositories whose last manifest went since their row was written: computed again (empty now).
    let logical = 0;
    let counted = 0;
    const quotas = (await this.deps.policies.fresh()).quotas;
    const sums = new Map(quotas.map((q) => [q.id, 0]));
    for (let after: string | undefined; ;) {
      signal.throwIfAborted();
      const rows = await this.store.usage.list({ after, limit: page });
      const stale = rows.filter((row) => row.computedAt < progress.startedAt);
      const fresh = new Map<string, RepositoryUsage>();
      for (const row of stale) {
        const usage = await this.store.usage.compute(row.repository, clock.now());
        if (usage) fresh.set(row.repository, usage);
      }
      await this.store.usage.save([...fresh.values()]);
      for (const row of rows) {
        const usage = fresh.get(row.repository) ?? row;
        logical += usage.logicalBytes;
        counted++;
        for (const quota of quotas)
          if (repositoryMatches(quota.rule.repositories, row.repository)) sums.set(quota.id, (sums.get(quota.id) ?? 0) + usage.logicalBytes);
      }
      if (rows.length < page) break;
      after = rows[rows.length - 1]?.repository;
    }
    this.totals = { logical, repositories: counted };
    const now = clock.now();
    for (const quota of quotas) {
      const sum = sums.get(quota.id) ?? 0;
      await this.store.usage.setQuota(quota.id, sum, progress.consumed[quota.id] ?? 0, 'ok', now);
      const remaining = (await this.store.usage.quota(quota.id))?.deltaBytes ?? 0;
      this.known.set(quota.rule.name, { usage: sum + remaining, limit: quota.rule.limit });
      await this.settle(quota, sum + remaining, {});
    }
    for (const name of this.known.keys()) if (!quotas.some((q) => q.rule.name === name)) this.known.delete(name);
    return progress;
  }

  /** The usage view: repositories matching `pattern` (a page), their total, and every quota. */
  async view(pattern: string, request: { after?: string | undefined; limit: number }): Promise<UsageView> {
    const repositories: RepositoryUsageView[] = [];
    let next: string | null = null;
    const matching: string[] = [];
    let logical = 0;
    for (let after: string | undefined; ;) {
      const rows = await this.store.usage.list({ after, limit: page });
      for (const row of rows) {
        if (!matchesRepositoryPattern(pattern, row.repository)) continue;
        matching.push(row.repository);
        logical += row.logicalBytes;
        if (request.after !== undefined && row.repository <= request.after) continue;
        if (repositories.length < request.limit) repositories.push(usageView(row));
        else next ??= repositories[repositories.length - 1]?.repository ?? null;
      }
      if (rows.length < page) break;
      after = rows[rows.length - 1]?.repository;
    }
    const exclusive = matching.length <= maxExclusiveSet ? await this.store.usage.exclusiveOf(matching) : null;
    return {
      pattern,
      repositories,
      total: { repositories: matching.length, logicalBytes: logical, exclusiveBytes: exclusive },
      quotas: await this.quotaViews(),
      next,
    };
  }

  async quotaViews(): Promise<QuotaUsageView[]> {
    const rows = new Map((await this.store.usage.quotas()).map((row) => [row.policyId, row]));
    return (await this.deps.policies.rules()).quotas.map((quota) => {
      const row = rows.get(quota.id);
      return {
        name: quota.rule.name,
        repositories: quota.rule.repositories,
        limitBytes: quota.rule.limit ?? null,
        usageBytes: row ? row.usageBytes + row.deltaBytes : null,
        state: row ? (row.state as QuotaState) : 'unknown',
        computedAt: row ? new Date(row.computedAt).toISOString() : null,
      };
    });
  }
}

function usageView(row: RepositoryUsage): RepositoryUsageView {
  return {
    repository: row.repository,
    logicalBytes: row.logicalBytes,
    exclusiveBytes: row.exclusiveBytes,
    manifests: row.manifests,
    blobs: row.blobs,
    computedAt: new Date(row.computedAt).toISOString(),
  };
}
