/** Small stream pieces the registry composes into blob pipelines. */
import { createHash, type Hash } from 'node:crypto';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type RegistryError } from '../oci/errors.js';

/**
 * Passes bytes through and fails with `onOverflow()` as soon as more than `limit` bytes arrive,
 * so an oversized body never reaches storage in full.
 */
export class ByteLimit extends Transform {
  private seen = 0;

  constructor(
    private readonly limit: number,
    private readonly onOverflow: () => RegistryError,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) callback(this.onOverflow());
    else callback(null, chunk);
  }
}

/** A sink that discards bytes (used to verify content the registry already has). */
export function discard(): Writable {
  return new Writable({
    highWaterMark: 1024 * 1024,
    write(_chunk, _enc, callback) {
      callback();
    },
  });
}

/** Feeds a whole stream into `hash` and resolves when it has ended. */
export async function hashStream(source: Readable, hash: Hash = createHash('sha256')): Promise<Hash> {
  await pipeline(
    source,
    new Writable({
      highWaterMark: 1024 * 1024,
      write(chunk: Buffer, _enc, callback) {
        hash.update(chunk);
        callback();
      },
    }),
  );
  return hash;
}
