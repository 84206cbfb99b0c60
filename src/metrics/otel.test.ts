import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createOtelTracer, traceBudget } from './otel.js';

describe('the trace budget (tracing.maxPerSecond)', () => {
  it('admits a second’s worth at once, then as time passes', () => {
    let now = 1_000;
    const admit = traceBudget(2, () => now);
    assert.deepEqual([admit(), admit(), admit()], [true, true, false]);
    now += 499;
    assert.equal(admit(), false, 'less than half a second refills less than one trace');
    now += 1;
    assert.equal(admit(), true);
    now += 60_000;
    assert.deepEqual([admit(), admit(), admit()], [true, true, false], 'never more than a second’s worth saved up');
  });

  it('admits everything at 0', () => {
    const admit = traceBudget(0, () => 0);
    assert.ok(Array.from({ length: 100 }, admit).every(Boolean));
  });
});

describe('the OpenTelemetry tracer', () => {
  let collector: Server;
  let endpoint = '';
  before(async () => {
    collector = createServer((req, res) => req.resume().on('end', () => res.writeHead(200).end('{}')));
    await new Promise<void>((ok) => collector.listen(0, '127.0.0.1', () => ok()));
    endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`;
  });
  after(() => new Promise<void>((ok) => collector.close(() => ok())));

  it('starts at most maxPerSecond traces, and keeps the context only while one is in flight', async () => {
    let now = 0;
    const tracer = createOtelTracer({ endpoint, headers: {}, sampleRatio: 1, maxPerSecond: 1, serviceName: 't', exportTimeoutMs: 2000, now: () => now });
    try {
      const first = tracer.request('GET', {}, {});
      assert.ok(first, 'the first request is traced');
      assert.equal(tracer.request('GET', {}, {}), undefined, 'the second, in the same second, is not');
      const sampledParent = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
      assert.equal(tracer.request('GET', sampledParent, {}), undefined, 'a caller asking for a trace counts against the budget too');

      // Inside the traced request its span is current, in awaited continuations too.
      const inside = await first.run(async () => {
        await new Promise((resolve) => setImmediate(resolve));
        return tracer.recording();
      });
      assert.equal(inside, true);
      first.span.end();
      assert.equal(tracer.recording(), false, 'no span is current once the trace has ended');

      now += 1000;
      const next = tracer.request('GET', {}, {});
      assert.ok(next, 'a second later the budget allows one more');
      assert.equal(await next.run(async () => tracer.recording()), true, 'the context works again after it was switched off');
      next.span.end();
    } finally {
      await tracer.shutdown();
    }
  });
});
