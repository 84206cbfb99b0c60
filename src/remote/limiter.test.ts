import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RequestLimiter } from './limiter.js';

describe('RequestLimiter', () => {
  it('holds the request beyond `concurrency` until a slot is released, in order', async () => {
    const limiter = new RequestLimiter({ concurrency: 2 });
    const first = await limiter.acquire();
    const second = await limiter.acquire();
    const order: string[] = [];
    const third = limiter.acquire().then((release) => {
      order.push('third');
      return release;
    });
    const fourth = limiter.acquire().then((release) => {
      order.push('fourth');
      return release;
    });
    await new Promise((ok) => setImmediate(ok));
    assert.deepEqual(order, [], 'both wait while two are in flight');
    first();
    first(); // releasing twice frees one slot only
    (await third)();
    second();
    (await fourth)();
    assert.deepEqual(order, ['third', 'fourth']);
  });

  it('lets a burst of one second of requests start at once', async () => {
    const limiter = new RequestLimiter({ requestsPerSecond: 50, concurrency: 100 });
    let started = 0;
    const all = Array.from({ length: 50 }, () => limiter.acquire().then((release) => (started++, release)));
    await new Promise((ok) => setImmediate(ok));
    await new Promise((ok) => setImmediate(ok));
    assert.equal(started, 50);
    for (const release of await Promise.all(all)) release();
  });

  it('gives up waiting when the signal aborts, freeing the slot', async () => {
    const limiter = new RequestLimiter({ requestsPerSecond: 1, concurrency: 1 });
    (await limiter.acquire())();
    const controller = new AbortController();
    const waiting = limiter.acquire(controller.signal);
    controller.abort(new Error('stop'));
    await assert.rejects(waiting, /stop|abort/i);
    limiter.pause(0);
  });
});
