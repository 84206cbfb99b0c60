/** Waiting on a state in tests: polling with a bound, so a broken run fails instead of hanging. */
import assert from 'node:assert/strict';

/**
 * Polls `check` until it returns a value other than undefined/false (an error it throws ends the
 * wait); `timeoutMs` bounds a broken run and is never a timing assertion.
 */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
