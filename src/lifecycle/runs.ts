/**
 * Lifecycle runs on the one lease runner (`jobs/runner.ts`): retention runs and usage refreshes are
 * rows (`lifecycle_runs`) that one replica at a time claims with a lease, renews while it works, and
 * releases with the outcome. A run saves its progress (the repository it finished last, its counts)
 * as it goes, so one handed back at shutdown, or taken over after its replica died, resumes after
 * that repository instead of starting again; a repository it was in the middle of is planned
 * afresh, and what was already deleted there is simply gone from the new plan.
 *
 * Scheduling (the kind's `prepare`, every cycle on every replica): a schedule entry that is due
 * (`usage`, and `retention:<rule>` for each enabled rule with a schedule) is advanced by compare-
 * and-set, and only the replica that advanced it creates the run, unless one of that rule is still
 * queued or running. Housekeeping (the runner's maintenance): finished runs older than
 * `runRetentionMs` go, and last pulls of manifests that are gone.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { retentionInput, type RetentionRule, type RunSummaryView } from '../api/lifecycle.js';
import type { JobKind, Lease, Outcome } from '../jobs/runner.js';
import { ThrottledSave } from '../jobs/throttle.js';
import type { LifecycleMetadata, RunRecord } from '../metadata/lifecycle-store.js';
import type { Clock } from '../shared/clock.js';
import type { RetentionEngine } from './engine.js';
import type { PolicyStore } from './policies.js';
import { repositoryMatches } from './selectors.js';
import type { UsageAccounting, UsageProgress } from './usage.js';

/** Repositories read per page while a retention run walks the registry. */
const page = 200;
/** How often a running run's progress is written (at most). */
const progressEveryMs = 1000;

/** The schedule entry of the usage refresh, and of a retention rule. */
export const usageSchedule = 'usage';
export const retentionSchedule = (rule: string) => `retention:${rule}`;

export type RetentionProgress = RunSummaryView;

export function emptyProgress(): RetentionProgress {
  return { repositories: 0, candidates: 0, deletedManifests: 0, untaggedTags: 0, skipped: 0, cursor: null };
}

/** A claimed run while it runs: its progress so far, saved as it changes. */
export interface RunningRun {
  run: RunRecord;
  progress: string | undefined;
  save: ThrottledSave<string>;
}

export interface RunsDependencies {
  store: LifecycleMetadata;
  policies: PolicyStore;
  engine: RetentionEngine;
  usage: UsageAccounting;
  clock: Clock;
  logger: Logger;
  settings: { usageRefreshMs: number; runRetentionMs: number };
}

export class LifecycleRuns implements JobKind<RunningRun> {
  readonly name = 'lifecycle run';

  constructor(private readonly deps: RunsDependencies) {}

  private now(): number {
    return this.deps.clock.now();
  }

  key(item: RunningRun): string {
    return item.run.id;
  }

  async claim(limit: number, lease: Lease): Promise<RunningRun[]> {
    const runs = await this.deps.store.runs.claim({ ...lease, limit });
    return runs.map((run) => ({
      run,
      progress: run.progress,
      save: new ThrottledSave<string>(
        (progress) => this.deps.store.runs.saveProgress(run.id, lease.owner, progress, this.now()),
        progressEveryMs,
        (err) => this.deps.logger.warn({ err, run: run.id }, 'could not save lifecycle run progress'),
      ),
    }));
  }

  renew(item: RunningRun, lease: Lease): Promise<boolean> {
    return this.deps.store.runs.renew(item.run.id, lease);
  }

  async run(item: RunningRun, signal: AbortSignal): Promise<void> {
    const offer = (progress: object) => {
      item.progress = JSON.stringify(progress);
      item.save.offer(item.progress);
    };
    if (item.run.kind === 'usage') {
      const resume = item.run.progress === undefined ? undefined : (JSON.parse(item.run.progress) as UsageProgress);
      const done = await this.deps.usage.refreshAll(signal, resume, offer);
      offer(done);
      return;
    }
    await this.retain(item, signal, offer);
  }

