/** The wire contract of server-side import (`/api/v1/import`, `/api/v1/imports…`, `berth import`). */

export type ImportStatus = 'queued' | 'running' | 'succeeded' | 'failed';
export const importStatuses: readonly ImportStatus[] = ['queued', 'running', 'succeeded', 'failed'];

export interface ImportProgressView {
  manifestsDone: number;
  manifestsTotal: number;
  blobsDone: number;
  blobsTotal: number;
  bytesDone: number;
  bytesTotal: number;
  /** Target repositories finished so far (the first one downloads; the others mostly link). */
  targetsDone: number;
  targetsTotal: number;
}

export interface ImportResultView {
  digest: string;
  mediaType: string;
  manifests: number;
  blobsCopied: number;
  blobsSkipped: number;
  bytesCopied: number;
}

/** What the API sends for a job. Credentials never appear; `credentials` says only where they come from. */
export interface ImportJobView {
  id: string;
  status: ImportStatus;
  source: { registry: string; repository: string; reference: string };
  targets: Array<{ repository: string; tags: string[] }>;
  mode: 'Force' | 'NoForce';
  includeReferrers: boolean;
  requestedBy: { id: string; name: string } | null;
  /** Runs since the job was last queued by a person. */
  attempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** For a queued job after a failed run: when it runs again. */
  retryAt: string | null;
  progress: ImportProgressView | null;
  result: ImportResultView | null;
  error: { code: string; message: string } | null;
  /** `request`: the request's own credentials are still stored; else the configured ones (or none) are used. */
  credentials: 'request' | 'server';
}
