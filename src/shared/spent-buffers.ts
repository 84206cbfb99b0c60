/**
 * Young collections paced by the bytes of I/O buffers that have been used up.
 *
 * Node hands every piece of a request body to JavaScript in a fresh buffer of up to 64 KiB,
 * allocated with malloc outside the V8 heap; only a young collection frees it, and V8 forces one
 * for such buffers only after 32 MiB of them (twice its default semi-space maximum, whatever
 * `--max-semi-space-size` says). So a large upload always had ~32 MiB of spent pieces waiting,
 * glibc kept what they freed, and the first large push raised a process's RSS by 35–40 MiB for
 * good (a minimal Node server that hashes and writes a 1 GiB PUT does the same: 46 → 80 MiB).
 *
 * `spentBytes(n)` counts the pieces where the storage sinks let go of them: the file sink once a
 * batch has been written (`storage/batched-file-writer.ts`), the S3 sink once it has copied them
 * into a part buffer, or once S3 has stored a part it sent without a copy (`storage/s3-upload.ts`).
 * Every ingest (uploads, imports, sync, cache fills) writes through one of them. After every
 * `paceBytes` of them it runs a young collection, which frees the pieces while they are still few.
 * Counting where they are let go of matters: a young collection that finds a piece still held (the
 * file sink keeps one for up to two 2 MiB batches) copies it, and one that finds it held twice
 * moves it to the old generation, where only a full collection frees it. Paced by the bytes hashed
 * instead, two 1 GiB pushes left 36–40 MiB in glibc's heap; paced here, 11–14.
 * With 2 MiB semi-spaces and a request path that keeps little alive, a young collection costs a
 * fraction of a millisecond; measured on a 1 GiB push, RSS after it 115–118 → 89–91 MiB for ~255
 * more young collections (~80 ms of CPU on a main thread idle three quarters of the push).
 *
 * The collections use V8's `gc` (`v8-gc.ts`); where a runtime does not have it, pacing is off and
 * V8 collects as before.
 */
import { v8Collector } from './v8-gc.js';

/** Bytes of spent buffers between two young collections: the RSS a large transfer holds, give or take its own buffers in flight. */
export const paceBytes = 4 * 1024 * 1024;

let spent = 0;
let counted = 0;

/**
 * Counts `bytes` of I/O buffers the caller no longer needs; every `paceBytes` of them, a young
 * collection. Cheap when it does not collect: an addition and a comparison.
 */
export function spentBytes(bytes: number): void {
  counted += bytes;
  spent += bytes;
  if (spent < paceBytes) return;
  spent = 0;
  v8Collector()?.({ type: 'minor' });
}

/** Whether young collections can be paced in this process (for tests and diagnostics). */
export function pacingAvailable(): boolean {
  return v8Collector() !== undefined;
}

/** Every byte counted so far in this process (for tests and diagnostics). */
export function spentTotal(): number {
  return counted;
}
