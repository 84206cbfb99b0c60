/**
 * Blob upload sessions (chunked, resumable, monolithic) and the one commit path every pushed blob
 * takes: bytes stream through a hash into an upload object; only a verified upload is moved to its
 * content address, atomically, and only then linked into the repository.
 *
 * Resumability: the upload object in storage is the source of truth for the offset. The running
 * sha256 is cached in memory per session; after a restart (or on another replica) it is rebuilt by
 * re-reading the object, so a resumed upload costs one extra read and nothing is lost.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import type { Digest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import type { BlobRecord, Pusher, UploadRecord } from '../metadata/store.js';
import { StorageNotFoundError } from '../storage/driver.js';
import { blobPath, uploadPath, uploadPrefix, uploadsPrefix, type UploadLayout } from '../storage/paths.js';
import type { RegistryContext } from './context.js';
import type { PendingBlob } from './policy-hooks.js';
import { discard, hashStream, ingest, type IngestLimit } from './streams.js';

export interface UploadState {
  id: string;
  repository: string;
  /** Bytes received so far; the next chunk must start here. */
  offset: number;
}

/** A chunk's declared position (`Content-Range: start-end`, inclusive) and/or length. */
export interface ChunkInfo {
  range?: { start: number; end: number } | undefined;
  /** Content-Length, when the client sent one (absent for chunked transfer encoding). */
  length?: number | undefined;
}

const uploadIdPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The layout of every session and monolithic upload this version begins (storage/paths.ts). */
const layout: UploadLayout = 'flat';

/** The `Range` header value for an upload's progress, as Distribution writes it. */
export function uploadRange(offset: number): string {
  return `0-${Math.max(0, offset - 1)}`;
}

export class UploadService {
  /** Running sha256 per session, valid only while `offset` equals the stored object's size. */
  private readonly hashes = new Map<string, { hash: Hash; offset: number }>();
  /** Sessions with a request in flight; a second concurrent writer is refused. */
  private readonly busy = new Set<string>();

  constructor(private readonly ctx: RegistryContext) {}

  async start(repository: string): Promise<UploadState> {
    const id = randomUUID();
    await this.ctx.metadata.uploads.create(repository, id, this.ctx.clock.now(), layout);
    return { id, repository, offset: 0 };
  }

  async status(repository: string, id: string): Promise<UploadState> {
    const upload = await this.find(repository, id);
    return { id, repository, offset: await this.storedSize(objectOf(upload)) };
  }

  /** Appends one chunk; it must start exactly at the current offset (else 416 with the Range). */
  async append(repository: string, id: string, body: Readable, chunk: ChunkInfo): Promise<UploadState> {
    const upload = await this.find(repository, id);
    return this.exclusive(id, async () => {
      const offset = await this.appendChunk(id, objectOf(upload), body, chunk);
      await this.ctx.metadata.uploads.touch(id, this.ctx.clock.now());
      return { id, repository, offset };
    });
  }

  /**
   * Closes the session: appends the optional last chunk, verifies the digest, asks the push policy
   * (quotas, rate limits: a refusal discards the session), commits. `pusher`: who uploads (undefined
   * with auth off).
   */
  async complete(repository: string, id: string, digest: Digest, body: Readable | undefined, chunk: ChunkInfo, pusher?: Pusher): Promise<BlobRecord> {
    const upload = await this.find(repository, id);
    const object = objectOf(upload);
    return this.exclusive(id, async () => {
      const size = body ? await this.appendChunk(id, object, body, chunk) : await this.storedSize(object);
      if (size === 0 && !(await this.ctx.storage.stat(object))) await this.createEmpty(object);
      const actual = await this.digestOfUpload(id, object, digest, size);
      if (actual !== digest.value) {
        await this.discardSession(id);
        throw new RegistryError('DIGEST_INVALID', undefined, { expected: digest.value, actual });
      }
      await this.checkPolicy({ repository, digest: digest.value, size, pusher }, () => this.discardSession(id));
      const blob = await this.commit(repository, object, digest, size, id);
      this.hashes.delete(id);
      return blob;
    });
  }

  async cancel(repository: string, id: string): Promise<void> {
    await this.find(repository, id);
    await this.discardSession(id);
  }

