/**
 * Import as jobs (ACR `importImage` semantics): a request becomes a stored job; a runner in every
 * process (`import.enabled`) claims jobs by lease, copies with `copyImage` and records progress,
 * outcome and error. Several replicas share the work through the database; a job whose process
 * died is taken over after its lease lapses and resumes where it stopped (blobs already present
 * are skipped, so a re-run transfers only what is missing).
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
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { ImportJobView, ImportStatus } from '../api/imports.js';
import type { Config } from '../config/schema.js';
import type { AuditIndex } from '../metadata/auth-store.js';
import type {
  ClaimedImportJob,
  ImportJobIndex,
  ImportJobRecord,
  ImportJobSpec,
  ImportProgress,
  ImportResult,
  StoredCredentials,
} from '../metadata/import-store.js';
import type { Pusher } from '../metadata/store.js';
import { EgressRefused, type Egress } from '../net/egress.js';
import { RegistryError, isRegistryError } from '../oci/errors.js';
import type { Registry } from '../registry/index.js';
import { RemoteRegistry, type RemoteCredentials } from '../remote/client.js';
import { RequestLimiter } from '../remote/limiter.js';
import { normaliseRegistry, parseImageReference, parseRepositoryReference, referenceOf, registryBaseUrl, type ImageReference } from '../remote/reference.js';
import type { Actor } from '../shared/actor.js';
import type { Clock } from '../shared/clock.js';
import { assertTagsFree, copyImage } from './copy.js';
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
}

const maxTargets = 50;
const maintenanceEveryMs = 60_000;

/** Error codes worth another automatic run: the source may come back. */
const transientCodes: ReadonlySet<string> = new Set(['UPSTREAM_UNREACHABLE']);

class LeaseLost extends Error {}
class ShuttingDown extends Error {}

export class ImportService {
  private readonly worker = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly running = new Map<string, { controller: AbortController; done: Promise<void> }>();
  /** One request limiter per source registry, shared by the jobs of this process. */
  private readonly limiters = new Map<string, RequestLimiter>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private again = false;
  private started = false;
  private lastMaintenance = 0;

  constructor(private readonly deps: ImportServiceDependencies) {}

  private get jobs(): ImportJobIndex {
    return this.deps.jobs;
  }

  private now(): number {
    return this.deps.clock.now();
  }

  /** Normalises an ACR-shaped request into a job spec; INVALID_REQUEST with a message naming the field otherwise. */
  plan(request: ImportRequest, requester: Requester): ImportJobSpec {
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
        throw new RegistryError(
          'INVALID_REQUEST',
          `targetTags: ${JSON.stringify(entry.slice(0, 300))} names a digest; give repo:tag, or the repository in untaggedTargetRepositories`,
        );
      const tag = target.tag ?? source.tag;
      if (tag === undefined)
        throw new RegistryError('INVALID_REQUEST', `targetTags: ${JSON.stringify(entry.slice(0, 300))} has no tag and the source is a digest: give repo:tag`);
      add(target.repository, tag);
    }
    for (const entry of request.untaggedTargetRepositories) {
      const target = parseRepositoryReference(entry, entry);
      if (target.tag !== undefined || target.digest !== undefined)
        throw new RegistryError('INVALID_REQUEST', `untaggedTargetRepositories: ${JSON.stringify(entry.slice(0, 300))} must be a repository name only`);
      add(target.repository, undefined);
    }
    // ACR's default: the source's repository and tag.
    if (targets.size === 0) add(source.repository, source.digest === undefined ? (source.tag ?? 'latest') : source.tag);
    if (targets.size > maxTargets) throw new RegistryError('INVALID_REQUEST', `at most ${maxTargets} target repositories per import`);
    return {
      source: { registry: source.registry, url, repository: source.repository, reference: referenceOf(source) },
      targets: [...targets].map(([repository, tags]) => ({ repository, tags: [...tags].sort() })),
      force: request.mode === 'Force',
      includeReferrers: request.includeReferrers,
      linkStoredBlobs: requester.owner,
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
      throw new RegistryError('IMPORT_UNKNOWN', `no import job ${JSON.stringify(id.slice(0, 64))}`);
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
    if (!job) throw new RegistryError('IMPORT_UNKNOWN', `no import job ${JSON.stringify(id.slice(0, 64))}`);
    await this.checkEgress(job.spec.source.url);
    if (!(await this.jobs.requeue(id, this.now(), credentials))) {
      throw new RegistryError('IMPORT_STATE', `import ${id} is ${job.status}: only a failed import can be retried`);
    }
    this.wake();
    if (actor) await this.audit(actor, 'import.retried', { job: id });
    return importView((await this.jobs.get(id)) as ImportJobRecord);
  }

