/**
 * The server's Prometheus metrics: one registry per app (never prom-client's global one, so
 * several apps can run in one process), created by `createApp` and handed to every service that
 * counts something. A feature declares its own families where it counts (`metrics.counter(...)`
 * in its constructor), so names live beside the code that moves them; `GET /metrics` renders the
 * registry.
 *
 * Naming (Prometheus conventions): `berth_<area>_<what>_<unit>` with `_total` for counters and base
 * units (seconds, bytes). Labels are small closed sets (route templates, results, reasons, grant
 * types): never a repository name, a tag, a digest, a principal or a raw path, so cardinality stays
 * bounded whatever clients send.
 *
 * Memory at start (issue 13): families are the light ones of `families.ts`, which count from the
 * start without prom-client; prom-client itself (its `Registry`, the text format, Node's process
 * metrics) is loaded when `registry` is first read, i.e. at the first scrape. From then on the
 * families are registered in it and it renders them. Of Node's process metrics, the gauges (memory,
 * handles, start time) are read at each scrape; the CPU-seconds counters, event-loop lag and GC
 * histograms count from that first scrape (as after a restart: `rate()` reads them correctly).
 */
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LightCounter, LightGauge, LightHistogram } from './families.js';

export interface Metrics {
  /** The prom-client registry with every family of this app; reading it loads prom-client (a scrape). */
  readonly registry: Registry;
  /** `collect` (optional) sets the value at scrape time, for counts kept elsewhere (a database). */
  counter<L extends string = never>(name: string, help: string, labelNames?: readonly L[], collect?: (counter: Counter<L>) => void | Promise<void>): Counter<L>;
  gauge<L extends string = never>(name: string, help: string, labelNames?: readonly L[], collect?: (gauge: Gauge<L>) => void | Promise<void>): Gauge<L>;
  histogram<L extends string = never>(name: string, help: string, buckets: readonly number[], labelNames?: readonly L[]): Histogram<L>;
}

/** Latency buckets in seconds for request and operation histograms (1 ms … 30 s). */
export const latencyBuckets: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

// The map holds families of any label set; each is handed back typed by its own declaration.
type Family = LightCounter<never> | LightGauge<never> | LightHistogram<never>;

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * A registry with the given families. `processMetrics` adds Node's default process metrics (CPU,
 * memory, event-loop lag, GC), off for throwaway registries in tests and short CLI runs.
 */
export function createMetrics(options: { processMetrics?: boolean; prefix?: string } = {}): Metrics {
  const families = new Map<string, Family>();
  let registry: Registry | undefined;

  // A family asked for twice (two services sharing a name, or a service built twice) is the same family.
  const declare = <F>(name: string, labelNames: readonly string[], make: () => F): F => {
    const found = families.get(name);
    if (found) return found as F;
    if (!metricName.test(name)) throw new Error(`Invalid metric name: ${name}`);
    for (const label of labelNames) if (!labelName.test(label) || label.startsWith('__')) throw new Error(`Invalid label name: ${label}`);
    const family = make();
    families.set(name, family as Family);
    registry?.registerMetric(family as PromClient.Metric);
    return family;
  };

  return {
    // eslint-disable-next-line no-restricted-syntax -- made once per process, not per request
    get registry() {
      if (!registry) {
        const promClient = createRequire(import.meta.url)('prom-client') as typeof PromClient;
        registry = new promClient.Registry();
        if (options.processMetrics) promClient.collectDefaultMetrics({ register: registry, prefix: options.prefix ?? 'berth_' });
        for (const family of families.values()) registry.registerMetric(family as PromClient.Metric);
      }
      return registry;
    },
    counter(name, help, labelNames = [], collect) {
      return declare(name, labelNames, () => new LightCounter(name, help, labelNames, collect));
    },
    gauge(name, help, labelNames = [], collect) {
      return declare(name, labelNames, () => new LightGauge(name, help, labelNames, collect));
    },
    histogram(name, help, buckets, labelNames = []) {
      return declare(name, labelNames, () => new LightHistogram(name, help, buckets, labelNames));
    },
  };
}