  async release(item: RunningRun, outcome: Outcome<void>, owner: string): Promise<void> {
    const { store, logger } = this.deps;
    const log = logger.child({ run: item.run.id, policy: item.run.policyName });
    if (outcome.status === 'aborted' && outcome.reason === 'lease-lost') {
      await item.save.close();
      log.warn('lifecycle run lease lost; another replica continues it');
      return;
    }
    await item.save.flush();
    const progress = item.progress;
    if (outcome.status === 'done') {
      await store.runs.release(item.run.id, owner, { status: 'succeeded', progress }, this.now());
      log.info({ kind: item.run.kind, progress: progress && JSON.parse(progress) }, 'lifecycle run finished');
    } else if (outcome.status === 'failed') {
      const message = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
      log.warn({ err: outcome.error }, 'lifecycle run failed');
      await store.runs.release(item.run.id, owner, { status: 'failed', progress, error: message }, this.now());
    } else {
      // Stopping: back to the queue with its progress; the next runner resumes it.
      await store.runs.release(item.run.id, owner, { status: 'queued', progress }, this.now());
    }
  }

  /** Creates the runs of due schedules (see the module comment). Never asks for another cycle. */
  async prepare(): Promise<boolean> {
    const { store, policies } = this.deps;
    const now = this.now();
    const due = await store.schedule.due(now);
    if (due.length === 0) return false;
    const retention = new Map((await policies.rules()).retention.map((p) => [retentionSchedule(p.rule.name), p]));
    for (const { name, nextAt } of due) {
      if (name === usageSchedule) {
        if (!(await store.schedule.advance(name, nextAt, now + this.deps.settings.usageRefreshMs))) continue;
        if (!(await store.runs.active('usage', usageSchedule))) await this.createUsageRun('schedule', undefined);
        continue;
      }
      const policy = retention.get(name);
      const every = policy?.rule.enabled ? policy.rule.schedule?.every : undefined;
      if (!policy || every === undefined) {
        await store.schedule.remove(name); // the rule is gone, disabled or unscheduled
        continue;
      }
      if (!(await store.schedule.advance(name, nextAt, now + every))) continue;
      if (await store.runs.active('retention', policy.rule.name)) continue;
      await store.runs.create(
        {
          id: randomUUID(),
          kind: 'retention',
          policyId: policy.id,
          policyName: policy.rule.name,
          spec: JSON.stringify(policy.rule),
          dryRun: policy.rule.mode === 'dry-run',
          trigger: 'schedule',
          requestedBy: undefined,
        },
        now,
      );
    }
    return false;
  }

  /** Queues a usage refresh (the schedule's, or one asked for). */
  async createUsageRun(trigger: 'schedule' | 'request', requestedBy: string | undefined): Promise<RunRecord> {
    return this.deps.store.runs.create(
      { id: randomUUID(), kind: 'usage', policyId: undefined, policyName: usageSchedule, spec: undefined, dryRun: false, trigger, requestedBy },
      this.now(),
    );
  }

  /** Housekeeping (the runner's maintenance step). */
  async maintain(now: number): Promise<void> {
    const { store, logger, settings } = this.deps;
    if ((await store.schedule.get(usageSchedule)) === undefined) await store.schedule.set(usageSchedule, now);
    const runs = await store.runs.prune(now - settings.runRetentionMs);
    const pulls = await store.state.prunePulls();
    if (runs + pulls > 0) logger.info({ runs, pulls }, 'lifecycle: pruned old runs and last pulls of deleted manifests');
  }

  /** A retention run: every repository the rule selects, in name order, after where it stopped. */
  private async retain(item: RunningRun, signal: AbortSignal, offer: (progress: RetentionProgress) => void): Promise<void> {
    const { store, engine } = this.deps;
    const run = item.run;
    const rule: RetentionRule = retentionInput.parse(JSON.parse(run.spec ?? '{}'));
    const progress: RetentionProgress = run.progress === undefined ? emptyProgress() : (JSON.parse(run.progress) as RetentionProgress);
    const actor = { principalId: 'lifecycle', principalName: `retention:${rule.name}` };
    for (;;) {
      signal.throwIfAborted();
      const names = await store.state.repositories({ after: progress.cursor ?? undefined, limit: page });
      for (const repository of names) {
        signal.throwIfAborted();
        if (repositoryMatches(rule.repositories, repository)) {
          const plan = await engine.plan(rule, repository, this.now());
          if (plan) {
            const results = await engine.apply(plan, { dryRun: run.dryRun, actor, audit: { rule: rule.name, run: run.id }, signal });
            await store.runs.addActions(run.id, results, this.now());
            progress.repositories++;
            progress.candidates += plan.candidates;
            for (const r of results) {
              if (r.outcome === 'skipped') progress.skipped++;
              else if (r.action === 'delete') progress.deletedManifests++;
              else progress.untaggedTags += r.tags.length;
            }
          }
        }
        progress.cursor = repository;
        offer({ ...progress });
      }
      if (names.length < page) break;
    }
    offer({ ...progress });
  }
}
