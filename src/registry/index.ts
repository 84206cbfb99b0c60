/** The registry's domain services, built from one context. */
import { BlobService } from './blobs.js';
import type { RegistryContext } from './context.js';
import { ManifestService } from './manifests.js';
import { RegistryReads } from './reads.js';
import { UploadService } from './uploads.js';

export interface Registry {
  context: RegistryContext;
  blobs: BlobService;
  uploads: UploadService;
  manifests: ManifestService;
  /** Listings: catalog, tags, referrers, push history. */
  reads: RegistryReads;
}

export function createRegistry(context: RegistryContext): Registry {
  return {
    context,
    blobs: new BlobService(context),
    uploads: new UploadService(context),
    manifests: new ManifestService(context),
    reads: new RegistryReads(context),
  };
}
