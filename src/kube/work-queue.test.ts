import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkQueue } from './work-queue.js';

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
    const queue = new WorkQueue();
    queue.addAfter('ns/a', 60_000);
    queue.addAfter('ns/a', 10);
    queue.addAfter('ns/a', 30_000);
    assert.equal(await queue.get(), 'ns/a');
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

  it('a handler that throws is retried with backoff', async () => {
    const queue = new WorkQueue({ baseMs: 5, maxMs: 20 });
    let calls = 0;
    const running = queue.run(1, async () => {
      calls++;
      if (calls < 3) throw new Error('transient');
    });
    queue.add('ns/a');
    await until(() => calls === 3, 'three attempts');
    queue.shutDown();
    await running;
  });

  it('shutDown wakes idle workers and drops scheduled keys', async () => {
    const queue = new WorkQueue();
    queue.addAfter('ns/a', 50);
    const running = queue.run(2, async () => assert.fail('nothing should run'));
    queue.shutDown();
    await running;
    assert.equal(await queue.get(), undefined);
  });
});
