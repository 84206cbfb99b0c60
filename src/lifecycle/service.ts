/**
 * Lifecycle policies as one service (`services.lifecycle`): policy management (each change audited
 * with its actor), the retention preview, runs on request and their reports, and storage usage.
 * HTTP stays in the handlers (`http/handlers/admin/lifecycle.ts`), which parse and send the views
 * these methods answer with. The push-path enforcement, last-pull tracking and the background runs
 * are built with it (`index.ts`).
 */
import { randomUUID } from 'node:crypto';
import { ApiError } from '../api/errors.js';
import {
  type PoliciesView,
  type PolicyChangeView,
  type PolicyKind,
  type PolicyView,
  type QuotaRule,
  type RetentionActionView,
  type RetentionPreviewView,
  type RetentionRule,
  type RunDetailView,
  type RunView,
  type UsageView,
} from '../api/lifecycle.js';
import type { AuditIndex } from '../metadata/auth-store.js';
import type { LifecycleMetadata, RunRecord } from '../metadata/lifecycle-store.js';
import { isValidRepositoryName } from '../oci/names.js';
import type { Actor } from '../shared/actor.js';
import type { Clock } from '../shared/clock.js';
import type { RetentionEngine } from './engine.js';
import { parseRule, policyView, type PolicyStore, type StoredPolicy } from './policies.js';
import { emptyProgress, retentionSchedule, usageSchedule, type LifecycleRuns, type RetentionProgress } from './runs.js';
import { repositoryMatches } from './selectors.js';
import type { UsageAccounting, UsageProgress } from './usage.js';

/** Repositories read per page while previewing. */
const page = 200;

export interface LifecycleServiceDependencies {
  store: LifecycleMetadata;
  policies: PolicyStore;
  engine: RetentionEngine;
  runs: LifecycleRuns;
  usage: UsageAccounting;
  audit: Pick<AuditIndex, 'append'>;
  clock: Clock;
  previewLimit: number;
  /** Wakes the run runner (a run was queued). */
  wake: () => void;
}

export class LifecycleService {
  constructor(private readonly deps: LifecycleServiceDependencies) {}

  private now(): number {
    return this.deps.clock.now();
  }

  // -------------------------------------------------------------------------------------------
  // Policies

  async listPolicies(): Promise<PoliciesView> {
    const rules = await this.deps.policies.fresh();
    const retention: PolicyView<RetentionRule>[] = [];
    for (const p of rules.retention) retention.push((await this.view(p)) as PolicyView<RetentionRule>);
    return {
      retention,
      immutability: rules.immutability.map((p) => policyView(p) as PolicyView<(typeof p)['rule']>),
      quotas: rules.quotas.map((p) => policyView(p) as PolicyView<QuotaRule>),
    };
  }

  async getPolicy(kind: PolicyKind, name: string): Promise<PolicyView> {
    return this.view(await this.policyNamed(kind, name));
  }

  /**
   * Creates or replaces the policy `kind`/`name` with `body` (validated: INVALID_REQUEST names the
   * problems). A retention rule's schedule starts one interval from now; a quota's usage is computed
   * at once, so it is enforced from the next push.
   */
  async putPolicy(actor: Actor, kind: PolicyKind, name: string, body: unknown): Promise<PolicyChangeView> {
    const { policies, store } = this.deps;
    const rule = parseRule(kind, name, body);
    const { policy, created, previous } = await policies.put(kind, rule);
    if (policy.kind === 'retention') {
      const retention = policy.rule as RetentionRule;
      const every = retention.enabled ? retention.schedule?.every : undefined;
      const before = previous?.rule as RetentionRule | undefined;
      const unchanged = before !== undefined && before.enabled && before.schedule?.every === every;
      if (every === undefined) await store.schedule.remove(retentionSchedule(name));
      else if (!unchanged || (await store.schedule.get(retentionSchedule(name))) === undefined)
        await store.schedule.set(retentionSchedule(name), this.now() + every);
    }
    if (policy.kind === 'quotas') await this.deps.usage.refreshQuota(policy as StoredPolicy<QuotaRule>);
    await this.audit(actor, created ? 'admin.lifecycle_policy.created' : 'admin.lifecycle_policy.updated', { kind, name, rule });
    return { policy: await this.view(policy), created };
  }

  async deletePolicy(actor: Actor, kind: PolicyKind, name: string): Promise<void> {
    const deleted = await this.deps.policies.delete(kind, name);
    if (!deleted) throw new ApiError('POLICY_UNKNOWN', `no ${kind} policy named ${name}`);
    if (kind === 'retention') await this.deps.store.schedule.remove(retentionSchedule(name));
    await this.audit(actor, 'admin.lifecycle_policy.deleted', { kind, name });
  }

  // -------------------------------------------------------------------------------------------
  // Retention: preview and runs

