/**
 * Full collections while the process is idle, once enough has piled up since the last one.
 *
 * Why: V8 runs a full collection when its old generation reaches a limit set by the last one
 * (three times what survived it, with the `--heap-growing-percent=200` Berth runs with), not when
 * the process has time. Between two of them the old generation fills with objects of requests
 * that lived across two young collections (a push in flight, a pull's stream) and with the
 * wrappers of spent body buffers promoted before their pace came (`spent-buffers.ts`); each holds
 * its RSS until that limit is reached, however long the registry then idles. Chrome tells V8 when
 * a page is idle; Node does not, and V8's own memory reducer waits eight seconds of low
 * allocation after a full collection before it tries. So a registry serving CI bursts kept the
 * memory of its last burst through the quiet between them.
 *
 * Rule: every `intervalMs`, if the event loop was busy for at most `idleUtilization` of that
 * interval and the V8 heap in use plus external memory has grown by `growthBytes` since the last
 * full collection (or since the lowest it was seen at, which a full collection V8 runs on its
 * own brings down), run one full collection. A request that arrives during it waits for it: with
 * 30 MiB live it takes 23–37 ms here (scratch, 200,000 small objects; Berth's live heap is 15–25
 * MiB), and it runs only after a quiet interval, at most once a second.
 *
 * Its other cost: `gc` collects atomically, and an atomic collection frees the hidden classes of
 * objects none of which is alive, which V8's incremental ones keep a while. With no request in
 * flight those are the classes of every per-request object, so the optimised code specialised on
 * them is thrown away and compiled again during the next burst (docs/operations.md, "Memory").
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { v8Collector } from './v8-gc.js';

export interface IdleCollectionOptions {
  /** How often to look, in milliseconds. */
  intervalMs?: number;
  /** The event-loop utilization (0–1) over the last interval at or below which the process is idle. */
  idleUtilization?: number;
  /** How much the heap in use plus external memory must have grown since the last full collection. */
  growthBytes?: number;
}

/** What the collector reads and does; tests give their own. */
export interface IdleCollectionProbe {
  /** The event-loop utilization since the previous call (0–1). */
  utilization(): number;
  /** Bytes the V8 heap uses plus external memory (ArrayBuffer backing stores, body buffers). */
  retained(): number;
  /** Runs a full collection; false if it could not (no `gc` in this runtime). */
  collect(): boolean;
}

export interface IdleCollection {
  /** Looks once, as the timer does (for tests). */
  tick(): void;
  stop(): void;
}

const idleCollectionDefaults = { intervalMs: 1000, idleUtilization: 0.05, growthBytes: 8 * 1024 * 1024 } as const;

/**
 * The probe of this process: Node's event-loop utilization, V8's heap statistics, V8's `gc`. The
 * `gc` is taken at the first collection, not at start (taking it creates a V8 context); where this
 * runtime has none, `collect` answers false and nothing is collected.
 */
export function processProbe(): IdleCollectionProbe {
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  return {
    utilization: () => {
      const now = performance.eventLoopUtilization();
      const since = performance.eventLoopUtilization(now, last).utilization;
      last = now;
      return since;
    },
    retained: () => {
      const heap = getHeapStatistics();
      return heap.used_heap_size + heap.external_memory;
    },
    collect: () => {
      const gc = v8Collector();
      gc?.();
      return gc !== undefined;
    },
  };
}

/**
 * Starts looking every `intervalMs` (an unref'd timer: it never keeps the process alive).
 * `onCollect` hears of each collection: bytes retained before and after (the server logs it).
 */
export function collectWhenIdle(
  options: IdleCollectionOptions = {},
  onCollect?: (run: { before: number; after: number }) => void,
  probe: IdleCollectionProbe = processProbe(),
): IdleCollection {
  const intervalMs = options.intervalMs ?? idleCollectionDefaults.intervalMs;
  const idleUtilization = options.idleUtilization ?? idleCollectionDefaults.idleUtilization;
  const growthBytes = options.growthBytes ?? idleCollectionDefaults.growthBytes;
  let baseline = probe.retained();
  const tick = (): void => {
    const idle = probe.utilization() <= idleUtilization;
    const held = probe.retained();
    if (held < baseline) baseline = held;
    if (!idle || held - baseline < growthBytes) return;
    const collected = probe.collect();
    baseline = probe.retained();
    if (collected) onCollect?.({ before: held, after: baseline });
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return { tick, stop: () => clearInterval(timer) };
}
