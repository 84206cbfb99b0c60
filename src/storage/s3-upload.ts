/**
 * A Writable that streams its bytes into one S3 object without holding the whole object in memory.
 *
 * Contract:
 * - Bodies smaller than one part go up as a single PutObject when the stream ends; larger ones as
 *   a multipart upload whose parts are sent while later bytes still arrive.
 * - The object appears (atomically, as S3 object writes do) only when the stream finishes
 *   ('finish' fires after S3 has accepted the object); until then nothing is visible at the key.
 * - A destroyed or failed stream aborts its multipart upload, so it leaves neither an object nor
 *   stored parts behind.
 *
 * Memory per writer: the part being filled plus at most `maxPartsInFlight` parts being sent.
 */
import { Writable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { describeS3Error } from './s3-errors.js';

/** Two parts on the wire while the next fills: keeps the link busy, bounds memory. */
const maxPartsInFlight = 2;
/** S3 allows at most 10,000 parts per upload. */
const maxParts = 10_000;

export interface ObjectTarget {
  client: S3Client;
  bucket: string;
  key: string;
}

/**
 * The size of part number `n` (1-based): the configured size for the first 1,000 parts, then
 * growing by one step per 1,000 parts, so an object of unknown length can reach ~55,000 parts'
 * worth (880 GiB at 16 MiB) within S3's 10,000-part limit while small objects keep small parts.
 */
export function partSizeFor(partNumber: number, baseSize: number): number {
  return baseSize * (1 + Math.floor((partNumber - 1) / 1000));
}

export class ObjectUploadStream extends Writable {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The multipart upload's id, once the first full part asked for one. */
  private creation: Promise<string> | undefined;
  private nextPart = 1;
  private readonly done: CompletedPart[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: Error | undefined;
  private completed = false;

  constructor(
    private readonly target: ObjectTarget,
    private readonly partSize: number,
  ) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.flushFullParts().then(
      () => callback(),
      (err: unknown) => callback(this.describe(err)),
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.finishObject().then(
      () => callback(),
      (err: unknown) => callback(this.describe(err)),
    );
  }

  private describe(err: unknown): Error {
    return describeS3Error(err, `write ${this.target.key}`, this.target.bucket);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const creation = this.creation;
    if (this.completed || creation === undefined) {
      callback(error);
      return;
    }
    // Let the parts on the wire settle first, so the abort is the last word on the upload (S3
    // would otherwise keep a part that landed after it). Only then is the stream 'close'd.
    const abort = async () => {
      const uploadId = await creation;
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      await this.target.client.send(new AbortMultipartUploadCommand({ Bucket: this.target.bucket, Key: this.target.key, UploadId: uploadId }));
    };
    abort()
      .catch(() => undefined) // the upload is gone either way, or S3's lifecycle rules reap it
      .finally(() => callback(error));
  }

  /** Sends every complete part buffered so far, waiting while too many are on the wire. */
  private async flushFullParts(): Promise<void> {
    while (this.pendingBytes >= partSizeFor(this.nextPart, this.partSize)) {
      if (this.failure) throw this.failure;
      if (this.destroyed) return;
      const size = partSizeFor(this.nextPart, this.partSize);
      const all = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending, this.pendingBytes);
      this.pending = all.length > size ? [all.subarray(size)] : [];
      this.pendingBytes = all.length - size;
      await this.sendPart(all.subarray(0, size));
    }
    if (this.failure) throw this.failure;
  }

  private async sendPart(body: Buffer): Promise<void> {
    if (this.nextPart > maxParts) throw new Error(`object ${this.target.key} needs more than ${maxParts} parts; raise storage.s3.partSizeBytes`);
    const partNumber = this.nextPart++;
    this.creation ??= this.target.client.send(new CreateMultipartUploadCommand({ Bucket: this.target.bucket, Key: this.target.key })).then((created) => {
      if (!created.UploadId) throw new Error(`S3 did not return an upload id for ${this.target.key}`);
      return created.UploadId;
    });
    const uploadId = await this.creation;
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
        this.done.push({ PartNumber: partNumber, ETag: result.ETag });
      })
      .catch((err: unknown) => {
        this.failure ??= err instanceof Error ? err : new Error(String(err));
      });
    const tracked = sending.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
    while (this.inFlight.size >= maxPartsInFlight) await Promise.race(this.inFlight);
  }

  private async finishObject(): Promise<void> {
    const rest = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (this.creation === undefined) {
      await this.target.client.send(new PutObjectCommand({ Bucket: this.target.bucket, Key: this.target.key, Body: rest, ContentLength: rest.length }));
    } else {
      if (rest.length > 0) await this.sendPart(rest);
      await Promise.all([...this.inFlight]);
      if (this.failure) throw this.failure;
      const parts = [...this.done].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
      // The response's ETag may be empty on some services (Ceph RGW); nothing here relies on it.
      await this.target.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.target.bucket,
          Key: this.target.key,
          UploadId: await this.creation,
          MultipartUpload: { Parts: parts },
        }),
      );
    }
    this.completed = true;
  }
}
