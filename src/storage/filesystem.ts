/**
 * Filesystem driver. Atomicity comes from rename(2) within one filesystem: writers write to the
 * final object only through `move`, which the registry uses after a digest check.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { assertSafePath, StorageNotFoundError, type ByteRange, type FileInfo, type StorageDriver } from './driver.js';

/** Large reads amortise syscalls on big layers; 1 MiB keeps per-stream memory small and bounded. */
const readChunkBytes = 1024 * 1024;

export class FilesystemDriver implements StorageDriver {
  readonly name = 'filesystem';
  private readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  private resolvePath(path: string): string {
    assertSafePath(path);
    const full = join(this.root, path);
    if (!full.startsWith(this.root + sep)) throw new Error('refusing path outside the storage root');
    return full;
  }

  async read(path: string, range?: ByteRange): Promise<Readable> {
    const full = this.resolvePath(path);
    const stream = createReadStream(full, {
      highWaterMark: readChunkBytes,
      ...(range ? { start: range.start, end: range.end } : {}),
    });
    // Surface ENOENT as a typed error before the caller commits to a response.
    await new Promise<void>((ok, fail) => {
      stream.once('open', () => ok());
      stream.once('error', (err: NodeJS.ErrnoException) =>
        fail(err.code === 'ENOENT' ? new StorageNotFoundError(path) : err),
      );
    });
    return stream;
  }

  async write(path: string, options: { append: boolean }): Promise<Writable> {
    const full = this.resolvePath(path);
    await mkdir(dirname(full), { recursive: true });
    const stream = createWriteStream(full, { flags: options.append ? 'a' : 'w', highWaterMark: readChunkBytes });
    await new Promise<void>((ok, fail) => {
      stream.once('open', () => ok());
      stream.once('error', fail);
    });
    return stream;
  }

  async stat(path: string): Promise<FileInfo | undefined> {
    try {
      const info = await stat(this.resolvePath(path));
      return info.isFile() ? { size: info.size, modifiedAt: info.mtime } : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async move(from: string, to: string): Promise<void> {
    const source = this.resolvePath(from);
    const target = this.resolvePath(to);
    await mkdir(dirname(target), { recursive: true });
    try {
      await rename(source, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new StorageNotFoundError(from);
      throw err;
    }
  }

  async delete(path: string): Promise<void> {
    await rm(this.resolvePath(path), { recursive: true, force: true });
  }

  async list(prefix: string): Promise<string[]> {
    try {
      const entries = await readdir(this.resolvePath(prefix));
      return entries.sort();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw err;
    }
  }

  async redirectURL(): Promise<string | undefined> {
    return undefined;
  }
}
