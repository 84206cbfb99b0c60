/**
 * Digest-preserving copy of one image (a manifest, or an index with every platform, optionally
 * with its referrers) from a remote registry into this one. Used by import and sync.
 *
 * Contract:
 * - Nothing the source sends is trusted: every manifest's digest is computed over its exact bytes
 *   (and must match the descriptor that named it); every blob streams through the registry's own
 *   upload commit path, which hashes while writing and makes the blob visible only by an atomic
 *   move after the digest and size matched. A mismatch fails the copy with UPSTREAM_INVALID and
 *   stores nothing of that blob.
 * - Order: blobs first, then child manifests, then the index, referrers after their subject, tags
 *   last; so a tag never points at something incomplete, and an interrupted copy leaves only
 *   complete, verified blobs (and maybe complete manifests) that the next attempt skips.
 * - Blobs the target repository already has are skipped. Any other blob is downloaded from the
 *   source and hashed, even when this registry already stores the content for another repository:
 *   a source's manifest naming a digest proves nothing (a hostile source could name a private
 *   layer's digest to have it linked where the mirror's readers can pull it), and a HEAD with a
 *   matching size proves nothing either. Bytes that hash right are the proof; content already stored
 *   is then linked, not written twice. Only digests this same job already downloaded and hashed
 *   (`verifiedBlobs`, e.g. an import's second target) are linked without another download.
 * - Without `force`, a target tag that exists and points elsewhere fails the copy with TAG_EXISTS
 *   before anything is copied (and is checked again just before tagging). A tag already pointing
 *   at the source digest is not a conflict, so a retried copy is idempotent.
 */
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import { tryParseDigest, type Digest } from '../oci/digest.js';
import { isRegistryError } from '../oci/errors.js';
import { ApiError, isApiError } from '../api/errors.js';
import type { Descriptor } from '../oci/manifest.js';
import { isIndexMediaType, mediaTypes } from '../oci/media-types.js';
import { isValidTag, parseRepositoryName } from '../oci/names.js';
import type { ImportResult, TransferProgress } from '../metadata/import-store.js';
import type { Pusher } from '../metadata/store.js';
import type { Registry } from '../registry/index.js';
import type { RemoteManifest, RemoteRegistry } from '../remote/client.js';

export type CopyProgress = TransferProgress;

export interface CopyRequest {
  source: RemoteRegistry;
  sourceRepository: string;
  /** Tag or digest. */
  reference: string;
  targetRepository: string;
  /** Tags to set on the target (none: the image is stored by digest only). */
  targetTags: readonly string[];
  /**
   * Also copy the referrers (signatures, SBOMs) of the image and of each platform manifest. Sigstore
   * bundle referrers (push attestations) are copied either way.
   */
  includeReferrers?: boolean;
  /** Overwrite target tags that point elsewhere (ACR `Force`); otherwise TAG_EXISTS (ACR `NoForce`). */
  force: boolean;
  onProgress?: (p: CopyProgress) => void;
  signal?: AbortSignal;
  /** Recorded as who pushed the manifests (push history). */
  pusher?: Pusher;
  /**
   * Digests whose bytes this job already received from this source and hashed: they may be linked
   * from this registry's store without another download. The copy adds every blob it downloads,
   * so one set passed to several copies of the same image (an import's targets) downloads each
   * blob once. Never put a digest here on the strength of a manifest or a HEAD.
   */
  verifiedBlobs?: Set<string>;
  /** Blobs transferred at once (default 4; the source's own concurrency limit also applies). */
  concurrency?: number;
  /** Attempts per blob when the source connection fails mid-stream (default 3). */
  blobAttempts?: number;
}

/** What a copy did; an import job stores it as its result. */
export type CopyResult = ImportResult;

/** Bound on the manifests of one image (platforms + referrers), against a hostile source. */
const maxManifests = 10_000;

interface Plan {
  /** Post-order: children before their index, referrers after their subject. */
  manifests: RemoteManifest[];
  blobs: Map<string, number>;
}

