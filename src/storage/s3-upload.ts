/**
 * Writables that stream their bytes into S3 without holding a whole object in memory.
 *
 * `ObjectUploadStream` writes one object:
 * - Bodies smaller than one part go up as a single PutObject when the stream ends; larger ones as
 *   a multipart upload whose parts are sent while later bytes still arrive.
 * - The object appears (atomically, as S3 object writes do) only when the stream finishes
 *   ('finish' fires after S3 has accepted the object); until then nothing is visible at the key.
 * - A destroyed or failed stream aborts its multipart upload, so it leaves neither an object nor
 *   stored parts behind.
 *
 * `AppendUploadStream` adds one append to an object kept as an open multipart upload (see
 * `OpenUpload`), or as small segments until it reaches 5 MiB; the append counts only once its
 * record (or segment) is written.
 *
 * Memory per writer: the part being filled plus at most `maxPartsInFlight` parts being sent.
 */
import { Writable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { describeS3Error } from './s3-errors.js';
import { spentBytes } from '../shared/spent-buffers.js';

/** Two parts on the wire while the next fills: keeps the link busy, bounds memory. */
const maxPartsInFlight = 2;
/** S3 allows at most 10,000 parts per upload. */
const maxParts = 10_000;
/** S3's smallest part, for every part but an upload's last. */
export const minPartBytes = 5 * 1024 * 1024;

export interface ObjectTarget {
  client: S3Client;
  bucket: string;
  key: string;
}

/** A part S3 has stored, as CompleteMultipartUpload wants it, with its size. */
export interface StoredPart {
  PartNumber: number;
  ETag: string;
  Size: number;
}

/**
 * An object being appended to, kept as one open multipart upload at the object's own key, so that
 * finishing it is a CompleteMultipartUpload (no bytes copied) rather than an assembly of copies.
 * Recorded in a small JSON object beside it (the S3 driver's `~upload` key), rewritten by each
 * append that lands: its parts, in order (each at least 5 MiB), then `tail`, the bytes after the
 * last part (under 5 MiB, too small to be a part that is not the last), kept as an object of its
 * own until more arrive. Parts an append sent and did not record (it failed) are ignored and
 * replaced, so a failed append leaves the object as it was. An object under 5 MiB has none: it is
 * kept as segments (see `AppendUploadStream`).
 */
export interface OpenUpload {
  uploadId: string;
  parts: StoredPart[];
  tail?: { key: string; size: number };
}

/**
 * The size of part number `n` (1-based): the configured size for the first 1,000 parts, then
 * growing by one step per 1,000 parts, so an object of unknown length can reach ~55,000 parts'
 * worth (880 GiB at 16 MiB) within S3's 10,000-part limit while small objects keep small parts.
 */
export function partSizeFor(partNumber: number, baseSize: number): number {
  return baseSize * (1 + Math.floor((partNumber - 1) / 1000));
}

/**
 * The parts of one multipart upload as they are sent: the upload is created with the first part
 * (or continued from `resume`), at most `maxPartsInFlight` parts are on the wire, and what landed is
 * remembered. A failed part fails the next call.
 */
class PartSender {
  private creation: Promise<string> | undefined;
  private nextPart: number;
  private readonly stored: StoredPart[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: Error | undefined;

  constructor(
    private readonly target: ObjectTarget,
    resume?: { uploadId: string; nextPart: number },
  ) {
    if (resume) this.creation = Promise.resolve(resume.uploadId);
    this.nextPart = resume?.nextPart ?? 1;
  }

  /** True once the upload exists (given, or created for a part). */
  get started(): boolean {
    return this.creation !== undefined;
  }

  uploadId(): Promise<string> {
    this.creation ??= this.target.client.send(new CreateMultipartUploadCommand({ Bucket: this.target.bucket, Key: this.target.key })).then((created) => {
      if (!created.UploadId) throw new Error(`S3 did not return an upload id for ${this.target.key}`);
      return created.UploadId;
    });
    return this.creation;
  }

  /** The number the next part gets. */
  partNumber(): number {
    return this.nextPart;
  }

  throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  /**
   * Sends `body` as the next part; resolves once fewer than `maxPartsInFlight` are on the wire.
   * `landed` is called once S3 has stored it (the body is then the caller's again).
   */
  async send(body: Buffer, landed?: () => void): Promise<void> {
    if (this.nextPart > maxParts) throw new Error(`object ${this.target.key} needs more than ${maxParts} parts; raise storage.s3.partSizeBytes`);
    const partNumber = this.nextPart++;
    const uploadId = await this.uploadId();
    const sending = this.target.client
      .send(
        new UploadPartCommand({
          Bucket: this.target.bucket,
          Key: this.target.key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: body.length,
        }),
      )
      .then((result) => {
        this.stored.push({ PartNumber: partNumber, ETag: result.ETag ?? '', Size: body.length });
        landed?.();
      })
      .catch((err: unknown) => {
        this.failure ??= err instanceof Error ? err : new Error(String(err));
      });
    const tracked = sending.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
    while (this.inFlight.size >= maxPartsInFlight) await Promise.race(this.inFlight);
  }

  /** Waits for every part on the wire; the parts sent, in order, or the first failure. */
  async settle(): Promise<StoredPart[]> {
    await Promise.all([...this.inFlight]);
    this.throwIfFailed();
    return [...this.stored].sort((a, b) => a.PartNumber - b.PartNumber);
  }

  /** Resolves once no part is on the wire, whatever became of them. */
  async quiesce(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Aborts the upload once the parts on the wire have settled, so the abort is S3's last word on it. */
  async abort(): Promise<void> {
    if (this.creation === undefined) return;
    const uploadId = await this.creation;
    await this.quiesce();
    await this.target.client.send(new AbortMultipartUploadCommand({ Bucket: this.target.bucket, Key: this.target.key, UploadId: uploadId }));
  }
}

/**
 * Buffers incoming bytes into parts of `partSizeFor` and hands each full one to the sender. A part's
 * buffer is used again for a later part of the same size once S3 has stored it: an upload allocates
 * at most `maxPartsInFlight` + 1 of them, not one per part. Why: a part buffer (16 MiB by default)
 * is above glibc's mmap threshold as Berth runs it (docs/operations.md, "Memory"), so each fresh one
 * is a new mapping whose 4,096 pages are zeroed and faulted in.
 */
abstract class PartWriter extends Writable {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Part buffers S3 has stored, ready for the next part of their size. */
  private readonly spare: Buffer[] = [];
  /** True once the stream's result is in S3: a later destroy must not undo it. */
  protected completed = false;

  constructor(
    protected readonly target: ObjectTarget,
    protected readonly parts: PartSender,
    private readonly partSize: number,
    initial?: Buffer,
  ) {
    super({ highWaterMark: 1024 * 1024 });
    if (initial !== undefined && initial.length > 0) {
      this.pending.push(initial);
      this.pendingBytes = initial.length;
    }
  }

  /** What the stream does with the bytes left after the last full part, when it ends. */
  protected abstract finish(rest: Buffer): Promise<void>;
  /** Bytes that go in front of the first part, asked once before it is cut. */
  protected prefix(): Promise<Buffer | undefined> {
    return Promise.resolve(undefined);
  }
  /** What a destroyed or failed stream undoes. */
  protected abstract undo(): Promise<void>;

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.flushFullParts().then(
      () => callback(),
      (err: unknown) => callback(this.describe(err)),
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    const rest = Buffer.concat(this.pending, this.pendingBytes);
    spentBytes(this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.finish(rest).then(
      () => {
        this.completed = true;
        callback();
      },
      (err: unknown) => callback(this.describe(err)),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.completed) {
      callback(error);
      return;
    }
    this.undo()
      .catch(() => undefined) // what is left is invisible either way, and S3's lifecycle rules reap it
      .finally(() => callback(error));
  }

  protected describe(err: unknown): Error {
    return describeS3Error(err, `write ${this.target.key}`, this.target.bucket);
  }

  /** The first `size` pending bytes (at least that many are pending), copied into a part buffer. */
  private cut(size: number): Buffer {
    const reuse = this.spare.findIndex((buffer) => buffer.length === size);
    const part = reuse === -1 ? Buffer.allocUnsafeSlow(size) : (this.spare.splice(reuse, 1)[0] as Buffer);
    let filled = 0;
    while (filled < size) {
      const chunk = this.pending[0] as Buffer;
      const take = Math.min(chunk.length, size - filled);
      chunk.copy(part, filled, 0, take);
      filled += take;
      if (take === chunk.length) this.pending.shift();
      else this.pending[0] = chunk.subarray(take);
    }
    this.pendingBytes -= size;
    spentBytes(size); // the copied pieces are let go of: count them for the paced young collections
    return part;
  }

  /** Sends every complete part buffered so far, waiting while too many are on the wire. */
  private async flushFullParts(): Promise<void> {
    while (this.pendingBytes >= partSizeFor(this.parts.partNumber(), this.partSize)) {
      this.parts.throwIfFailed();
      if (this.destroyed) return;
      if (!this.parts.started) {
        const before = await this.prefix();
        if (before !== undefined && before.length > 0) {
          this.pending.unshift(before);
          this.pendingBytes += before.length;
        }
      }
      const size = partSizeFor(this.parts.partNumber(), this.partSize);
      const first = this.pending[0] as Buffer;
      if (first.length >= size) {
        // One buffer holds the whole part already (a tail sent again, a large write): no copy.
        this.pending[0] = first.subarray(size);
        if (first.length === size) this.pending.shift();
        this.pendingBytes -= size;
        // Let go of once S3 has stored the part: counted then, for the paced young collections.
        await this.parts.send(first.subarray(0, size), () => spentBytes(size));
        continue;
      }
      const part = this.cut(size);
      await this.parts.send(part, () => this.spare.push(part));
    }
    this.parts.throwIfFailed();
  }
}

/** Writes one whole object at `target.key` (see the contract at the top). */
export class ObjectUploadStream extends PartWriter {
  constructor(target: ObjectTarget, partSize: number) {
    super(target, new PartSender(target), partSize);
  }

  protected async finish(rest: Buffer): Promise<void> {
    const { client, bucket, key } = this.target;
    if (!this.parts.started) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: rest, ContentLength: rest.length }));
      return;
    }
    if (rest.length > 0) await this.parts.send(rest);
    const parts = await this.parts.settle();
    // The response's ETag may be empty on some services (Ceph RGW); nothing here relies on it.
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: await this.parts.uploadId(),
        MultipartUpload: { Parts: parts.map(({ PartNumber, ETag }) => ({ PartNumber, ETag })) },
      }),
    );
  }

  protected undo(): Promise<void> {
    return this.parts.abort();
  }
}