  /**
   * Monolithic upload (`POST ?digest=`). Content the registry already holds is verified by hashing
   * alone and never written twice. Its push time is refreshed first, so a GC running meanwhile keeps
   * it (see gc.ts); should a GC with a grace period shorter than this upload collect it anyway, the
   * push fails with BLOB_UPLOAD_INVALID rather than link content that is gone.
   */
  async putMonolithic(repository: string, digest: Digest, body: Readable, length: number | undefined, pusher?: Pusher): Promise<BlobRecord> {
    const id = randomUUID();
    const touched = await this.ctx.metadata.blobs.touch(digest.value, this.ctx.clock.now());
    // A row whose file is missing (left by an earlier GC race, or lost storage) is written afresh,
    // which repairs every repository linked to it.
    const known = touched && (await this.ctx.storage.stat(blobPath(digest))) ? touched : undefined;
    const hash = createHash(digest.algorithm);
    // The upload object is gone once committed (moved into place) and never exists for content
    // already held, so only a failed upload has one to remove: on S3 a delete costs a listing.
    let leftover = !known;
    try {
      const sink: Writable = known ? discard() : await this.ctx.storage.write(uploadPath(id, layout), { append: false });
      const size = await ingest(body, sink, hash, this.limiter(length));
      checkLength(length, size);
      const actual = `${digest.algorithm}:${hash.digest('hex')}`;
      if (actual !== digest.value) throw new RegistryError('DIGEST_INVALID', undefined, { expected: digest.value, actual });
      await this.checkPolicy({ repository, digest: digest.value, size, pusher }, async () => undefined);
      if (known) {
        const linked = await this.ctx.metadata.blobs.linkExisting(repository, digest.value, this.ctx.clock.now());
        if (!linked) throw new RegistryError('BLOB_UPLOAD_INVALID', 'the stored content was garbage-collected during the upload: push the blob again');
        return linked;
      }
      const blob = await this.commit(repository, uploadPath(id, layout), digest, size);
      leftover = false;
      return blob;
    } finally {
      if (leftover) await this.ctx.storage.delete(uploadPrefix(id));
    }
  }

  /** Removes sessions idle longer than the upload TTL, and upload objects no session owns. */
  async expireIdle(): Promise<string[]> {
    const cutoff = this.ctx.clock.now() - this.ctx.limits.uploadTtlMs;
    const expired: string[] = [];
    for (const upload of await this.ctx.metadata.uploads.listIdleSince(cutoff)) {
      await this.discardSession(upload.id);
      expired.push(upload.id);
    }
    for (const id of await this.ctx.storage.list(uploadsPrefix)) {
      if (!uploadIdPattern.test(id) || (await this.ctx.metadata.uploads.exists(id))) continue;
      // No session: a monolithic upload in flight (of this version or, during an upgrade, an older one) or a leftover.
      const info = (await this.ctx.storage.stat(uploadPath(id, 'flat'))) ?? (await this.ctx.storage.stat(uploadPath(id, 'directory')));
      if (!info || info.modifiedAt.getTime() < cutoff) {
        await this.ctx.storage.delete(uploadPrefix(id));
        expired.push(id);
      }
    }
    return expired;
  }

  /** The push policy's verdict on a verified upload (`policy-hooks.ts`); on a refusal, `discard` runs before it is thrown. */
  private async checkPolicy(blob: PendingBlob, discard: () => Promise<void>): Promise<void> {
    const policy = this.ctx.pushPolicy;
    if (!policy) return;
    try {
      await policy.checkBlob(blob);
    } catch (err) {
      await discard();
      throw err;
    }
  }

  /** The session (404 BLOB_UPLOAD_UNKNOWN if `repository` has none by this id). */
  private async find(repository: string, id: string): Promise<UploadRecord> {
    const upload = uploadIdPattern.test(id) ? await this.ctx.metadata.uploads.get(repository, id) : undefined;
    if (!upload) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', undefined, { uuid: id.slice(0, 64) });
    return upload;
  }

  private async exclusive<T>(id: string, work: () => Promise<T>): Promise<T> {
    if (this.busy.has(id)) {
      throw new RegistryError('BLOB_UPLOAD_INVALID', 'another request is writing to this upload');
    }
    this.busy.add(id);
    try {
      return await work();
    } finally {
      this.busy.delete(id);
    }
  }