export async function copyImage(registry: Registry, request: CopyRequest): Promise<CopyResult> {
  const { source, signal } = request;
  const target = parseRepositoryName(request.targetRepository);
  for (const tag of request.targetTags) {
    if (!isValidTag(tag)) throw new ApiError('INVALID_REQUEST', `invalid target tag ${JSON.stringify(tag.slice(0, 200))}`);
  }
  const root = await source.getManifest(request.sourceRepository, request.reference, signal);
  if (request.targetTags.length > 0 && !root.digest.startsWith('sha256:')) {
    throw new ApiError('INVALID_REQUEST', `${root.digest} is not a sha256 digest: import it without target tags (by digest only)`);
  }
  if (!request.force) await assertTagsFree(registry, target, request.targetTags, root.digest);

  const plan = await planCopy(request, root);
  const progress: CopyProgress = {
    manifestsDone: 0,
    manifestsTotal: plan.manifests.length,
    blobsDone: 0,
    blobsTotal: plan.blobs.size,
    bytesDone: 0,
    bytesTotal: [...plan.blobs.values()].reduce((a, b) => a + b, 0),
  };
  const report = (): void => request.onProgress?.({ ...progress });
  report();

  const result: CopyResult = {
    digest: root.digest,
    mediaType: root.mediaType,
    manifests: plan.manifests.length,
    blobsCopied: 0,
    blobsSkipped: 0,
    bytesCopied: 0,
  };
  const queue = [...plan.blobs.entries()];
  const workers = Array.from({ length: Math.max(1, Math.min(request.concurrency ?? 4, queue.length)) }, async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      if (signal?.aborted) queue.length = 0;
      signal?.throwIfAborted();
      const [digest, size] = next;
      const copied = await copyBlob(registry, request, target, digest, size, (bytes) => {
        progress.bytesDone += bytes;
        report();
      }).catch((err: unknown) => {
        queue.length = 0; // the other workers finish their current blob and stop
        throw err;
      });
      if (copied) {
        result.blobsCopied++;
        result.bytesCopied += size;
      } else {
        result.blobsSkipped++;
        progress.bytesDone += size;
      }
      progress.blobsDone++;
      report();
    }
  });
  await settleAll(workers);

  for (const manifest of plan.manifests) {
    signal?.throwIfAborted();
    const digest = tryParseDigest(manifest.digest) as Digest;
    if (!(await registry.manifests.has(target, manifest.digest))) {
      await registry.manifests.put(target, { kind: 'digest', digest }, manifest.bytes, manifest.mediaType, request.pusher);
    }
    progress.manifestsDone++;
    report();
  }

  if (request.targetTags.length > 0) {
    signal?.throwIfAborted();
    if (!request.force) await assertTagsFree(registry, target, request.targetTags, root.digest);
    for (const tag of request.targetTags) {
      if ((await registry.manifests.digestOfTag(target, tag)) === root.digest) continue;
      await registry.manifests.put(target, { kind: 'tag', tag }, root.bytes, root.mediaType, request.pusher);
    }
  }
  return result;
}

/**
 * Throws TAG_EXISTS if any of `tags` exists in `repository` pointing at something other than
 * `digest` (ACR's NoForce). Import checks every target with it before copying anything.
 */
export async function assertTagsFree(registry: Registry, repository: string, tags: readonly string[], digest: string): Promise<void> {
  for (const tag of tags) {
    const current = await registry.manifests.digestOfTag(repository, tag);
    if (current !== undefined && current !== digest) {
      throw new ApiError('TAG_EXISTS', `${repository}:${tag} already exists (${current.slice(0, 19)}…): import with mode Force (--force) to overwrite it`, {
        repository,
        tag,
        digest: current,
      });
    }
  }
}

