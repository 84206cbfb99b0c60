/**
 * Import jobs (`POST /api/v1/import`): what to copy, who asked, and how far it got. Several
 * replicas share the table; a job runs in exactly one of them at a time, by lease: `claim` takes
 * runnable jobs in one conditional update per row, a running job extends its lease with
 * `renew`, and a job whose lease lapsed (its process died) becomes claimable again.
 *
 * Contract: times are injected milliseconds. Source credentials given with a request are kept
 * only for the job's own (re)runs: `finish` drops them when the job succeeds, and
 * `expireCredentials` drops them from jobs that ended long enough ago. They are returned only by
 * `claim`, never by `get` or `list`.
 */
import type { ClaimRequest, Lease } from '../shared/lease.js';

export type ImportStatus = 'queued' | 'running' | 'succeeded' | 'failed';

/** What an import copies, validated and normalised by the import service before it is stored. */
export interface ImportJobSpec {
  source: {
    /** host[:port] as the user named it (normalised; `docker.io` for Docker Hub). */
    registry: string;
    /** The base URL requests go to. */
    url: string;
    repository: string;
    /** Tag or digest. */
    reference: string;
  };
  /** Every target repository with the tags to set there (empty: by digest only). */
  targets: Array<{ repository: string; tags: string[] }>;
  /** ACR `mode`: true for `Force`. */
  force: boolean;
  includeReferrers: boolean;
}

/** Source credentials given with the request (Basic, or the Docker token-auth login). */
export interface StoredCredentials {
  username: string;
  password: string;
}

/** How far one image copy got (replication's CopyProgress). */
export interface TransferProgress {
  manifestsDone: number;
  manifestsTotal: number;
  blobsDone: number;
  blobsTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

/** The copy's progress plus targets. */
export interface ImportProgress extends TransferProgress {
  /** Target repositories finished so far (the first one downloads; the others mostly link). */
  targetsDone: number;
  targetsTotal: number;
}

export interface ImportResult {
  digest: string;
  mediaType: string;
  manifests: number;
  blobsCopied: number;
  blobsSkipped: number;
  bytesCopied: number;
}

export interface ImportJobRecord {
  id: string;
  status: ImportStatus;
  spec: ImportJobSpec;
  requestedBy: { id: string; name: string } | undefined;
  /** Runs started since the job was last queued by a person (automatic retries and crash recoveries count). */
  attempts: number;
  /** A queued job does not start before this. */
  notBefore: number;
  createdAt: number;
  updatedAt: number;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  progress: ImportProgress | undefined;
  result: ImportResult | undefined;
  error: { code: string; message: string } | undefined;
  /** Whether the request's own source credentials are still stored (never the credentials themselves). */
  hasCredentials: boolean;
}

export interface ClaimedImportJob extends ImportJobRecord {
  credentials: StoredCredentials | undefined;
}

export interface NewImportJob {
  id: string;
  spec: ImportJobSpec;
  requestedBy: { id: string; name: string } | undefined;
  credentials: StoredCredentials | undefined;
}

export type ImportOutcome =
  | { status: 'succeeded'; result: ImportResult }
  | { status: 'failed'; error: { code: string; message: string } }
  /** Queued again for an automatic retry, not before `notBefore`; the error stays visible meanwhile. */
  | { status: 'queued'; error: { code: string; message: string }; notBefore: number };

export interface ImportJobIndex {
  create(job: NewImportJob, now: number): Promise<ImportJobRecord>;
  get(id: string): Promise<ImportJobRecord | undefined>;
  /** Newest first; `requestedBy` narrows to one principal's jobs, `status` to one state. */
  list(filter: { requestedBy?: string | undefined; status?: ImportStatus | undefined; limit: number }): Promise<ImportJobRecord[]>;
  /**
   * Claims up to `limit` runnable jobs for `owner` until `until`, oldest first: queued ones due by
   * `now`, and running ones whose lease has lapsed. Each claim is one conditional update, so two
   * owners never hold the same job. Increments `attempts`.
   */
  claim(request: ClaimRequest): Promise<ClaimedImportJob[]>;
  /** Extends the lease; false if `lease.owner` no longer holds the job (it must stop). */
  renew(id: string, lease: Lease): Promise<boolean>;
  /** Records how far the holder's run got; false if `owner` no longer holds the job. */
  saveProgress(id: string, owner: string, progress: ImportProgress, now: number): Promise<boolean>;
  /** Records the outcome of `worker`'s run and releases the lease; false if it no longer held it. */
  finish(id: string, worker: string, outcome: ImportOutcome, now: number): Promise<boolean>;
  /** Gives up `worker`'s claim without an outcome (shutdown): the job is queued again at once. */
  release(id: string, worker: string, now: number): Promise<boolean>;
  /**
   * A failed job queued again by a person (attempts reset), optionally with new source
   * credentials; false unless it was `failed`.
   */
  requeue(id: string, now: number, credentials: StoredCredentials | undefined): Promise<boolean>;
  /** Forgets the source credentials of jobs that ended before `cutoff`; returns how many. */
  expireCredentials(cutoff: number): Promise<number>;
  /** Deletes jobs that ended before `cutoff`; returns how many. */
  prune(cutoff: number): Promise<number>;
}
