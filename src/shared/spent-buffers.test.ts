import assert from 'node:assert/strict';
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { runInNewContext } from 'node:vm';
import { paceBytes, pacingAvailable, spentBytes } from './spent-buffers.js';

/** Young collections that ran while `work` did (Node reports each as a `gc` performance entry). */
async function minorCollectionsDuring(work: () => void): Promise<number> {
  const entries: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => entries.push(...list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  work();
  // Entries are delivered after the collections, on a later turn of the event loop.
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  return entries.filter((e) => (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR).length;
}

describe('spentBytes: young collections paced by spent I/O bytes', () => {
  it('is available on this runtime, without a gc global for anyone else', () => {
    assert.equal(pacingAvailable(), true);
    assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined');
    // The flag is off again: a context made later has no gc either.
    assert.equal(runInNewContext('typeof gc'), 'undefined');
  });

  it('runs one young collection per paceBytes spent, and none below it', async () => {
    const rounds = 20;
    // Nothing here allocates enough for V8 to collect on its own: each collection is the pacer's.
    const paced = await minorCollectionsDuring(() => {
      for (let i = 0; i < rounds; i++) spentBytes(paceBytes);
    });
    assert.ok(paced >= rounds, `${paced} young collections for ${rounds} × paceBytes`);
    const below = await minorCollectionsDuring(() => {
      for (let i = 0; i < 64; i++) spentBytes(Math.floor(paceBytes / 128));
    });
    assert.ok(below < 2, `${below} young collections for half of paceBytes`);
  });
});