  /**
   * What a retention rule would delete now and why: the saved rule `name`, or an unsaved `rule`
   * (so a rule can be tried before it exists). Lists whole repositories, in name order, after
   * `after`, until `limit` actions (then `truncated`, and `next` continues).
   */
  async preview(request: {
    name?: string | undefined;
    rule?: unknown;
    repository?: string | undefined;
    after?: string | undefined;
    limit?: number | undefined;
  }): Promise<RetentionPreviewView> {
    const rule =
      request.name !== undefined ? (await this.policyNamed('retention', request.name)).rule : parseRule('retention', previewName(request.rule), request.rule);
    const limit = Math.min(request.limit ?? this.deps.previewLimit, this.deps.previewLimit);
    const now = this.now();
    const view: RetentionPreviewView = {
      rule: rule.name,
      at: new Date(now).toISOString(),
      repositories: 0,
      candidates: 0,
      actions: [],
      protected: [],
      truncated: false,
      next: null,
    };
    const visit = async (repository: string): Promise<void> => {
      const plan = await this.deps.engine.plan(rule, repository, now);
      if (!plan) return;
      view.repositories++;
      view.candidates += plan.candidates;
      view.actions.push(...plan.actions.map((a): RetentionActionView => ({ repository, action: a.action, digest: a.digest, tags: a.tags, reason: a.reason })));
      view.protected.push(...plan.protected.map((p) => ({ repository, ...p })));
    };
    if (request.repository !== undefined) {
      if (!isValidRepositoryName(request.repository)) throw new ApiError('INVALID_REQUEST', 'repository: not a valid repository name');
      if (repositoryMatches(rule.repositories, request.repository)) await visit(request.repository);
      return view;
    }
    for (let after = request.after; ;) {
      const names = await this.deps.store.state.repositories({ after, limit: page });
      for (const repository of names) {
        if (!repositoryMatches(rule.repositories, repository)) continue;
        if (view.actions.length >= limit) {
          view.truncated = true;
          return view;
        }
        await visit(repository);
        view.next = repository;
      }
      if (names.length < page) break;
      after = names[names.length - 1];
    }
    view.next = null;
    return view;
  }

  /** Queues a run of the saved rule (dry or not: the rule's mode unless `dryRun` says); 202 with the run. */
  async requestRun(actor: Actor, name: string, options: { dryRun?: boolean | undefined }): Promise<RunView> {
    const policy = await this.policyNamed('retention', name);
    const active = await this.deps.store.runs.active('retention', name);
    if (active) return runView(active);
    const run = await this.deps.store.runs.create(
      {
        id: randomUUID(),
        kind: 'retention',
        policyId: policy.id,
        policyName: name,
        spec: JSON.stringify(policy.rule),
        dryRun: options.dryRun ?? policy.rule.mode === 'dry-run',
        trigger: 'request',
        requestedBy: actor.principalName,
      },
      this.now(),
    );
    await this.audit(actor, 'admin.lifecycle_run.requested', { policy: name, run: run.id, dryRun: run.dryRun });
    this.deps.wake();
    return runView(run);
  }

  /** Queues a usage refresh now (unless one is queued or running). */
  async requestUsageRefresh(actor: Actor): Promise<RunView> {
    const active = await this.deps.store.runs.active('usage', usageSchedule);
    if (active) return runView(active);
    const run = await this.deps.runs.createUsageRun('request', actor.principalName);
    this.deps.wake();
    return runView(run);
  }

  async listRuns(filter: { policy?: string | undefined; limit: number }): Promise<RunView[]> {
    return (await this.deps.store.runs.list({ policyName: filter.policy, limit: filter.limit })).map(runView);
  }

  /** A run and a page of its report (actions after `after`, in order). */
  async getRun(id: string, page: { after?: number | undefined; limit: number }): Promise<RunDetailView> {
    const run = await this.deps.store.runs.get(id);
    if (!run) throw new ApiError('RUN_UNKNOWN', `no lifecycle run ${id.slice(0, 64)}`);
    const actions = await this.deps.store.runs.actions(id, page);
    return {
      run: runView(run),
      actions: actions.map((a) => ({
        repository: a.repository,
        action: a.action as RetentionActionView['action'],
        digest: a.digest,
        tags: [...a.tags],
        reason: a.reason,
        outcome: a.outcome as NonNullable<RetentionActionView['outcome']>,
        ...(a.detail !== undefined ? { detail: a.detail } : {}),
      })),
      next: actions[actions.length - 1]?.id ?? page.after ?? null,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Usage

  usage(pattern: string, page: { after?: string | undefined; limit: number }): Promise<UsageView> {
    return this.deps.usage.view(pattern, page);
  }

  private async policyNamed<K extends PolicyKind>(kind: K, name: string) {
    const policy = await this.deps.policies.get(kind, name);
    if (!policy) throw new ApiError('POLICY_UNKNOWN', `no ${kind} policy named ${name}`);
    return policy;
  }

  private async view(policy: StoredPolicy<unknown> & { kind: PolicyKind }): Promise<PolicyView> {
    const stored = policy as Parameters<typeof policyView>[0];
    if (policy.kind !== 'retention') return policyView(stored);
    const next = await this.deps.store.schedule.get(retentionSchedule((policy.rule as RetentionRule).name));
    return policyView(stored, next ?? null);
  }

  private async audit(actor: Actor, event: string, detail: Record<string, unknown>): Promise<void> {
    await this.deps.audit.append({ at: this.now(), event, ...actor, detail });
  }
}

/** An unsaved rule's name for a preview (a rule needs one; `preview` when it has none). */
function previewName(rule: unknown): string {
  const name = (rule as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : 'preview';
}

export function runView(run: RunRecord): RunView {
  const parsed = run.progress === undefined ? undefined : (JSON.parse(run.progress) as Partial<RetentionProgress & UsageProgress>);
  const progress: RetentionProgress = { ...emptyProgress(), ...(parsed && run.kind === 'retention' ? parsed : {}) };
  if (run.kind === 'usage' && parsed) {
    progress.repositories = parsed.repositories ?? 0;
    progress.cursor = parsed.cursor ?? null;
  }
  return {
    id: run.id,
    policy: run.policyName,
    dryRun: run.dryRun,
    trigger: run.trigger,
    status: run.status,
    requestedBy: run.requestedBy ?? null,
    progress,
    error: run.error ?? null,
    createdAt: new Date(run.createdAt).toISOString(),
    startedAt: run.startedAt === undefined ? null : new Date(run.startedAt).toISOString(),
    finishedAt: run.finishedAt === undefined ? null : new Date(run.finishedAt).toISOString(),
  };
}