  private async audit(actor: Actor, event: string, detail: Record<string, unknown>): Promise<void> {
    await this.deps.audit.append({ at: this.now(), event, ...actor, detail });
  }

  /** Starts the runner (no-op with `import.enabled: false`). */
  start(): void {
    if (!this.deps.config.enabled || this.started) return;
    this.started = true;
    this.timer = setInterval(() => this.wake(), this.deps.config.pollIntervalMs);
    this.timer.unref();
    this.wake();
  }

  /** Stops claiming; running jobs are interrupted and handed back to the queue (another runner resumes them). */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const running = [...this.running.values()];
    for (const { controller } of running) controller.abort(new ShuttingDown('server is stopping'));
    await Promise.allSettled(running.map((r) => r.done));
  }

  /** Looks for work now (after a submit, a finished job, or on the poll interval). */
  wake(): void {
    if (!this.started) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = true;
    void this.tick()
      .catch((err: unknown) => this.deps.logger.error({ err }, 'import runner failed to claim jobs'))
      .finally(() => {
        this.ticking = false;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  private async tick(): Promise<void> {
    const now = this.now();
    if (now - this.lastMaintenance >= maintenanceEveryMs) {
      this.lastMaintenance = now;
      const forgotten = await this.jobs.expireCredentials(now - this.deps.config.credentialRetentionMs);
      const pruned = await this.jobs.prune(now - this.deps.config.retentionMs);
      if (forgotten + pruned > 0) this.deps.logger.info({ forgotten, pruned }, 'import jobs: expired source credentials and old jobs');
    }
    const free = this.deps.config.concurrency - this.running.size;
    if (free <= 0 || !this.started) return;
    for (const job of await this.jobs.claim(this.worker, now, this.deps.config.leaseMs, free)) {
      const controller = new AbortController();
      const done = this.run(job, controller).finally(() => {
        this.running.delete(job.id);
        this.wake();
      });
      this.running.set(job.id, { controller, done });
    }
  }

  private async run(job: ClaimedImportJob, controller: AbortController): Promise<void> {
    const { config, logger } = this.deps;
    const log = logger.child({ job: job.id });
    if (job.attempts > config.maxAttempts) {
      // Claimed again after its lease lapsed more often than it may run: its process keeps dying.
      await this.jobs.finish(
        job.id,
        this.worker,
        {
          status: 'failed',
          error: { code: 'INTERRUPTED', message: `the import was interrupted ${job.attempts - 1} times (its server stopped while it ran): retry it` },
        },
        this.now(),
      );
      return;
    }
    let progress: ImportProgress | undefined = job.progress;
    let dirty = false;
    const beat = setInterval(
      () => {
        const snapshot = dirty ? progress : undefined;
        dirty = false;
        this.jobs.heartbeat(job.id, this.worker, this.now(), config.leaseMs, snapshot).then(
          (held) => held || controller.abort(new LeaseLost('another runner took the job over')),
          (err: unknown) => log.warn({ err }, 'import heartbeat failed'),
        );
      },
      Math.max(50, Math.min(1000, Math.floor(config.leaseMs / 3))),
    );
    beat.unref();
    log.info({ attempt: job.attempts }, 'import started');
    try {
      const result = await this.execute(job, controller.signal, (p) => {
        progress = p;
        dirty = true;
      });
      clearInterval(beat);
      await this.jobs.heartbeat(job.id, this.worker, this.now(), config.leaseMs, progress);
      await this.jobs.finish(job.id, this.worker, { status: 'succeeded', result }, this.now());
      log.info(
        { digest: result.digest, blobsCopied: result.blobsCopied, blobsSkipped: result.blobsSkipped, bytesCopied: result.bytesCopied },
        'import succeeded',
      );
    } catch (err) {
      clearInterval(beat);
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
      if (reason instanceof LeaseLost) {
        log.warn('import lease lost; another runner continues the job');
        return;
      }
      if (reason instanceof ShuttingDown) {
        if (progress) await this.jobs.heartbeat(job.id, this.worker, this.now(), config.leaseMs, progress).catch(() => false);
        await this.jobs.release(job.id, this.worker, this.now());
        log.info('import interrupted by shutdown; queued again');
        return;
      }
      const error = isRegistryError(err)
        ? { code: err.code, message: err.message }
        : { code: 'INTERNAL', message: 'internal error while importing: see the server log' };
      if (!isRegistryError(err)) log.error({ err }, 'import failed with an internal error');
      if (progress) await this.jobs.heartbeat(job.id, this.worker, this.now(), config.leaseMs, progress).catch(() => false);
      if (transientCodes.has(error.code) && job.attempts < config.maxAttempts) {
        const notBefore = this.now() + config.retryDelayMs * 2 ** (job.attempts - 1);
        await this.jobs.finish(job.id, this.worker, { status: 'queued', error, notBefore }, this.now());
        log.warn({ code: error.code, message: error.message, retryAt: new Date(notBefore).toISOString() }, 'import failed; will retry');
      } else {
        await this.jobs.finish(job.id, this.worker, { status: 'failed', error }, this.now());
        log.warn({ code: error.code, message: error.message }, 'import failed');
      }
    }
  }

  /** One run: resolve to a digest, check every target tag (NoForce), copy into each target. */
  private async execute(job: ClaimedImportJob, signal: AbortSignal, onProgress: (p: ImportProgress) => void): Promise<ImportResult> {
    const { spec } = job;
    const source = await this.remote(job);
    const resolved = await source.resolve(spec.source.repository, spec.source.reference, signal);
    if (!resolved) {
      throw new RegistryError(
        'UPSTREAM_NOT_FOUND',
        `${spec.source.registry}/${spec.source.repository}${spec.source.reference.includes(':') ? '@' : ':'}${spec.source.reference} does not exist on the source: check the repository and tag`,
      );
    }
    if (!spec.force) {
      for (const target of spec.targets) await assertTagsFree(this.deps.registry, target.repository, target.tags, resolved.digest);
    }
    const pusher: Pusher | undefined = job.requestedBy && {
      principalId: job.requestedBy.id,
      principalName: job.requestedBy.name,
      provenance: { import: { job: job.id, source: `${spec.source.registry}/${spec.source.repository}@${resolved.digest}` } },
    };
    const total: ImportResult = { digest: resolved.digest, mediaType: resolved.mediaType, manifests: 0, blobsCopied: 0, blobsSkipped: 0, bytesCopied: 0 };
    let targetsDone = 0;
    for (const target of spec.targets) {
      const result = await copyImage(this.deps.registry, {
        source,
        sourceRepository: spec.source.repository,
        reference: resolved.digest,
        targetRepository: target.repository,
        targetTags: target.tags,
        includeReferrers: spec.includeReferrers,
        force: spec.force,
        signal,
        linkStoredBlobs: spec.linkStoredBlobs,
        concurrency: this.deps.config.blobConcurrency,
        ...(pusher ? { pusher } : {}),
        onProgress: (p) => onProgress({ ...p, targetsDone, targetsTotal: spec.targets.length }),
      });
      targetsDone++;
      total.mediaType = result.mediaType;
      total.manifests = Math.max(total.manifests, result.manifests);
      total.blobsCopied += result.blobsCopied;
      total.blobsSkipped += result.blobsSkipped;
      total.bytesCopied += result.bytesCopied;
    }
    return total;
  }

  /** The client for a job's source: the request's credentials, else the configured ones, else anonymous. */
  private async remote(job: ClaimedImportJob): Promise<RemoteRegistry> {
    const { config, egress, logger } = this.deps;
    const configured = this.sourceConfig(job.spec.source.registry);
    let credentials: RemoteCredentials = { kind: 'anonymous' };
    if (job.credentials) {
      credentials = { kind: 'basic', username: job.credentials.username, password: job.credentials.password };
    } else if (configured?.username !== undefined && configured.passwordFile !== undefined) {
      let password: string;
      try {
        password = (await readFile(configured.passwordFile, 'utf8')).trim();
      } catch (err) {
        throw new RegistryError(
          'UPSTREAM_DENIED',
          `cannot read import.sources passwordFile for ${configured.registry} (${(err as NodeJS.ErrnoException).code ?? 'error'}): fix the server configuration`,
        );
      }
      credentials = { kind: 'basic', username: configured.username, password };
    } else if (configured?.clientId !== undefined && configured.tokenFile !== undefined) {
      credentials = { kind: 'oidc', clientId: configured.clientId, tokenFile: configured.tokenFile };
    }
    let limiter = this.limiters.get(job.spec.source.registry);
    if (!limiter) {
      limiter = new RequestLimiter({
        requestsPerSecond: configured?.requestsPerSecond ?? config.defaults.requestsPerSecond,
        concurrency: configured?.concurrency ?? config.defaults.concurrency,
      });
      this.limiters.set(job.spec.source.registry, limiter);
    }
    return new RemoteRegistry({
      baseUrl: job.spec.source.url,
      credentials,
      egress,
      limiter,
      logger,
      userAgent: 'berth-import',
      retries: { attempts: config.defaults.retries },
      timeouts: { headersMs: config.defaults.headersTimeoutMs, bodyMs: config.defaults.bodyTimeoutMs },
      maxManifestBytes: this.deps.maxManifestBytes,
    });
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
        throw new RegistryError('EGRESS_REFUSED', `import source: ${err.message}`);
      }
      throw err;
    }
  }
}
