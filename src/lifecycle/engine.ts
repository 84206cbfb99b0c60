/**
 * The retention engine: plans a rule for one repository from what the repository holds now
 * (`retention.ts`, the same function the preview calls) and carries a plan out through the registry's
 * own delete path, so a retention deletion writes the same `delete` webhook event (the outbox, in
 * the deletion's transaction) as a person's `DELETE /v2/…/manifests/…`, plus an audit entry. Blobs
 * are not touched: the manifests' references go, and the safe GC (`registry/gc.ts`) collects what
 * nothing references any more once its grace period has passed.
 *
 * Races with pushes and pulls: every deletion is conditional (`ManifestService.deleteIfUnchanged`):
 * it happens only if nothing was pushed to the manifest (or tag) since shortly before the plan was
 * made (`pushMarginMs`: clock skew and transaction time), a tag still points at the planned digest,
 * and no manifest lists the one to delete; checked inside the deletion's transaction, with the row
 * held on PostgreSQL. A dependent (a platform manifest, a signature) is deleted only after what it
 * goes with was. Anything else is `skipped` and reported, never deleted. Pulls never block a
 * deletion: the plan used the last pulls known when it was made.
 *
 * Used by retention runs (`runs.ts`), the preview (`service.ts`), and the pull-through cache's
 * last-pull eviction (a rule with `notPulledFor`).
 */
import type { ImmutabilityRule, RetentionRule } from '../api/lifecycle.js';
import type { AuditIndex } from '../metadata/auth-store.js';
import type { RepositoryStateIndex } from '../metadata/lifecycle-store.js';
import type { Pusher } from '../metadata/store.js';
import type { Metrics } from '../metrics/index.js';
import { parseDigest } from '../oci/digest.js';
import type { Registry } from '../registry/index.js';
import type { Clock } from '../shared/clock.js';
import { rulesFor } from './immutability.js';
import { planRepository, type PlannedAction, type RepositoryPlan, type RepositorySnapshot } from './retention.js';

export interface EngineSettings {
  /** The floor under every rule's `minimumAge`. */
  minimumAgeMs: number;
  /** See the module comment. */
  pushMarginMs: number;
}

/** One action as carried out: a deletion, a dry run's would-be deletion, or one skipped (with why). */
export interface ActionResult {
  repository: string;
  action: 'delete' | 'untag';
  digest: string;
  tags: string[];
  reason: string;
  outcome: 'deleted' | 'would-delete' | 'skipped';
  detail: string | undefined;
}

export interface ApplyOptions {
  dryRun: boolean;
  /** Who the deletions are made by (webhook events, audit): `retention:<rule>` for runs. */
  actor: Pusher;
  /** Detail the audit entries carry (the run, say). */
  audit?: Record<string, unknown>;
  signal?: AbortSignal | undefined;
}

export class RetentionEngine {
  private readonly deletions;

  constructor(
    private readonly deps: {
      registry: Registry;
      state: Pick<RepositoryStateIndex, 'snapshot'>;
      /** The immutability rules in force (their write-once tags are never removed). */
      immutability: () => Promise<ImmutabilityRule[]>;
      audit: Pick<AuditIndex, 'append'>;
      clock: Clock;
      settings: EngineSettings;
      metrics: Metrics;
    },
  ) {
    this.deletions = deps.metrics.counter('berth_lifecycle_retention_deletions_total', 'Manifests deleted and tags removed by retention runs.', ['action']);
  }

  /** The minimum age a rule gets: its own, but never less than the configured floor. */
  minimumAgeMs(rule: RetentionRule): number {
    return Math.max(this.deps.settings.minimumAgeMs, rule.minimumAge ?? 0);
  }

