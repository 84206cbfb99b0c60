/**
 * V8's `gc` function, for the two places Berth asks for a collection itself: young collections
 * paced by spent I/O buffers (`spent-buffers.ts`) and full collections while the process is idle
 * (`idle-collection.ts`).
 *
 * `gc` exists only with `--expose-gc`. The flag is turned on for as long as it takes to create one
 * private context (whose global is the only one that gets `gc`) and off again, so no other code,
 * and no global of this process, sees it. Where that fails (a runtime without the flag), this
 * answers undefined and both callers leave collecting to V8.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * What each kind of call collects on Node 20 (checked with `--trace-gc`): `{ type: 'minor' }` a
 * young collection; no argument a full one (`{ type: 'major' }` runs a young collection there).
 */
export type Collect = (options?: { type: 'minor' }) => void;

let collect: Collect | undefined | null = null;

/** V8's `gc`, taken once per process; undefined where it cannot be had. */
export function v8Collector(): Collect | undefined {
  if (collect === null) collect = takeCollector();
  return collect;
}

function takeCollector(): Collect | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
    return typeof gc === 'function' ? (options) => (options ? (gc as Collect)(options) : (gc as Collect)()) : undefined;
  } catch {
    return undefined;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
