import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkQueue, type QueueTimers } from './work-queue.js';

/**
 * Timers the test fires by hand: the queue's delays are read from here, not measured. `advance`
 * moves the clock and runs what fell due, earliest first.
 */
class ManualTimers implements QueueTimers {
  private time = 0;
  private readonly timers: Array<{ due: number; delayMs: number; run: () => void; state: 'pending' | 'fired' | 'cancelled' }> = [];

  now(): number {
    return this.time;
  }

  setTimer(run: () => void, delayMs: number): () => void {
    const timer = { due: this.time + delayMs, delayMs, run, state: 'pending' as 'pending' | 'fired' | 'cancelled' };
    this.timers.push(timer);
    return () => {
      if (timer.state === 'pending') timer.state = 'cancelled';
    };
  }

  /** The delays of the timers still pending, in the order they were set. */
  pending(): number[] {
    return this.timers.filter((t) => t.state === 'pending').map((t) => t.delayMs);
  }

  advance(ms: number): void {
    this.time += ms;
    for (;;) {
      const due = this.timers.filter((t) => t.state === 'pending' && t.due <= this.time).sort((a, b) => a.due - b.due)[0];
      if (!due) return;
      due.state = 'fired';
      due.run();
    }
  }
}

/** Lets the workers take what was queued and run their handlers up to their next real wait. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** Resolves when `check` holds, polling; a bound on a broken queue, not a timing assertion. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`never: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('WorkQueue', () => {
  it('holds a waiting key once, however often it is added', async () => {
    const queue = new WorkQueue();
    for (let i = 0; i < 5; i++) queue.add('ns/a');
    queue.add('ns/b');
    assert.equal(queue.length, 2);
    assert.equal(await queue.get(), 'ns/a');
    assert.equal(await queue.get(), 'ns/b');
    queue.shutDown();
  });

  it('never hands a key to two workers; one added while processed runs again afterwards', async () => {
    const queue = new WorkQueue();
    queue.add('ns/a');
    const key = await queue.get();
    assert.equal(key, 'ns/a');
    queue.add('ns/a');
    queue.add('ns/a');
    assert.equal(queue.length, 0, 'not queued while processing');
    queue.done('ns/a');
    assert.equal(queue.length, 1, 'queued once when done');
    queue.shutDown();
  });

  it('runs different keys in parallel, each key serially, and every added state is seen', async () => {
    const queue = new WorkQueue({ baseMs: 1, maxMs: 10 });
    let active = 0;
    let maxActive = 0;
    const perKey = new Map<string, number>();
    const runs: string[] = [];
    const running = queue.run(3, async (key) => {
      perKey.set(key, (perKey.get(key) ?? 0) + 1);
      assert.equal(perKey.get(key), 1, `${key} processed by two workers at once`);
      active++;
      maxActive = Math.max(maxActive, active);
      await new Promise((resolve) => setTimeout(resolve, 20));
      runs.push(key);
      active--;
      perKey.set(key, (perKey.get(key) ?? 1) - 1);
    });
    for (const key of ['a', 'b', 'c']) queue.add(key);
    await new Promise((resolve) => setTimeout(resolve, 5));
    queue.add('a'); // while a is processed: one more run of a
    await until(() => runs.length === 4, 'four runs');
    queue.shutDown();
    await running;
    assert.equal(maxActive, 3);
    assert.deepEqual(runs.filter((k) => k === 'a').length, 2);
  });

  it('keeps the earliest of several scheduled times', async () => {
    const timers = new ManualTimers();
    const queue = new WorkQueue(undefined, timers);
    queue.addAfter('ns/a', 60_000);
    queue.addAfter('ns/a', 10);
    queue.addAfter('ns/a', 30_000);
    assert.deepEqual(timers.pending(), [10], 'one timer, at the earliest time');
    timers.advance(9);
    assert.equal(queue.length, 0, 'queued before its time');
    timers.advance(1);
    assert.equal(queue.length, 1);
    assert.equal(await queue.get(), 'ns/a');
    timers.advance(60_000);
    assert.equal(queue.length, 0, 'the later times were dropped, not kept as well');
    queue.shutDown();
  });

  it('backs off exponentially per key, up to the maximum, and forget() starts over', () => {
    const queue = new WorkQueue({ baseMs: 100, maxMs: 1000 });
    assert.deepEqual(
      [1, 2, 3, 4, 5].map(() => queue.addRateLimited('ns/a')),
      [100, 200, 400, 800, 1000],
    );
    assert.equal(queue.addRateLimited('ns/b'), 100, 'per key');
    assert.equal(queue.retries('ns/a'), 5);
    queue.forget('ns/a');
    assert.equal(queue.addRateLimited('ns/a'), 100);
    queue.shutDown();
  });

  it('a handler that throws is retried with backoff: doubling per failure of its key, capped, and from the start after a success', async () => {
    const timers = new ManualTimers();
    const queue = new WorkQueue({ baseMs: 100, maxMs: 400 }, timers);
    // What each call for a key does: throw, or succeed and forget() the key as the controller does.
    const script: Record<string, Array<'fail' | 'ok'>> = { 'ns/a': ['fail', 'fail', 'fail', 'fail', 'ok', 'fail', 'ok'], 'ns/b': ['fail', 'ok'] };
    const calls: string[] = [];
    const running = queue.run(2, async (key) => {
      const outcome = script[key]?.[calls.filter((k) => k === key).length];
      calls.push(key);
      if (outcome !== 'ok') throw new Error(`attempt ${calls.length} of ${key} fails`);
      queue.forget(key);
    });
    const count = (key: string) => calls.filter((k) => k === key).length;
    /** Runs the one pending retry of `key`: not a millisecond before `delayMs`, then once. */
    const retryAfter = async (key: string, delayMs: number) => {
      const before = count(key);
      timers.advance(delayMs - 1);
      await settle();
      assert.equal(count(key), before, `${key} retried before its ${delayMs} ms backoff`);
      timers.advance(1);
      await settle();
      assert.equal(count(key), before + 1, `${key} not retried after ${delayMs} ms`);
    };

    queue.add('ns/a');
    await settle();
    assert.deepEqual(timers.pending(), [100], 'the first failure waits the base delay');
    await retryAfter('ns/a', 100);
    assert.deepEqual(timers.pending(), [200], 'the second failure waits twice as long');
    queue.add('ns/b');
    await settle();
    assert.deepEqual(timers.pending(), [200, 100], 'another key has its own backoff');
    await retryAfter('ns/b', 100);
    await retryAfter('ns/a', 100); // the rest of its 200 ms: 100 had passed when ns/b was added
    assert.deepEqual(timers.pending(), [400]);
    await retryAfter('ns/a', 400);
    assert.deepEqual(timers.pending(), [400], 'capped at maxMs, not 800');
    await retryAfter('ns/a', 400);
    assert.deepEqual(timers.pending(), [], 'the fifth attempt succeeded: no retry');
    assert.equal(queue.retries('ns/a'), 0);

    queue.add('ns/a');
    await settle();
    assert.deepEqual(timers.pending(), [100], 'after a success the next failure starts from the base delay');
    await retryAfter('ns/a', 100);
    assert.deepEqual(timers.pending(), []);
    assert.deepEqual([count('ns/a'), count('ns/b')], [7, 2]);
    queue.shutDown();
    await running;
  });

  it('shutDown wakes idle workers and drops scheduled keys', async () => {
    const timers = new ManualTimers();
    const queue = new WorkQueue(undefined, timers);
    queue.addAfter('ns/a', 50);
    const running = queue.run(2, async () => assert.fail('nothing should run'));
    queue.shutDown();
    await running;
    assert.deepEqual(timers.pending(), [], 'the scheduled key is cancelled');
    assert.equal(await queue.get(), undefined);
  });
});
