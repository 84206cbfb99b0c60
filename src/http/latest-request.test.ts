import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { v8Collector } from '../shared/v8-gc.js';
import { LatestRequest } from './latest-request.js';

/** A request and a response of the latest's shape; weak references to both. */
function exchange(n: number): { req: IncomingMessage; res: ServerResponse; refs: WeakRef<object>[] } {
  const req = { n } as unknown as IncomingMessage;
  const res = { n } as unknown as ServerResponse;
  return { req, res, refs: [new WeakRef(req), new WeakRef(res)] };
}

/** A full collection in a later turn (a WeakRef keeps its target alive until its turn ends). */
async function collectLater(): Promise<void> {
  const collect = v8Collector();
  assert.ok(collect, 'V8 gc is available on this runtime');
  await new Promise((resolve) => setImmediate(resolve));
  collect();
}

describe('latest request', () => {
  it('keeps the latest request and response reachable, and only those', async () => {
    const latest = new LatestRequest();
    assert.equal(new LatestRequest().kept, undefined, 'nothing kept before the first request');
    const keep = (n: number): WeakRef<object>[] => {
      const { req, res, refs } = exchange(n);
      latest.keep(req, res);
      return refs;
    };
    const first = keep(1);
    await collectLater();
    assert.ok(
      first.every((ref) => ref.deref() !== undefined),
      'kept after the caller let go of it',
    );
    const second = keep(2);
    await collectLater();
    assert.ok(
      first.every((ref) => ref.deref() === undefined),
      'the previous request is no longer kept',
    );
    assert.deepEqual(
      second.map((ref) => ref.deref()),
      [latest.kept?.req, latest.kept?.res],
    );
  });
});
