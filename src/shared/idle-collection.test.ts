import assert from 'node:assert/strict';
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { collectWhenIdle, processProbe, type IdleCollectionProbe } from './idle-collection.js';
import { v8Collector } from './v8-gc.js';

const MiB = 1024 * 1024;

/** A probe whose utilization and retained bytes the test sets, counting collections. */
function fakeProbe(start: number): IdleCollectionProbe & { busy: number; held: number; collected: number; freeTo: number } {
  const probe = {
    busy: 0,
    held: start,
    collected: 0,
    /** What a collection leaves. */
    freeTo: start,
    utilization: () => probe.busy,
    retained: () => probe.held,
    collect: () => {
      probe.collected++;
      probe.held = probe.freeTo;
      return true;
    },
  };
  return probe;
}

describe('collectWhenIdle: full collections while the process is quiet', () => {
  it('collects once the heap has grown by growthBytes and the event loop was idle, and not before', () => {
    const probe = fakeProbe(20 * MiB);
    const heard: { before: number; after: number }[] = [];
    const idle = collectWhenIdle({ growthBytes: 8 * MiB, idleUtilization: 0.05, intervalMs: 60_000 }, (run) => heard.push(run), probe);
    try {
      probe.held = 27 * MiB; // grown by 7: not enough
      idle.tick();
      assert.equal(probe.collected, 0);
      probe.held = 29 * MiB;
      probe.busy = 0.4; // grown enough, but busy: a collection now would hold up requests
      idle.tick();
      assert.equal(probe.collected, 0);
      probe.busy = 0.01;
      probe.freeTo = 21 * MiB;
      idle.tick();
      assert.equal(probe.collected, 1);
      assert.deepEqual(heard, [{ before: 29 * MiB, after: 21 * MiB }]);
      // The baseline is now what the collection left: growth counts from there.
      probe.held = 28 * MiB;
      idle.tick();
      assert.equal(probe.collected, 1);
      probe.held = 29 * MiB;
      idle.tick();
      assert.equal(probe.collected, 2);
    } finally {
      idle.stop();
    }
  });

  it('counts growth from the lowest it saw, so a full collection V8 runs on its own resets it', () => {
    const probe = fakeProbe(30 * MiB);
    const idle = collectWhenIdle({ growthBytes: 8 * MiB, intervalMs: 60_000 }, undefined, probe);
    try {
      probe.held = 18 * MiB; // V8 collected on its own
      idle.tick();
      probe.held = 30 * MiB; // 12 over the low point, none over the start
      idle.tick();
      assert.equal(probe.collected, 1);
    } finally {
      idle.stop();
    }
  });

  it('tells onCollect of each collection', () => {
    const probe = fakeProbe(0);
    const heard: { before: number; after: number }[] = [];
    const idle = collectWhenIdle({ growthBytes: MiB, intervalMs: 60_000 }, (run) => heard.push(run), probe);
    try {
      probe.held = 2 * MiB;
      idle.tick();
      assert.deepEqual(heard, [{ before: 2 * MiB, after: 0 }]);
    } finally {
      idle.stop();
    }
  });

  it("runs a real full collection through this process's probe", async () => {
    assert.ok(v8Collector(), 'V8 gc is available on this runtime');
    const probe = processProbe();
    const utilization = probe.utilization();
    assert.ok(utilization >= 0 && utilization <= 1, `utilization ${utilization}`);
    assert.ok(probe.retained() > 0);
    const entries: PerformanceEntry[] = [];
    const observer = new PerformanceObserver((list) => entries.push(...list.getEntries()));
    observer.observe({ entryTypes: ['gc'] });
    // Always idle for this test: only the growth decides.
    let collections = 0;
    const idle = collectWhenIdle({ growthBytes: 4 * MiB, intervalMs: 60_000 }, () => collections++, Object.assign({}, probe, { utilization: () => 0 }));
    try {
      let garbage: number[][] | undefined = Array.from({ length: 2000 }, () => Array.from({ length: 1000 }, (_, i) => i + 0.5));
      assert.equal(garbage.length, 2000);
      garbage = undefined;
      idle.tick();
      assert.equal(collections, 1, 'one collection after ~16 MiB of arrays');
      // Entries arrive on a later turn of the event loop.
      for (let i = 0; i < 100 && !entries.some(isMajor); i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.ok(entries.some(isMajor), 'a full (major) collection ran');
    } finally {
      idle.stop();
      observer.disconnect();
    }
  });
});

function isMajor(entry: PerformanceEntry): boolean {
  return (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR;
}
