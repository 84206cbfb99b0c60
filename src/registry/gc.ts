/**
 * Garbage collection: removes blobs that no manifest in any repository references and expired
 * upload sessions. Safe to run while the registry serves traffic (`berth gc` next to `berth serve`):
 * - blobs pushed within the grace period are kept (a client may be between pushing layers and
 *   pushing the manifest);
 * - each blob is collected in one transaction that holds its row, re-checks "unreferenced and
 *   older than the cutoff", deletes its rows and then its file before committing
 *   (`GcIndex.collectBlob`). A deduplicating push, a mount, a server-side link or an upload commit
 *   of the same digest takes the same row first and refreshes its push time (`BlobIndex.touch`,
 *   `linkExisting`), so it either comes before the re-check (and the blob is kept) or after the
 *   commit (and finds no row, so it writes the content afresh or falls back). A row never outlives
 *   its file, which is what made pulls fail with BLOB_UNKNOWN while HEAD said the blob existed;
 * - a file younger than the cutoff is kept with its rows (written afresh meanwhile).
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
  const removed: BlobRecord[] = [];
  for (const blob of candidates) {
    const path = blobPath(parseDigest(blob.digest));
    const collected = await ctx.metadata.gc.collectBlob(blob.digest, cutoff, async () => {
      const info = await ctx.storage.stat(path);
      if (info && info.modifiedAt.getTime() >= cutoff) return false; // written afresh meanwhile
      await ctx.storage.delete(path.slice(0, -'/data'.length));
      return true;
    });
    if (collected) removed.push(blob);
  }
  const expiredUploads = await uploads.expireIdle();
  const manifestContents = await ctx.metadata.gc.pruneManifestContents();
  ctx.logger.info({ blobs: removed.length, bytes: sum(removed), uploads: expiredUploads.length }, 'garbage collected');
  return { blobs: removed, bytes: sum(removed), uploads: expiredUploads, manifestContents, dryRun: false };
}

function sum(blobs: readonly BlobRecord[]): number {
  return blobs.reduce((total, blob) => total + blob.size, 0);
}
