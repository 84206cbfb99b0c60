import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ThrottledSave } from './throttle.js';

/** Resolves when `check` holds, polling; a bound on a broken saver, not a timing assertion. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`never: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Collects save failures (none are expected unless a test says so). */
function failures(): { list: unknown[]; report: (err: unknown) => void } {
  const list: unknown[] = [];
  return { list, report: (err) => list.push(err) };
}

describe('ThrottledSave', () => {
  it('saves the first value at once and, of a burst, only the last one after the pause', async () => {
    const saved: number[] = [];
    const errors = failures();
    const saver = new ThrottledSave<number>(async (n) => void saved.push(n), 20, errors.report);
    for (let i = 1; i <= 100; i++) saver.offer(i);
    await until(() => saved.length === 2, 'the trailing save');
    assert.deepEqual(saved, [1, 100]);
    assert.deepEqual(errors.list, []);
  });

  it('flush() saves what is pending without waiting for the pause, one save at a time', async () => {
    const saved: number[] = [];
    let concurrent = 0;
    let maxConcurrent = 0;
    const errors = failures();
    const saver = new ThrottledSave<number>(
      async (n) => {
        maxConcurrent = Math.max(maxConcurrent, ++concurrent);
        await new Promise((resolve) => setTimeout(resolve, 2));
        saved.push(n);
        concurrent--;
      },
      3_600_000,
      errors.report,
    );
    saver.offer(1);
    saver.offer(2);
    await saver.flush();
    assert.deepEqual(saved, [1, 2]);
    assert.equal(maxConcurrent, 1);
    assert.deepEqual(errors.list, []);
  });

  it('close() drops what is pending and saves nothing more', async () => {
    const saved: number[] = [];
    const saver = new ThrottledSave<number>(async (n) => void saved.push(n), 3_600_000, failures().report);
    saver.offer(1);
    saver.offer(2);
    await saver.close();
    saver.offer(3);
    await saver.flush();
    assert.deepEqual(saved, [1]);
  });

  it('reports a failed save and goes on with the next value', async () => {
    const errors: unknown[] = [];
    const saved: number[] = [];
    const saver = new ThrottledSave<number>(
      async (n) => {
        if (n === 1) throw new Error('busy');
        saved.push(n);
      },
      1,
      (err) => errors.push(err),
    );
    saver.offer(1);
    saver.offer(2);
    await saver.flush();
    assert.equal(errors.length, 1);
    assert.deepEqual(saved, [2]);
  });
});
