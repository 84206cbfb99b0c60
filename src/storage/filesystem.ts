/**
 * Filesystem driver. Atomicity comes from rename(2) within one filesystem: writers write to the
 * final object only through `move`, which the registry uses after a digest check.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { BatchedFileWriter } from './batched-file-writer.js';
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
      stream.once('error', (err: NodeJS.ErrnoException) => fail(err.code === 'ENOENT' ? new StorageNotFoundError(path) : err));
    });
    return stream;
  }

  /** Opens first and creates the parent directories only when missing: most writes go into one that exists. */
  async write(path: string, options: { append: boolean }): Promise<Writable> {
    const full = this.resolvePath(path);
    const flags = options.append ? 'a' : 'w';
    try {
      return new BatchedFileWriter(await open(full, flags));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await mkdir(dirname(full), { recursive: true });
    return new BatchedFileWriter(await open(full, flags));
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
    await this.removeIfEmpty(dirname(source));
  }

  /**
   * Directories are this driver's way of holding a key's prefix; a prefix with no object left has no
   * directory, as in S3. Without this, every committed upload of the `directory` layout left its
   * `uploads/<id>/` behind (one empty directory per push until the upload sweep). Only the
   * immediate parent is tried: keys are `<prefix>/<name>/data`, and a parent still in use is simply
   * not empty. A top-level directory (`uploads`, `blobs`) stays: it is where the next object goes,
   * and an `rmdir` on every flat upload's move would cost what the flat layout saves. Best effort:
   * the move has already succeeded, so no failure here may fail it (the upload sweep removes what is
   * left).
   */
  private async removeIfEmpty(directory: string): Promise<void> {
    if (directory === this.root || dirname(directory) === this.root) return;
    await rmdir(directory).catch(() => undefined);
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

  /**
   * Serves a file with two reused buffers: while one is being written to the socket, the next
   * chunk is read into the other. A buffer is refilled only after its write callback fired (the
   * bytes left for the kernel), so no allocation per chunk, no garbage, and at most two chunks in
   * memory per transfer. Measured about 1.5x the throughput of createReadStream + pipe.
   */
  async streamTo(path: string, destination: Writable, ready: () => void, range?: ByteRange): Promise<void> {
    const full = this.resolvePath(path);
    let handle;
    try {
      handle = await open(full, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new StorageNotFoundError(path);
      throw err;
    }
    try {
      ready();
      let position = range?.start ?? 0;
      const end = range ? range.end + 1 : (await handle.stat()).size;
      const size = Math.min(readChunkBytes, Math.max(1, end - position));
      const buffers = [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)];
      const inFlight: Array<Promise<void>> = [Promise.resolve(), Promise.resolve()];
      const gone = new Promise<never>((_, fail) => destination.once('close', () => fail(new Error('destination closed'))));
      gone.catch(() => undefined);
      let turn = 0;
      while (position < end) {
        await Promise.race([inFlight[turn], gone]);
        const buffer = buffers[turn] as Buffer;
        const { bytesRead } = await handle.read(buffer, 0, Math.min(size, end - position), position);
        if (bytesRead === 0) throw new Error(`${path} is shorter than expected`);
        position += bytesRead;
        const chunk = bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
        inFlight[turn] = new Promise<void>((ok, fail) => destination.write(chunk, (err) => (err ? fail(err) : ok())));
        inFlight[turn]?.catch(() => undefined);
        turn ^= 1;
      }
      await Promise.race([Promise.all(inFlight), gone]);
    } finally {
      await handle.close();
    }
  }
}