  private async storedSize(object: string): Promise<number> {
    return (await this.ctx.storage.stat(object))?.size ?? 0;
  }

  /** Appends a chunk to session `id`'s `object` at its current offset; returns the new offset. */
  private async appendChunk(id: string, object: string, body: Readable, chunk: ChunkInfo): Promise<number> {
    const offset = await this.storedSize(object);
    const declared = chunk.range ? chunk.range.end - chunk.range.start + 1 : chunk.length;
    if (chunk.range) {
      if (chunk.range.start !== offset) {
        throw new RegistryError(
          'CHUNK_OUT_OF_ORDER',
          undefined,
          { offset },
          {
            Range: uploadRange(offset),
            'Docker-Upload-UUID': id,
          },
        );
      }
      if (chunk.length !== undefined && chunk.length !== declared) {
        throw new RegistryError('CHUNK_OUT_OF_ORDER', 'Content-Range does not match Content-Length', undefined, {
          Range: uploadRange(offset),
        });
      }
    }
    const state = await this.runningHash(id, object, offset);
    this.hashes.delete(id); // re-added only if the whole chunk lands
    const writer = await this.ctx.storage.write(object, { append: true });
    const received = await ingest(body, writer, state.hash, this.limiter(declared));
    checkLength(declared, received);
    this.hashes.set(id, { hash: state.hash, offset: offset + received });
    return offset + received;
  }

  private limiter(length: number | undefined): IngestLimit | undefined {
    if (length === undefined) return undefined;
    return { bytes: length, error: () => new RegistryError('SIZE_INVALID', 'body is longer than declared') };
  }

  /** The cached running hash at `offset`, or one rebuilt by re-reading the stored bytes. */
  private async runningHash(id: string, object: string, offset: number): Promise<{ hash: Hash; offset: number }> {
    const cached = this.hashes.get(id);
    if (cached && cached.offset === offset) return cached;
    if (offset === 0) return { hash: createHash('sha256'), offset };
    return { hash: await hashStream(await this.ctx.storage.read(object)), offset };
  }

  private async digestOfUpload(id: string, object: string, digest: Digest, size: number): Promise<string> {
    const cached = this.hashes.get(id);
    if (digest.algorithm === 'sha256' && cached && cached.offset === size) {
      return `sha256:${cached.hash.copy().digest('hex')}`;
    }
    const hash = await hashStream(await this.ctx.storage.read(object), createHash(digest.algorithm));
    return `${digest.algorithm}:${hash.digest('hex')}`;
  }

  private async createEmpty(object: string): Promise<void> {
    const writer = await this.ctx.storage.write(object, { append: false });
    await new Promise<void>((ok, fail) => writer.end((err?: Error | null) => (err ? fail(err) : ok())));
  }

  /**
   * Makes verified upload bytes visible at their content address by an atomic move, then records
   * and links them. The blob's row, if it has one, is touched before the move: a GC that has not yet
   * re-checked it then keeps it, and one collecting it right now finishes (deleting the old file)
   * before the touch returns, so the move never lands in a directory GC is removing. `session`: the
   * upload session completed by this (its row goes with the blob's).
   */
  private async commit(repository: string, object: string, digest: Digest, size: number, session?: string): Promise<BlobRecord> {
    await this.ctx.metadata.blobs.touch(digest.value, this.ctx.clock.now());
    try {
      await this.ctx.storage.move(object, blobPath(digest));
    } catch (err) {
      if (err instanceof StorageNotFoundError) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', 'upload data is gone');
      throw err;
    }
    const now = this.ctx.clock.now();
    await this.ctx.metadata.blobs.link(repository, { digest: digest.value, size }, now, session);
    return { digest: digest.value, size, pushedAt: now };
  }

  private async discardSession(id: string): Promise<void> {
    this.hashes.delete(id);
    await this.ctx.storage.delete(uploadPrefix(id));
    await this.ctx.metadata.uploads.delete(id);
  }
}

/** Where a session's bytes are. */
function objectOf(upload: UploadRecord): string {
  return uploadPath(upload.id, upload.layout);
}

function checkLength(declared: number | undefined, received: number): void {
  if (declared !== undefined && received !== declared) {
    throw new RegistryError('SIZE_INVALID', 'body is shorter than declared', { declared, received });
  }
}
