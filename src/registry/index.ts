/**
 * The registry's domain services, built from one context. The context (storage, metadata, clock)
 * stays inside: callers reach the registry through these services only.
 */
import { BlobService } from './blobs.js';
import type { RegistryContext, RegistryLimits } from './context.js';
import { collectGarbage, type GcOptions, type GcReport } from './gc.js';
import { ManifestService } from './manifests.js';
import { RegistryReads } from './reads.js';
import { UploadService } from './uploads.js';

export type { GcOptions, GcReport, RegistryLimits };
export type { Pusher } from '../metadata/store.js';
export type { ChangeContext, RequestInfo } from './changes.js';
export type { MissingAllowance, PutManifestOptions, PutManifestResult } from './manifests.js';
export type { SparsePolicy } from './context.js';
export type { CompanionManifest, PendingPush, PullGate, PushHook } from './push-hooks.js';
export type { DeleteExpectation } from '../metadata/store.js';
export type { ManifestPushDecision, PendingBlob, PendingManifest, PullRecorder, PushPolicy } from './policy-hooks.js';

export interface Registry {
  /** The configured limits (the manifest size a request body may have, the upload TTL). */
  readonly limits: RegistryLimits;
  blobs: BlobService;
  uploads: UploadService;
  manifests: ManifestService;
  /** Listings: catalog, tags, referrers, push history. */
  reads: RegistryReads;
  /** Removes unreferenced blobs and abandoned uploads (see gc.ts for why it is safe while serving). */
  collectGarbage(options: GcOptions): Promise<GcReport>;
}

export function createRegistry(context: RegistryContext): Registry {
  const uploads = new UploadService(context);
  return {
    limits: context.limits,
    blobs: new BlobService(context),
    uploads,
    manifests: new ManifestService(context, uploads),
    reads: new RegistryReads(context),
    collectGarbage: (options) => collectGarbage(context, uploads, options),
  };
}