/** What an append needs of the object around it: the record, the tail, the small segments before it. */
export interface AppendStore {
  /** A fresh key for a tail object. */
  tailKey(): string;
  /** Writes the record (one PutObject: it changes all at once). */
  save(state: OpenUpload): Promise<void>;
  /** Writes `bytes` as the object's next segment: an append to an object without an open upload that stays under 5 MiB. */
  saveSegment(bytes: Buffer): Promise<void>;
  /** The bytes of the segments before this append (under 5 MiB in all), once they must lead a part. */
  loadSegments(): Promise<Buffer>;
  /** Deletes those segments, once the record holds their bytes. */
  dropSegments(): Promise<void>;
}

/**
 * One append to the object at `target.key`.
 *
 * With an open upload (`open`, its record before this append, and `tail`, the bytes of its tail,
 * which this append sends again in front of its own): full parts go to its multipart upload; at
 * the end the bytes left become a part if they are 5 MiB or more, else the new tail, and the new
 * record is saved.
 *
 * Without one (the object is absent, or `segmentBytes` of small segments, under 5 MiB in all): an
 * append that keeps the object under 5 MiB is one more segment, a single PutObject, so a small
 * blob costs no multipart upload. One that reaches 5 MiB opens the upload: the segments' bytes lead
 * its first part, and once the record is saved the segments go.
 *
 * Until its record or segment is written the object is as before: a destroyed stream aborts only
 * an upload it created and removes only a tail it wrote.
 */
