/**
 * Import as jobs (ACR `importImage` semantics): a request becomes a stored job; a lease runner in
 * every process (`import.enabled`) claims jobs, copies with `copyImage` and records progress,
 * outcome and error (`import-jobs.ts`). Several replicas share the work through the database; a
 * job whose process died is taken over after its lease lapses and resumes where it stopped (blobs
 * already present are skipped, so a re-run transfers only what is missing).
 *
 * Contract:
 * - `plan` turns the ACR-shaped request into a normalised spec (or INVALID_REQUEST), so the
 *   caller can authorize on its target repositories before `submit` stores it.
 * - `submit` refuses a source the egress policy refuses (EGRESS_REFUSED) before storing anything.
 * - A run resolves the source reference to one digest first, then (NoForce) checks every target
 *   tag before copying anything, then copies into each target repository pinned to that digest.
 * - A source that is unreachable or overloaded (UPSTREAM_UNREACHABLE) is retried automatically
 *   up to `import.maxAttempts` runs with doubling delays; any other failure fails the job at once
 *   with the error's code and one-line message. A failed job runs again on `retry`.
 * - Source credentials from the request are used for that job only (see import-store.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { ImportJobView, ImportStatus } from '../api/imports.js';
import type { Config } from '../config/schema.js';
import type { AuditIndex } from '../metadata/auth-store.js';
import { LeaseRunner } from '../jobs/runner.js';
import type { Metrics } from '../metrics/index.js';
import type { ImportJobIndex, ImportJobRecord, ImportJobSpec, StoredCredentials } from '../metadata/import-store.js';
import { EgressRefused, type Egress } from '../net/egress.js';
import { ApiError } from '../api/errors.js';
import type { Registry } from '../registry/index.js';
import { normaliseRegistry, parseImageReference, parseRepositoryReference, referenceOf, registryBaseUrl, type ImageReference } from '../remote/reference.js';
import type { Actor } from '../shared/actor.js';
import type { Clock } from '../shared/clock.js';
import { ImportJobs, type ImportRunResult, type RunningImport } from './import-jobs.js';
import { importView } from './import-views.js';

export type ImportConfig = Config['import'];

/** The request body of `POST /api/v1/import`, as ACR's importImage takes it (validated by the handler's schema). */
export interface ImportRequest {
  source: {
    /** The source registry, HOST[:PORT] or a URL; absent: `sourceImage` names it (docker.io by default). */
    registryUri?: string | undefined;
    /** `repo:tag`, `repo@digest`, or with no `registryUri` a full reference. */
    sourceImage: string;
    credentials?: StoredCredentials | undefined;
  };
  /** `repo:tag` entries (a bare `repo` takes the source tag). */
  targetTags: readonly string[];
  untaggedTargetRepositories: readonly string[];
  mode: 'Force' | 'NoForce';
  includeReferrers: boolean;
}

/** Who asked: the principal (undefined with auth off) and whether it is an owner. */
export interface Requester {
  principal: { id: string; name: string } | undefined;
  owner: boolean;
}

export interface ImportServiceDependencies {
  /** Copies land here. */
  registry: Registry;
  jobs: ImportJobIndex;
  clock: Clock;
  /** Jobs created and retried through the API are audited with their actor. */
  audit: AuditIndex;
  egress: Egress;
  config: ImportConfig;
  /** The largest manifest a source may send (the registry's own limit). */
  maxManifestBytes: number;
  logger: Logger;
  /** Where the job runner counts runs and takeovers. */
  metrics?: Metrics | undefined;
}

const maxTargets = 50;
const maintenanceEveryMs = 60_000;

export class ImportService {
  private readonly runner: LeaseRunner<RunningImport, ImportRunResult>;

  constructor(private readonly deps: ImportServiceDependencies) {
    const { registry, jobs, clock, egress, config, logger, maxManifestBytes } = deps;
    const kind = new ImportJobs({ registry, jobs, clock, egress, config, logger, maxManifestBytes, sourceConfig: (name) => this.sourceConfig(name) });
    this.runner = new LeaseRunner(kind, {
      concurrency: config.concurrency,
      leaseMs: config.leaseMs,
      pollMs: config.pollIntervalMs,
      onStop: 'abort',
      clock,
      logger,
      maintenance: { everyMs: maintenanceEveryMs, run: (now) => kind.maintain(now) },
      metrics: deps.metrics,
    });
  }

  private get jobs(): ImportJobIndex {
    return this.deps.jobs;
  }

  private now(): number {
    return this.deps.clock.now();
  }

