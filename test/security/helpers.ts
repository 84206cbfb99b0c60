/**
 * Helpers for the attacker-input tests: a bound on how long the event loop was blocked while some
 * requests ran (the server runs in this process, so a request that stalls it stalls the monitor).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * Runs `work` and returns its value with the longest event-loop delay seen meanwhile, in ms. The
 * bound tests assert is loose (about a second) where the bug it guards against costs minutes.
 */
export async function withLoopDelay<T>(work: () => Promise<T>): Promise<{ value: T; maxDelayMs: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  try {
    const value = await work();
    // One more turn, so a block at the very end is sampled too.
    await new Promise((ok) => setTimeout(ok, 30));
    return { value, maxDelayMs: histogram.max / 1e6 };
  } finally {
    histogram.disable();
  }
}

/** A loose bound for "the event loop was never blocked" (the stalls guarded against last minutes). */
export const loopDelayBoundMs = 1000;
