/**
 * Running import jobs: the job kind the lease runner (`jobs/runner.ts`) drives in every process with
 * `import.enabled`. The runner claims jobs, renews their leases, aborts a run when the server stops
 * or the lease is lost, and calls `release` once per claimed job; this file says what a run does and
 * how each outcome is recorded.
 *
 * Outcomes:
 * - copied: the result is recorded and the job `succeeded` (its request credentials are dropped).
 * - failed with a transient code (UPSTREAM_UNREACHABLE) and runs left: queued again after
 *   `import.retryDelayMs`, doubled per run; any other failure: `failed` with the error's code and
 *   one-line message (INTERNAL, with the cause in the log, for anything but a RegistryError).
 * - stopped (the server shuts down): handed back to the queue with its progress, the run not
 *   counted, so the next runner resumes it.
 * - lease lost: nothing is written; the runner that holds the job now continues it.
 * - claimed more often than `import.maxAttempts` (its process kept dying): `failed`, INTERRUPTED.
 * Progress is saved at most every second while a run copies, and once more before its outcome.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { JobKind, Lease, Outcome } from '../jobs/runner.js';
import { ThrottledSave } from '../jobs/throttle.js';
import type { ClaimedImportJob, ImportJobIndex, ImportProgress, ImportResult } from '../metadata/import-store.js';
import type { Pusher } from '../metadata/store.js';
import type { Egress } from '../net/egress.js';
import { isCodedError } from '../shared/coded-error.js';
import { ApiError } from '../api/errors.js';
import type { Registry } from '../registry/index.js';
import { RemoteRegistry, type RemoteCredentials } from '../remote/client.js';
import { RequestLimiter } from '../remote/limiter.js';
import type { Clock } from '../shared/clock.js';
import { assertTagsFree, copyImage } from './copy.js';

type ImportConfig = Config['import'];

/** Error codes worth another automatic run: the source may come back. */
const transientCodes: ReadonlySet<string> = new Set(['UPSTREAM_UNREACHABLE']);
/** How often a running job's progress is written (at most). */
const progressEveryMs = 1000;

export interface ImportJobsDependencies {
  registry: Registry;
  jobs: ImportJobIndex;
  clock: Clock;
  /** The largest manifest a source may send (the registry's own limit). */
  maxManifestBytes: number;
  egress: Egress;
  config: ImportConfig;
  logger: Logger;
  /** The `import.sources` entry for a source registry, if one is configured. */
  sourceConfig(registry: string): ImportConfig['sources'][number] | undefined;
}

/** A claimed job while it runs: the job and its progress, saved as it changes. */
export interface RunningImport {
  job: ClaimedImportJob;
  progress: ThrottledSave<ImportProgress>;
}

/** What a run returns: the copy's result, or that the job may not run again. */
export type ImportRunResult = { kind: 'copied'; result: ImportResult } | { kind: 'interrupted' };

export class ImportJobs implements JobKind<RunningImport, ImportRunResult> {
  readonly name = 'import job';
  /** One request limiter per source registry, shared by the jobs of this process. */
  private readonly limiters = new Map<string, RequestLimiter>();

  constructor(private readonly deps: ImportJobsDependencies) {}

  private get jobs(): ImportJobIndex {
    return this.deps.jobs;
  }

  private now(): number {
    return this.deps.clock.now();
  }

  key(item: RunningImport): string {
    return item.job.id;
  }

  async claim(limit: number, lease: Lease): Promise<RunningImport[]> {
    const claimed = await this.jobs.claim({ ...lease, limit });
    return claimed.map((job) => ({
      job,
      progress: new ThrottledSave<ImportProgress>(
        (progress) => this.jobs.saveProgress(job.id, lease.owner, progress, this.now()),
        progressEveryMs,
        (err) => this.deps.logger.warn({ err, job: job.id }, 'could not save import progress'),
      ),
    }));
  }

  renew(item: RunningImport, lease: Lease): Promise<boolean> {
    return this.jobs.renew(item.job.id, lease);
  }