  /** Normalises an ACR-shaped request into a job spec; INVALID_REQUEST with a message naming the field otherwise. */
  plan(request: ImportRequest): ImportJobSpec {
    let source: ImageReference;
    if (request.source.registryUri !== undefined && request.source.registryUri.trim() !== '') {
      const registry = normaliseRegistry(
        request.source.registryUri
          .trim()
          .replace(/^https?:\/\//i, '')
          .replace(/\/+$/, ''),
      );
      source = { registry, ...parseRepositoryReference(request.source.sourceImage, request.source.sourceImage) };
      if (registry === 'docker.io' && !source.repository.includes('/')) source.repository = `library/${source.repository}`;
    } else {
      source = parseImageReference(request.source.sourceImage);
    }
    const configured = this.sourceConfig(source.registry);
    const url =
      configured?.url ??
      (request.source.registryUri && /^https?:\/\//i.test(request.source.registryUri)
        ? registryBaseUrl(request.source.registryUri)
        : registryBaseUrl(source.registry));

    const targets = new Map<string, Set<string>>();
    const add = (repository: string, tag: string | undefined): void => {
      const tags = targets.get(repository) ?? new Set<string>();
      if (tag !== undefined) tags.add(tag);
      targets.set(repository, tags);
    };
    for (const entry of request.targetTags) {
      const target = parseRepositoryReference(entry, entry);
      if (target.digest !== undefined)
        throw new ApiError(
          'INVALID_REQUEST',
          `targetTags: ${JSON.stringify(entry.slice(0, 300))} names a digest; give repo:tag, or the repository in untaggedTargetRepositories`,
        );
      const tag = target.tag ?? source.tag;
      if (tag === undefined)
        throw new ApiError('INVALID_REQUEST', `targetTags: ${JSON.stringify(entry.slice(0, 300))} has no tag and the source is a digest: give repo:tag`);
      add(target.repository, tag);
    }
    for (const entry of request.untaggedTargetRepositories) {
      const target = parseRepositoryReference(entry, entry);
      if (target.tag !== undefined || target.digest !== undefined)
        throw new ApiError('INVALID_REQUEST', `untaggedTargetRepositories: ${JSON.stringify(entry.slice(0, 300))} must be a repository name only`);
      add(target.repository, undefined);
    }
    // ACR's default: the source's repository and tag.
    if (targets.size === 0) add(source.repository, source.digest === undefined ? (source.tag ?? 'latest') : source.tag);
    if (targets.size > maxTargets) throw new ApiError('INVALID_REQUEST', `at most ${maxTargets} target repositories per import`);
    return {
      source: { registry: source.registry, url, repository: source.repository, reference: referenceOf(source) },
      targets: [...targets].map(([repository, tags]) => ({ repository, tags: [...tags].sort() })),
      force: request.mode === 'Force',
      includeReferrers: request.includeReferrers,
    };
  }

  /**
   * Stores the job (after the egress check on its source) and starts it if this process runs jobs.
   * `actor` (undefined with auth off) is named in the audit entry.
   */
  async submit(actor: Actor | undefined, spec: ImportJobSpec, requester: Requester, credentials: StoredCredentials | undefined): Promise<ImportJobView> {
    await this.checkEgress(spec.source.url);
    const job = await this.jobs.create({ id: randomUUID(), spec, requestedBy: requester.principal, credentials }, this.now());
    this.deps.logger.info(
      {
        job: job.id,
        source: `${spec.source.registry}/${spec.source.repository}`,
        reference: spec.source.reference,
        targets: spec.targets.map((t) => t.repository),
        by: requester.principal?.name,
      },
      'import queued',
    );
    this.wake();
    if (actor) {
      await this.audit(actor, 'import.created', {
        job: job.id,
        source: `${spec.source.registry}/${spec.source.repository}`,
        reference: spec.source.reference,
        targets: spec.targets,
        mode: spec.force ? 'Force' : 'NoForce',
      });
    }
    return importView(job);
  }

  /**
   * Rule: a job is visible to owners and to the principal that created it; to anyone else it does
   * not exist (404 IMPORT_UNKNOWN, like an id that names no job).
   */
  async visibleJob(id: string, requester: Requester): Promise<ImportJobRecord> {
    const job = /^[0-9a-f-]{36}$/.test(id) ? await this.jobs.get(id) : undefined;
    if (!job || (!requester.owner && job.requestedBy?.id !== requester.principal?.id)) {
      throw new ApiError('IMPORT_UNKNOWN', `no import job ${JSON.stringify(id.slice(0, 64))}`);
    }
    return job;
  }

  view(job: ImportJobRecord): ImportJobView {
    return importView(job);
  }

  /** Jobs, newest first: every job for an owner, else the requester's own. */
  async list(requester: Requester, filter: { status?: ImportStatus | undefined; limit: number }): Promise<ImportJobView[]> {
    const jobs = await this.jobs.list({ ...filter, requestedBy: requester.owner ? undefined : requester.principal?.id });
    return jobs.map(importView);
  }

  /** Queues a failed job again (IMPORT_STATE unless it failed); new credentials replace stored ones. */
  async retry(actor: Actor | undefined, id: string, credentials: StoredCredentials | undefined): Promise<ImportJobView> {
    const job = await this.jobs.get(id);
    if (!job) throw new ApiError('IMPORT_UNKNOWN', `no import job ${JSON.stringify(id.slice(0, 64))}`);
    await this.checkEgress(job.spec.source.url);
    if (!(await this.jobs.requeue(id, this.now(), credentials))) {
      throw new ApiError('IMPORT_STATE', `import ${id} is ${job.status}: only a failed import can be retried`);
    }
    this.wake();
    if (actor) await this.audit(actor, 'import.retried', { job: id });
    return importView((await this.jobs.get(id)) as ImportJobRecord);
  }

  private async audit(actor: Actor, event: string, detail: Record<string, unknown>): Promise<void> {
    await this.deps.audit.append({ at: this.now(), event, ...actor, detail });
  }

  /** Starts the runner (no-op with `import.enabled: false`). */

  /** Starts the runner (no-op with `import.enabled: false`). */
  start(): void {
    if (this.deps.config.enabled) this.runner.start();
  }

  /** Stops claiming; running jobs are interrupted and handed back to the queue (another runner resumes them). */
  stop(): Promise<void> {
    return this.runner.stop();
  }

  /** Looks for work now (after a submit or a retry; the runner also polls). */
  wake(): void {
    this.runner.wake();
  }

  private sourceConfig(registry: string): ImportConfig['sources'][number] | undefined {
    return this.deps.config.sources.find((s) => {
      try {
        return normaliseRegistry(s.registry) === registry;
      } catch {
        return false;
      }
    });
  }

  private async checkEgress(url: string): Promise<void> {
    try {
      await this.deps.egress.check(url);
    } catch (err) {
      if (err instanceof EgressRefused) {
        throw new ApiError('EGRESS_REFUSED', `import source: ${err.message}`);
      }
      throw err;
    }
  }
}
