/** Small stream pieces the registry composes into blob pipelines. */
import { createHash, type Hash } from 'node:crypto';
import { Writable, type Readable } from 'node:stream';
import { type RegistryError } from '../oci/errors.js';

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
  await ingest(source, discard(), hash);
  return hash;
}

/** A cap on the bytes `ingest` accepts, and the error it fails with beyond it. */
export interface IngestLimit {
  bytes: number;
  error: () => RegistryError;
}

/**
 * Streams `source` into `sink`, feeding every chunk to `hash` on the way; resolves with the number
 * of bytes once the sink has finished (its bytes are stored). Backpressure from the sink pauses the
 * source. Fails, destroying both streams, as soon as either fails, the source closes before its
 * end (`ERR_STREAM_PREMATURE_CLOSE`: the client went away), or more than `limit.bytes` arrive; the
 * failure is reported once the sink has closed (it must emit `close`, as Node's streams do).
 *
 * Written by hand rather than `pipeline(source, hashing transform, limit transform, sink)`: each
 * pipeline makes an AbortController, its signal and events and an end-of-stream watcher per stream,
 * and each transform a readable and a writable state. With one small push per request that was
 * 12–17% of a push's CPU (scratch A/B; docs/benchmark-history.md, "64 KiB blob pushes").
 */
export function ingest(source: Readable, sink: Writable, hash: Hash, limit?: IngestLimit): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let bytes = 0;
    let settled = false;
    const settle = (err: Error | undefined): void => {
      if (settled) return;
      settled = true;
      source.off('data', onData).off('end', onEnd).off('error', settle).off('close', onSourceClose);
      sink.off('drain', onDrain).off('finish', onFinish).off('error', settle).off('close', onSinkClose);
      if (err === undefined) {
        resolve(bytes);
        return;
      }
      // Errors either stream reports from now on are this one's echoes: the sink is ours alone, and
      // a request stream only emits errors to listeners it has.
      sink.on('error', ignore);
      source.destroy();
      // Settles once the sink has closed (a file sink's last write has landed and its file is
      // closed; an S3 sink has undone its parts), so a retry of the same upload never races it.
      if (sink.closed) reject(err);
      else sink.once('close', () => reject(err)).destroy();
    };
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length;
      if (limit !== undefined && bytes > limit.bytes) {
        settle(limit.error());
        return;
      }
      hash.update(chunk);
      if (!sink.write(chunk)) source.pause();
    };
    const onDrain = (): void => {
      source.resume();
    };
    const onEnd = (): void => {
      sink.end();
    };
    const onFinish = (): void => {
      settle(undefined);
    };
    const onSourceClose = (): void => {
      if (!source.readableEnded) settle(prematureClose('the body closed before its end: the client went away'));
    };
    const onSinkClose = (): void => {
      if (!sink.writableFinished) settle(prematureClose('the storage sink closed before it finished'));
    };
    if (source.destroyed && !source.readableEnded) {
      settle(prematureClose('the request body was closed before it was read'));
      return;
    }
    source.on('data', onData).on('end', onEnd).on('error', settle).on('close', onSourceClose);
    sink.on('drain', onDrain).on('finish', onFinish).on('error', settle).on('close', onSinkClose);
    if (source.readableEnded) sink.end();
    else source.resume();
  });
}

function ignore(): void {}

function prematureClose(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}