  /** Expires request credentials and deletes old jobs (the runner's maintenance). */
  async maintain(now: number): Promise<void> {
    const { config, logger } = this.deps;
    const forgotten = await this.jobs.expireCredentials(now - config.credentialRetentionMs);
    const pruned = await this.jobs.prune(now - config.retentionMs);
    if (forgotten + pruned > 0) logger.info({ forgotten, pruned }, 'import jobs: expired source credentials and old jobs');
  }

  async run({ job, progress }: RunningImport, signal: AbortSignal): Promise<ImportRunResult> {
    // Claimed again after its lease lapsed more often than it may run: its process keeps dying.
    if (job.attempts > this.deps.config.maxAttempts) return { kind: 'interrupted' };
    this.deps.logger.child({ job: job.id }).info({ attempt: job.attempts }, 'import started');
    return { kind: 'copied', result: await this.execute(job, signal, (p) => progress.offer(p)) };
  }

  async release({ job, progress }: RunningImport, outcome: Outcome<ImportRunResult>, owner: string): Promise<void> {
    const { config } = this.deps;
    const log = this.deps.logger.child({ job: job.id });
    if (outcome.status === 'aborted' && outcome.reason === 'lease-lost') {
      await progress.close();
      log.warn('import lease lost; another runner continues the job');
      return;
    }
    await progress.flush();
    if (outcome.status === 'aborted') {
      await this.jobs.release(job.id, owner, this.now());
      log.info('import interrupted by shutdown; queued again');
      return;
    }
    if (outcome.status === 'done' && outcome.value.kind === 'interrupted') {
      const message = `the import was interrupted ${job.attempts - 1} times (its server stopped while it ran): retry it`;
      await this.jobs.finish(job.id, owner, { status: 'failed', error: { code: 'INTERRUPTED', message } }, this.now());
      return;
    }
    if (outcome.status === 'done' && outcome.value.kind === 'copied') {
      const { result } = outcome.value;
      await this.jobs.finish(job.id, owner, { status: 'succeeded', result }, this.now());
      log.info(
        { digest: result.digest, blobsCopied: result.blobsCopied, blobsSkipped: result.blobsSkipped, bytesCopied: result.bytesCopied },
        'import succeeded',
      );
      return;
    }
    const err = outcome.status === 'failed' ? outcome.error : undefined;
    const error = isCodedError(err)
      ? { code: err.code, message: err.message }
      : { code: 'INTERNAL', message: 'internal error while importing: see the server log' };
    if (!isCodedError(err)) log.error({ err }, 'import failed with an internal error');
    if (transientCodes.has(error.code) && job.attempts < config.maxAttempts) {
      const notBefore = this.now() + config.retryDelayMs * 2 ** (job.attempts - 1);
      await this.jobs.finish(job.id, owner, { status: 'queued', error, notBefore }, this.now());
      log.warn({ code: error.code, message: error.message, retryAt: new Date(notBefore).toISOString() }, 'import failed; will retry');
    } else {
      await this.jobs.finish(job.id, owner, { status: 'failed', error }, this.now());
      log.warn({ code: error.code, message: error.message }, 'import failed');
    }
  }

  /** One run: resolve to a digest, check every target tag (NoForce), copy into each target. */
  private async execute(job: ClaimedImportJob, signal: AbortSignal, onProgress: (p: ImportProgress) => void): Promise<ImportResult> {
    const { spec } = job;
    const source = await this.remote(job);
    const resolved = await source.resolve(spec.source.repository, spec.source.reference, signal);
    if (!resolved) {
      throw new ApiError(
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
    // Blobs downloaded and hashed for one target are linked into the next without another download.
    const verifiedBlobs = new Set<string>();
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
        verifiedBlobs,
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
    const configured = this.deps.sourceConfig(job.spec.source.registry);
    let credentials: RemoteCredentials = { kind: 'anonymous' };
    if (job.credentials) {
      credentials = { kind: 'basic', username: job.credentials.username, password: job.credentials.password };
    } else if (configured?.username !== undefined && configured.passwordFile !== undefined) {
      let password: string;
      try {
        password = (await readFile(configured.passwordFile, 'utf8')).trim();
      } catch (err) {
        throw new ApiError(
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
}
