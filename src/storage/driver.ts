/**
 * The blob storage driver: a thin, dumb key -> bytes store. Everything clever (digests, dedupe,
 * links, GC, upload sessions) lives once in `registry/`; a driver only moves bytes.
 *
 * Paths are relative, `/`-separated, built by `storage/paths.ts` from validated digests and upload
 * ids. Drivers must still refuse anything that is not a plain relative path (`assertSafePath`).
 * Every driver passes the shared suite in `storage/driver-suite.ts`.
 */
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';

export interface FileInfo {
  size: number;
  modifiedAt: Date;
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

export class StorageNotFoundError extends Error {
  constructor(readonly path: string) {
    super(`storage path not found: ${path}`);
    this.name = 'StorageNotFoundError';
  }
}

export interface StorageDriver {
  /** A short name for logs and metrics (`filesystem`, `s3`). */
  readonly name: string;
  /** Streams the object (or the inclusive byte range of it). Throws StorageNotFoundError if absent. */
  read(path: string, range?: ByteRange): Promise<Readable>;
  /**
   * A writable for the object at `path`. With `append`, bytes go after the existing content (the
   * object is created if absent). Data is durable once the stream has finished; a destroyed stream
   * may leave partial content, which the caller deletes.
   */
  write(path: string, options: { append: boolean }): Promise<Writable>;
  /** Size and modification time, or undefined if the object does not exist. */
  stat(path: string): Promise<FileInfo | undefined>;
  /**
   * Atomically makes `from`'s content visible at `to` (replacing any object there) and removes
   * `from`. Readers of `to` see either the old or the new complete object, never a partial one.
   */
  move(from: string, to: string): Promise<void>;
  /** Deletes the object, or every object under the prefix `path/`. Absent paths are not an error. */
  delete(path: string): Promise<void>;
  /** Names of the direct children of a prefix (objects and sub-prefixes), sorted; [] if none. */
  list(prefix: string): Promise<string[]>;
  /** A URL a client may fetch the object from directly (S3 presigned GET), or undefined. */
  redirectURL(path: string): Promise<string | undefined>;
  /**
   * Optional fast path for serving an object: writes it (or the range) into `destination` without
   * ending it. Drivers that can do better than `read` + pipe (the filesystem reuses two buffers
   * and overlaps disk reads with socket writes) implement it; `sendObject` falls back otherwise.
   * Throws StorageNotFoundError if the object is absent; otherwise calls `ready()` once, after the
   * object is open and before the first byte is written (the caller sends its headers there).
   */
  streamTo?(path: string, destination: Writable, ready: () => void, range?: ByteRange): Promise<void>;
}

/** Writes an object into `destination` (not ending it), by the driver's fast path if it has one. */
export async function sendObject(driver: StorageDriver, path: string, destination: Writable, ready: () => void, range?: ByteRange): Promise<void> {
  if (driver.streamTo) return driver.streamTo(path, destination, ready, range);
  const source = await driver.read(path, range);
  ready();
  for await (const chunk of source) {
    if (!destination.write(chunk as Buffer)) await once(destination, 'drain');
  }
}

const safePath = /^[a-z0-9][a-z0-9._-]*(?:\/[a-z0-9][a-z0-9._-]*)*$/;

/** Defence in depth: registry paths are built from validated parts, but a driver re-checks. */
export function assertSafePath(path: string): void {
  if (!safePath.test(path) || path.split('/').some((part) => part === '.' || part === '..')) {
    throw new Error(`refusing unsafe storage path: ${JSON.stringify(path.slice(0, 200))}`);
  }
}
