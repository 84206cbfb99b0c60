/**
 * A blob being fetched from an upstream while it is stored and while clients read it: the upstream
 * body runs through `tap()` into the registry's upload commit path (which hashes it and makes it
 * visible only once the digest matched), and every client pulling the blob meanwhile reads the same
 * bytes from a window kept in memory. Written by hand: it is a broadcast with a bounded buffer and a
 * fallback to storage, which no stream library offers.
 *
 * Contract:
 * - **The upstream sets the pace**, not the clients: the fill runs as fast as the upstream sends and
 *   storage takes, whether or not anyone reads, so a slow client cannot stall the others (or the
 *   caching). Once started, a fill completes even when every client has gone.
 * - **Memory is bounded**: the window holds bytes only as long as an attached reader still needs
 *   them (or, before the first reader attaches, from the start), never more than `windowBytes`.
 *   A reader that falls further behind is detached and, once the blob is stored, reads the rest
 *   from storage.
 * - **Nothing unverified is delivered in full**: the last byte is held back until the commit path
 *   has verified the digest and stored the blob. When the fill fails (digest or size mismatch, the
 *   upstream connection lost), every reader fails: its response is cut short, so the client sees an
 *   incomplete body, never a complete wrong one.
 */
import { Transform, type TransformCallback, type Writable } from 'node:stream';

/** An inclusive byte range, as `Range` requests give it. */
export interface FillRange {
  start: number;
  end: number;
}

/** Bytes the tap buffers between the upstream body and the commit path. */
const tapBufferBytes = 1024 * 1024;

interface Reader {
  pos: number;
}

export class BlobFill {
  /** Absolute offset of the first byte still in the window. */
  private base = 0;
  private readonly chunks: Buffer[] = [];
  private readonly readers = new Set<Reader>();
  private waiting: Array<() => void> = [];
  private state: 'running' | 'done' | 'failed' = 'running';
  private error: Error | undefined;
  /** Settles when the blob is stored (or the fill failed). */
  readonly settled: Promise<void>;
  private settle!: { ok: () => void; fail: (err: Error) => void };
  /** Bytes received from the upstream so far. */
  received = 0;

  constructor(
    readonly digest: string,
    /** The upstream's Content-Length, when it sent one. */
    readonly size: number | undefined,
    private readonly windowBytes: number,
  ) {
    this.settled = new Promise<void>((ok, fail) => (this.settle = { ok, fail }));
    // A fill nobody reads any more must not make its failure an unhandled rejection.
    this.settled.catch(() => undefined);
  }

  /** The pass-through to put between the upstream body and the commit path: every chunk also enters the window. */
  tap(): Transform {
    return new Transform({
      // Like the storage driver's reads: large buffers between the upstream and the commit path amortise pauses.
      highWaterMark: tapBufferBytes,
      transform: (chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback) => {
        this.chunks.push(chunk);
        this.received += chunk.length;
        this.trim();
        this.notify();
        callback(null, chunk);
      },
    });
  }

  /** The commit path verified and stored the blob: the held-back bytes are released. */
  complete(): void {
    if (this.state !== 'running') return;
    this.state = 'done';
    this.settle.ok();
    this.notify();
    this.trim();
  }

  /** The fill failed: every reader fails with `err`. */
  fail(err: Error): void {
    if (this.state !== 'running') return;
    this.state = 'failed';
    this.error = err;
    this.chunks.length = 0;
    this.settle.fail(err);
    this.notify();
  }

  get failed(): boolean {
    return this.state === 'failed';
  }

  /**
   * Writes the blob (or `range`) into `destination`, not ending it, calling `ready()` first (send the
   * headers there). Bytes come from the window while this reader keeps up; if it falls behind the
   * window, the rest is read with `readStored` once the blob is stored. Rejects when the fill fails
   * or the destination closes.
   */
  async pipe(destination: Writable, range: FillRange | undefined, ready: () => void, readStored: (range: FillRange) => Promise<void>): Promise<void> {
    const reader: Reader = { pos: range?.start ?? 0 };
    const last = range?.end;
    this.readers.add(reader);
    try {
      ready();
      for (;;) {
        if (this.state === 'failed') throw this.error as Error;
        const end = last !== undefined ? last + 1 : this.state === 'done' ? this.received : Number.POSITIVE_INFINITY;
        if (reader.pos >= end) return;
        if (reader.pos < this.base) {
          // Fell behind the window: the rest comes from storage once the blob is there.
          this.readers.delete(reader);
          this.trim();
          await waitWhileOpen(destination, this.settled);
          await readStored({ start: reader.pos, end: last ?? this.received - 1 });
          return;
        }
        // The last byte stays back until the blob is verified and stored.
        const available = this.state === 'done' ? this.received : this.received - 1;
        if (reader.pos >= available) {
          await waitWhileOpen(destination, this.changed());
          continue;
        }
        const chunk = this.slice(reader.pos, Math.min(available, end));
        reader.pos += chunk.length;
        this.trim();
        if (destination.destroyed) throw prematureClose();
        if (!destination.write(chunk)) await waitWhileOpen(destination, drained(destination));
      }
    } finally {
      this.readers.delete(reader);
      this.trim();
    }
  }

  /** The window's bytes from `from` (at least one, at most to the end of its chunk, before `to`). */
  private slice(from: number, to: number): Buffer {
    let offset = this.base;
    for (const chunk of this.chunks) {
      const chunkEnd = offset + chunk.length;
      if (from < chunkEnd) return chunk.subarray(from - offset, Math.min(chunk.length, to - offset));
      offset = chunkEnd;
    }
    throw new Error(`blob fill ${this.digest}: offset ${from} is not in the window`);
  }

  /**
   * Drops what no attached reader needs: bytes every reader has passed (before any reader attached,
   * nothing), and the oldest bytes beyond `windowBytes` whoever needs them (those readers are then
   * behind and read from storage). Once the fill is done and nobody reads, everything.
   */
  private trim(): void {
    let keepFrom = this.base;
    if (this.readers.size > 0) keepFrom = Math.min(...[...this.readers].map((r) => r.pos));
    else if (this.state !== 'running') keepFrom = this.received;
    while (this.chunks.length > 0) {
      const first = this.chunks[0] as Buffer;
      const firstEnd = this.base + first.length;
      if (firstEnd <= keepFrom || this.received - this.base > this.windowBytes) {
        this.chunks.shift();
        this.base = firstEnd;
      } else break;
    }
  }

  private changed(): Promise<void> {
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private notify(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const wake of waiting) wake();
  }
}

/** Waits for `promise`, or rejects as soon as `destination` closes or fails (the client went away). */
function waitWhileOpen<T>(destination: Writable, promise: Promise<T>): Promise<T> {
  if (destination.destroyed) return Promise.reject(prematureClose());
  return new Promise<T>((resolve, reject) => {
    const onClose = () => {
      cleanup();
      reject(prematureClose());
    };
    const cleanup = () => {
      destination.off('close', onClose);
      destination.off('error', onClose);
    };
    destination.once('close', onClose);
    destination.once('error', onClose);
    promise.then(
      (value) => {
        cleanup();
        resolve(value);
      },
      (err: unknown) => {
        cleanup();
        reject(err);
      },
    );
  });
}

function drained(destination: Writable): Promise<void> {
  return new Promise<void>((resolve) => destination.once('drain', resolve));
}

function prematureClose(): Error {
  return Object.assign(new Error('the client went away'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}