export class AppendUploadStream extends PartWriter {
  private newTail: string | undefined;
  private segmentsLoaded = false;

  constructor(
    target: ObjectTarget,
    partSize: number,
    private readonly store: AppendStore,
    private readonly open: OpenUpload | undefined,
    tail: Buffer | undefined,
    private readonly segmentBytes: number,
  ) {
    const last = open?.parts.at(-1);
    super(target, new PartSender(target, open ? { uploadId: open.uploadId, nextPart: (last?.PartNumber ?? 0) + 1 } : undefined), partSize, tail);
  }

  /** Before an upload this append opens sends its first part, the segments' bytes go in front. */
  protected override async prefix(): Promise<Buffer | undefined> {
    if (this.open !== undefined || this.segmentBytes === 0 || this.segmentsLoaded) return undefined;
    this.segmentsLoaded = true;
    return this.store.loadSegments();
  }

  protected async finish(rest: Buffer): Promise<void> {
    if (!this.parts.started) {
      if (this.segmentBytes + rest.length < minPartBytes) {
        await this.store.saveSegment(rest);
        return;
      }
      const before = await this.prefix();
      if (before !== undefined) rest = Buffer.concat([before, rest]);
    }
    if (rest.length >= minPartBytes) await this.parts.send(rest);
    const state: OpenUpload = { uploadId: await this.parts.uploadId(), parts: [...(this.open?.parts ?? []), ...(await this.parts.settle())] };
    if (rest.length > 0 && rest.length < minPartBytes) {
      const key = this.store.tailKey();
      this.newTail = key;
      await this.target.client.send(new PutObjectCommand({ Bucket: this.target.bucket, Key: key, Body: rest, ContentLength: rest.length }));
      state.tail = { key, size: rest.length };
    }
    await this.store.save(state);
    this.completed = true;
    // What the old tail and the segments held is in the new record's parts or tail now.
    const oldTail = this.open?.tail?.key;
    await Promise.all([
      oldTail !== undefined ? this.target.client.send(new DeleteObjectCommand({ Bucket: this.target.bucket, Key: oldTail })) : undefined,
      this.segmentsLoaded ? this.store.dropSegments() : undefined,
    ]).catch(() => undefined); // leftovers only: the record does not name them, and delete() removes them
  }

  protected async undo(): Promise<void> {
    const { client, bucket } = this.target;
    const removals: Array<Promise<unknown>> = [];
    if (this.newTail !== undefined) removals.push(client.send(new DeleteObjectCommand({ Bucket: bucket, Key: this.newTail })));
    // Parts sent to an upload the record names stay unrecorded and the next append replaces them,
    // once none is still on the wire (a part landing later would replace the next append's).
    removals.push(this.open === undefined ? this.parts.abort() : this.parts.quiesce());
    await Promise.all(removals);
  }
}