  /**
   * What `rule` does to `repository` now (undefined: the repository does not exist). Tags that an
   * enabled immutability rule makes write-once are never removed.
   */
  async plan(rule: RetentionRule, repository: string, now = this.deps.clock.now()): Promise<RepositoryPlan | undefined> {
    const snapshot = await this.snapshot(repository, now);
    if (!snapshot) return undefined;
    const immutability = (await this.deps.immutability()).filter((r) => r.immutable);
    const isProtectedTag = (tag: string) => rulesFor(immutability, repository, tag).length > 0;
    return planRepository(rule, snapshot, now, { minimumAgeMs: this.minimumAgeMs(rule), isProtectedTag });
  }

  /** The repository as the planner sees it. */
  async snapshot(repository: string, at: number): Promise<RepositorySnapshot | undefined> {
    const rows = await this.deps.state.snapshot(repository);
    if (!rows) return undefined;
    const children = new Map<string, string[]>();
    for (const { parent, child } of rows.children) {
      const list = children.get(parent);
      if (list) list.push(child);
      else children.set(parent, [child]);
    }
    const pulls = new Map(rows.pulls.map((p) => [p.digest, p.lastPulledAt]));
    return {
      repository,
      at,
      manifests: rows.manifests.map((m) => ({ ...m, children: children.get(m.digest) ?? [], lastPulledAt: pulls.get(m.digest) })),
      tags: rows.tags,
    };
  }

  /** Carries out a plan (see the module comment); the results in order. */
  async apply(plan: RepositoryPlan, options: ApplyOptions): Promise<ActionResult[]> {
    const { repository } = plan;
    const results: ActionResult[] = [];
    const deleted = new Set<string>();
    const unchangedSince = plan.snapshotAt - this.deps.settings.pushMarginMs;
    const change = { actor: options.actor };
    for (const action of plan.actions) {
      options.signal?.throwIfAborted();
      if (options.dryRun) {
        results.push(result(repository, action, action.tags, 'would-delete'));
        deleted.add(action.digest);
        continue;
      }
      if (action.action === 'untag') {
        for (const tag of action.tags) {
          const done = await this.deps.registry.manifests.deleteIfUnchanged(
            repository,
            { kind: 'tag', tag },
            { unchangedSince, digest: action.digest },
            change,
          );
          results.push(result(repository, action, [tag], done ? 'deleted' : 'skipped', done ? undefined : 'the tag was pushed again or moved since the plan'));
          if (done) await this.record(repository, action, [tag], options);
        }
        continue;
      }
      const kept = action.dependsOn.find((d) => !deleted.has(d));
      if (kept !== undefined) {
        results.push(result(repository, action, action.tags, 'skipped', `it goes with ${kept}, which was not deleted`));
        continue;
      }
      const done = await this.deps.registry.manifests.deleteIfUnchanged(
        repository,
        { kind: 'digest', digest: parseDigest(action.digest) },
        { unchangedSince, unreferenced: true },
        change,
      );
      if (done) {
        deleted.add(action.digest);
        await this.record(repository, action, action.tags, options);
      }
      results.push(
        result(repository, action, action.tags, done ? 'deleted' : 'skipped', done ? undefined : 'it was pushed, tagged or listed by an index since the plan'),
      );
    }
    return results;
  }

  private async record(repository: string, action: PlannedAction, tags: string[], options: ApplyOptions): Promise<void> {
    this.deletions.inc({ action: action.action });
    await this.deps.audit.append({
      at: this.deps.clock.now(),
      event: action.action === 'delete' ? 'lifecycle.retention.manifest_deleted' : 'lifecycle.retention.tag_deleted',
      principalId: options.actor.principalId,
      principalName: options.actor.principalName,
      clientAddress: 'internal',
      detail: { repository, digest: action.digest, tags, reason: action.reason, ...options.audit },
    });
  }
}

function result(repository: string, action: PlannedAction, tags: string[], outcome: ActionResult['outcome'], detail?: string): ActionResult {
  return { repository, action: action.action, digest: action.digest, tags, reason: action.reason, outcome, detail };
}
