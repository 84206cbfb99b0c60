/**
 * Garbage collection: removes blobs that no manifest in any repository references and expired
 * upload sessions. Safe to run while the registry serves traffic:
 * - blobs pushed within the grace period are kept (a client may be between pushing layers and
 *   pushing the manifest);
 * - the metadata rows are forgotten in a transaction that re-checks "still unreferenced";
 * - a blob file is deleted only if it is itself older than the cutoff, so content re-pushed while
 *   GC ran (which an upload commit moves into place afresh) survives.
 */
import type { BlobRecord } from '../metadata/store.js';
import { parseDigest } from '../oci/digest.js';
import { blobPath } from '../storage/paths.js';
import type { RegistryContext } from './context.js';
import type { UploadService } from './uploads.js';

export interface GcOptions {
  dryRun: boolean;
  /** Blobs pushed more recently than this are kept. */
  graceMs: number;
}

export interface GcReport {
  blobs: BlobRecord[];
  bytes: number;
  uploads: string[];
  manifestContents: number;
  dryRun: boolean;
}

export async function collectGarbage(ctx: RegistryContext, uploads: UploadService, options: GcOptions): Promise<GcReport> {
  const cutoff = ctx.clock.now() - options.graceMs;
  const candidates = await ctx.metadata.gc.unreferencedBlobs(cutoff);
  if (options.dryRun) {
    const idle = await ctx.metadata.uploads.listIdleSince(ctx.clock.now() - ctx.limits.uploadTtlMs);
    return {
      blobs: candidates,
      bytes: sum(candidates),
      uploads: idle.map((u) => u.id),
      manifestContents: 0,
      dryRun: true,
    };
  }
  const forgotten = new Set(
    await ctx.metadata.gc.forgetBlobs(
      candidates.map((b) => b.digest),
      cutoff,
    ),
  );
  const removed: BlobRecord[] = [];
  for (const blob of candidates) {
    if (!forgotten.has(blob.digest)) continue;
    const path = blobPath(parseDigest(blob.digest));
    const info = await ctx.storage.stat(path);
    if (info && info.modifiedAt.getTime() >= cutoff) continue; // re-pushed meanwhile
    await ctx.storage.delete(path.slice(0, -'/data'.length));
    removed.push(blob);
  }
  const expiredUploads = await uploads.expireIdle();
  const manifestContents = await ctx.metadata.gc.pruneManifestContents();
  ctx.logger.info({ blobs: removed.length, bytes: sum(removed), uploads: expiredUploads.length }, 'garbage collected');
  return { blobs: removed, bytes: sum(removed), uploads: expiredUploads, manifestContents, dryRun: false };
}

function sum(blobs: readonly BlobRecord[]): number {
  return blobs.reduce((total, blob) => total + blob.size, 0);
}
