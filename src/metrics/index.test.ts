import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { createMetrics, latencyBuckets, type Metrics } from './index.js';

/** The same calls on a family set: once on Berth's light families, once on prom-client's own. */
interface Families {
  requests: Counter<'route' | 'status'>;
  plain: Counter;
  inFlight: Gauge<'route'>;
  level: Gauge;
  duration: Histogram<'route'>;
  sizes: Histogram;
}

async function exercise(f: Families): Promise<void> {
  f.requests.inc({ route: 'manifest', status: '2xx' });
  f.requests.inc({ route: 'manifest', status: '2xx' }, 2);
  const child = f.requests.labels('blob', '4xx');
  child.inc();
  child.inc(5);
  f.requests.labels({ route: 'blob', status: '2xx' }).inc();
  f.plain.inc();
  f.plain.inc(0.5);
  f.inFlight.inc({ route: 'manifest' });
  f.inFlight.inc({ route: 'manifest' }, 3);
  f.inFlight.dec({ route: 'manifest' });
  f.inFlight.labels('blob').set(7);
  f.inFlight.labels({ route: 'upload' }).dec(2);
  f.level.set(42);
  f.level.inc();
  f.duration.observe({ route: 'manifest' }, 0.003);
  f.duration.observe({ route: 'manifest' }, 0.0009);
  f.duration.observe({ route: 'manifest' }, 31);
  f.duration.labels('blob').observe(0.25);
  f.duration.labels({ route: 'blob' }).observe(0.01);
  f.duration.zero({ route: 'upload' });
  f.sizes.observe(1);
  f.sizes.observe(0.5);
  f.sizes.observe(1000);
}

function ours(metrics: Metrics): Families {
  return {
    requests: metrics.counter('t_requests_total', 'Requests.', ['route', 'status']),
    plain: metrics.counter('t_plain_total', 'Plain.'),
    inFlight: metrics.gauge('t_in_flight', 'In flight.', ['route']),
    level: metrics.gauge('t_level', 'Level.'),
    duration: metrics.histogram('t_duration_seconds', 'Duration.', latencyBuckets, ['route']),
    sizes: metrics.histogram('t_sizes', 'Sizes.', [1, 10, 100]),
  };
}

function theirs(registry: Registry): Families {
  const registers = [registry];
  return {
    requests: new Counter({ name: 't_requests_total', help: 'Requests.', labelNames: ['route', 'status'], registers }),
    plain: new Counter({ name: 't_plain_total', help: 'Plain.', registers }),
    inFlight: new Gauge({ name: 't_in_flight', help: 'In flight.', labelNames: ['route'], registers }),
    level: new Gauge({ name: 't_level', help: 'Level.', registers }),
    duration: new Histogram({ name: 't_duration_seconds', help: 'Duration.', buckets: [...latencyBuckets], labelNames: ['route'], registers }),
    sizes: new Histogram({ name: 't_sizes', help: 'Sizes.', buckets: [1, 10, 100], registers }),
  };
}

describe('metrics: light families', () => {
  it("render byte for byte what prom-client's own families render after the same calls", async () => {
    const metrics = createMetrics();
    const reference = new Registry();
    await exercise(ours(metrics));
    await exercise(theirs(reference));
    assert.equal(await metrics.registry.metrics(), await reference.metrics());
    // The JSON form too, but for prom-client's empty exemplar slots (the text format has none).
    const json = async (r: Registry) =>
      JSON.parse(JSON.stringify(await r.getMetricsAsJSON(), (k, v: unknown) => (k === 'exemplar' ? undefined : v))) as unknown;
    assert.deepEqual(await json(metrics.registry), await json(reference));
  });

  it('count before the registry is first read and keep counting after it', async () => {
    const metrics = createMetrics();
    const reference = new Registry();
    const a = ours(metrics);
    const b = theirs(reference);
    a.requests.inc({ route: 'manifest', status: '2xx' });
    b.requests.inc({ route: 'manifest', status: '2xx' });
    assert.equal(await metrics.registry.metrics(), await reference.metrics());
    await exercise(a);
    await exercise(b);
    // A family declared after the first read is registered too.
    metrics.counter('t_late_total', 'Late.').inc(3);
    new Counter({ name: 't_late_total', help: 'Late.', registers: [reference] }).inc(3);
    assert.equal(await metrics.registry.metrics(), await reference.metrics());
  });

  it('the same name twice is the same family; a gauge collects before each read', async () => {
    const metrics = createMetrics();
    assert.equal(metrics.counter('t_x_total', 'X.'), metrics.counter('t_x_total', 'X.'));
    let reads = 0;
    metrics.gauge('t_reads', 'Reads.', ['kind'], async (g) => {
      reads++;
      g.set({ kind: 'a' }, reads);
    });
    await metrics.registry.metrics();
    assert.match(await metrics.registry.metrics(), /^t_reads\{kind="a"\} 2$/m);
  });

  it('refuses what prom-client refuses: undeclared labels, a counter going down, a wrong number of label values, bad names', () => {
    const metrics = createMetrics();
    const c = metrics.counter('t_c_total', 'C.', ['route']);
    assert.throws(() => c.inc({ other: 'x' } as never), /not included in initial labelset/);
    assert.throws(() => c.inc(-1), /not possible to decrease/);
    assert.throws(() => c.labels('a', 'b'), /Invalid number of arguments/);
    assert.throws(() => metrics.gauge('t_g', 'G.').set(Number.NaN), /not a valid number/);
    assert.throws(() => metrics.counter('bad-name', 'B.'), /Invalid metric name/);
    assert.throws(() => metrics.counter('t_ok_total', 'B.', ['bad-label']), /Invalid label name/);
  });
});