/** Fetches (and verifies) every manifest the copy needs and collects the blobs they reference. */
async function planCopy(request: CopyRequest, root: RemoteManifest): Promise<Plan> {
  const plan: Plan = { manifests: [], blobs: new Map() };
  const seen = new Set<string>([root.digest]);
  const visit = async (manifest: RemoteManifest): Promise<void> => {
    request.signal?.throwIfAborted();
    if (isIndexMediaType(manifest.mediaType)) {
      for (const child of manifest.manifest.manifests) {
        if (seen.has(child.digest)) continue;
        seen.add(child.digest);
        await visit(await fetchChild(request, child));
      }
    } else {
      for (const blob of manifest.manifest.blobs) {
        const known = plan.blobs.get(blob.digest);
        if (known !== undefined && known !== blob.size) {
          throw new ApiError('UPSTREAM_INVALID', `the source's manifests give blob ${blob.digest} two sizes (${known} and ${blob.size})`);
        }
        if (!tryParseDigest(blob.digest)) throw new ApiError('UPSTREAM_INVALID', `the source's manifest ${manifest.digest} has an unsupported blob digest`);
        plan.blobs.set(blob.digest, blob.size);
      }
    }
    plan.manifests.push(manifest);
    if (plan.manifests.length > maxManifests) throw new ApiError('UPSTREAM_INVALID', `the image has more than ${maxManifests} manifests`);
    // Sigstore bundles (push attestations among them) travel with the image even when other
    // referrers are not asked for: a copy must stay verifiable, and attestation policies need them.
    {
      const artifactType = request.includeReferrers ? undefined : mediaTypes.sigstoreBundle;
      for (const referrer of await request.source.referrers(request.sourceRepository, manifest.digest, artifactType, request.signal)) {
        if (seen.has(referrer.digest)) continue;
        seen.add(referrer.digest);
        await visit(await fetchChild(request, referrer));
      }
    }
  };
  await visit(root);
  return plan;
}

/** A manifest named by a descriptor: fetched by digest (so verified against it), with the size checked too. */
async function fetchChild(request: CopyRequest, descriptor: Descriptor): Promise<RemoteManifest> {
  const child = await request.source.getManifest(request.sourceRepository, descriptor.digest, request.signal);
  if (child.bytes.length !== descriptor.size) {
    throw new ApiError('UPSTREAM_INVALID', `manifest ${descriptor.digest} is ${child.bytes.length} bytes, but its descriptor says ${descriptor.size}`);
  }
  return child;
}

/** Copies one blob into `target`; false when it was skipped (already there, or linked from this registry's store). */
async function copyBlob(
  registry: Registry,
  request: CopyRequest,
  target: string,
  digestText: string,
  size: number,
  onBytes: (n: number) => void,
): Promise<boolean> {
  const digest = tryParseDigest(digestText) as Digest;
  if (await registry.blobs.has(target, digest)) return false;
  if (request.verifiedBlobs?.has(digest.value) && (await registry.blobs.linkStored(target, digest))) return false;
  const attempts = Math.max(1, request.blobAttempts ?? 3);
  for (let attempt = 1; ; attempt++) {
    let counted = 0;
    try {
      const blob = await request.source.openBlob(request.sourceRepository, digest.value, request.signal);
      if (blob.size !== undefined && blob.size !== size) {
        blob.body.destroy();
        throw new ApiError('UPSTREAM_INVALID', `blob ${digest.value} is ${blob.size} bytes on the source, but its descriptor says ${size}`);
      }
      const counter = new ByteCounter((n) => {
        counted += n;
        onBytes(n);
      });
      // pipeline (not pipe) so a source connection that fails mid-body fails the ingest too.
      const body = pipeline(blob.body, counter, () => undefined);
      // Content already stored is hashed and linked, not written again (putMonolithic).
      await registry.uploads.putMonolithic(target, digest, body, size).finally(() => blob.body.destroy());
      request.verifiedBlobs?.add(digest.value);
      return true;
    } catch (err) {
      onBytes(-counted);
      if (isRegistryError(err)) {
        if (err.code === 'DIGEST_INVALID' || err.code === 'SIZE_INVALID') {
          throw new ApiError(
            'UPSTREAM_INVALID',
            `the source sent content for blob ${digest.value} that does not match its digest or size: the source is corrupt or tampered with`,
            err.detail,
          );
        }
        throw err;
      } else if (isApiError(err)) {
        if (err.code !== 'UPSTREAM_UNREACHABLE' || attempt >= attempts) throw err;
      } else if (request.signal?.aborted || attempt >= attempts) {
        if (request.signal?.aborted) throw err;
        throw new ApiError(
          'UPSTREAM_UNREACHABLE',
          `the transfer of blob ${digest.value} from ${request.source.host} failed (${(err as Error).message}): retry the import`,
        );
      }
    }
  }
}

class ByteCounter extends Transform {
  constructor(private readonly onBytes: (n: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.onBytes(chunk.length);
    callback(null, chunk);
  }
}

/** Like Promise.all, but waits for every worker before rethrowing the first failure (no stray writes after a failed copy). */
async function settleAll(workers: Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(workers);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
