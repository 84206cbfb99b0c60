/**
 * Reading, mounting and unlinking blobs. A repository serves a blob only if it was pushed or
 * mounted there (its link), even though the content is stored once for all repositories.
 */
import type { Writable } from 'node:stream';
import { RegistryError } from '../oci/errors.js';
import type { Digest } from '../oci/digest.js';
import type { BlobRecord } from '../metadata/store.js';
import { sendObject, StorageNotFoundError, type ByteRange } from '../storage/driver.js';
import { blobPath } from '../storage/paths.js';
import type { RegistryContext } from './context.js';

/** An inclusive byte range of a blob (a `Range` request). */
export type { ByteRange };

/** Holders of a blob read per query, and at most how many a mount without `from` looks at. */
const mountCandidatePage = 200;
const maxMountCandidates = 5000;

export class BlobService {
  constructor(private readonly ctx: RegistryContext) {}

  /** The blob's record, or BLOB_UNKNOWN if this repository cannot serve it. */
  async stat(repository: string, digest: Digest): Promise<BlobRecord> {
    const blob = await this.ctx.metadata.blobs.getInRepository(repository, digest.value);
    if (!blob) throw new RegistryError('BLOB_UNKNOWN', undefined, { digest: digest.value });
    return blob;
  }

  /** True if `repository` can serve the blob (it was pushed or mounted there). */
  async has(repository: string, digest: Digest): Promise<boolean> {
    return (await this.ctx.metadata.blobs.getInRepository(repository, digest.value)) !== undefined;
  }

  /**
   * Writes the blob (or the range) into `destination`, not ending it; `ready()` runs once the
   * content is open, before the first byte (send headers there). Content missing from storage
   * despite its record is logged and reported as BLOB_UNKNOWN, before `ready()`.
   */
  async send(repository: string, digest: Digest, destination: Writable, ready: () => void, range?: ByteRange): Promise<void> {
    try {
      await sendObject(this.ctx.storage, blobPath(digest), destination, ready, range);
    } catch (err) {
      if (!(err instanceof StorageNotFoundError)) throw err;
      this.ctx.logger.error({ digest: digest.value, repository }, 'blob is in metadata but missing from storage');
      throw new RegistryError('BLOB_UNKNOWN', undefined, { digest: digest.value });
    }
  }

  /** A direct-download URL from the storage driver, if it offers one. */
  redirectURL(digest: Digest): Promise<string | undefined> {
    return this.ctx.storage.redirectURL(blobPath(digest));
  }

  /**
   * Cross-repository mount: links `digest` into `repository` if `from` can serve it.
   * Undefined (the caller falls back to an upload) when it cannot.
   */
  async mount(repository: string, digest: Digest, from: string): Promise<BlobRecord | undefined> {
    const blob = await this.ctx.metadata.blobs.getInRepository(from, digest.value);
    if (!blob) return undefined;
    // Undefined when GC collected it since: the client falls back to an upload.
    return this.ctx.metadata.blobs.linkExisting(repository, digest.value, this.ctx.clock.now());
  }

  /**
   * Mount without a source repository (`POST .../blobs/uploads/?mount=<digest>` and no `from`):
   * links the blob into `repository` from the first repository (in name order) that holds it and
   * that `readable` says the caller may pull, so nothing is revealed or linked that the caller could
   * not read anyway. The distribution spec (v1.1, "Mounting a blob from another repository"):
   * "The registry MAY treat the `from` parameter as optional, and it MAY cross-mount the blob if it
   * can be found." Undefined (the caller falls back to an upload session, which the spec asks for
   * when "unable to mount the requested blob") when no readable holder is found among the first
   * `maxMountCandidates` holders, so a blob held by very many repositories costs a bounded search.
   */
  async mountFromReadable(repository: string, digest: Digest, readable: (repository: string) => boolean): Promise<BlobRecord | undefined> {
    let after: string | undefined;
    for (let seen = 0; seen < maxMountCandidates;) {
      const holders = await this.ctx.metadata.blobs.holders(digest.value, { after, limit: mountCandidatePage });
      const source = holders.find(readable);
      if (source !== undefined) return this.mount(repository, digest, source);
      if (holders.length < mountCandidatePage) return undefined;
      seen += holders.length;
      after = holders[holders.length - 1];
    }
    return undefined;
  }

  /**
   * Links content the registry already stores (through any repository) into `repository`, as a
   * mount without a source repository. For server-side copies only (import, sync), and only for
   * content the copy itself has just received from its source and hashed (a source naming a digest
   * proves nothing); clients mount with `?from=`, which needs pull on the source. Undefined when the
   * content is not stored (metadata or file missing).
   */
  async linkStored(repository: string, digest: Digest): Promise<BlobRecord | undefined> {
    const blob = await this.ctx.metadata.blobs.get(digest.value);
    if (!blob || !(await this.ctx.storage.stat(blobPath(digest)))) return undefined;
    return this.ctx.metadata.blobs.linkExisting(repository, digest.value, this.ctx.clock.now());
  }

  /** Removes the blob from this repository; the content goes when GC finds it unreferenced. */
  async delete(repository: string, digest: Digest): Promise<void> {
    if (!(await this.ctx.metadata.blobs.unlink(repository, digest.value))) {
      throw new RegistryError('BLOB_UNKNOWN', undefined, { digest: digest.value });
    }
  }
}
