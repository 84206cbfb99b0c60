/**
 * The server's Prometheus metrics: one prom-client registry per app (never the global one, so
 * several apps can run in one process), created by `createApp` and handed to every service that
 * counts something. A feature declares its own families where it counts (`metrics.counter(...)`
 * in its constructor), so names live beside the code that moves them; `GET /metrics` renders the
 * registry.
 *
 * Naming (Prometheus conventions): `berth_<area>_<what>_<unit>` with `_total` for counters and base
 * units (seconds, bytes). Labels are small closed sets (route templates, results, reasons, grant
 * types): never a repository name, a tag, a digest, a principal or a raw path, so cardinality stays
 * bounded whatever clients send.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  /** `collect` (optional) sets the value at scrape time, for counts kept elsewhere (a database). */
  counter<L extends string = never>(name: string, help: string, labelNames?: readonly L[], collect?: (counter: Counter<L>) => void | Promise<void>): Counter<L>;
  gauge<L extends string = never>(name: string, help: string, labelNames?: readonly L[], collect?: (gauge: Gauge<L>) => void | Promise<void>): Gauge<L>;
  histogram<L extends string = never>(name: string, help: string, buckets: readonly number[], labelNames?: readonly L[]): Histogram<L>;
}

/** Latency buckets in seconds for request and operation histograms (1 ms … 30 s). */
export const latencyBuckets: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * A registry with the given families. `processMetrics` adds Node's default process metrics (CPU,
 * memory, event-loop lag, GC), off for throwaway registries in tests and short CLI runs.
 */
export function createMetrics(options: { processMetrics?: boolean; prefix?: string } = {}): Metrics {
  const registry = new Registry();
  if (options.processMetrics) collectDefaultMetrics({ register: registry, prefix: options.prefix ?? 'berth_' });
  // A family asked for twice (two services sharing a name, or a service built twice) is the same family.
  const existing = <T>(name: string): T | undefined => registry.getSingleMetric(name) as T | undefined;
  return {
    registry,
    counter(name, help, labelNames = [], collect) {
      return (
        existing(name) ??
        new Counter({
          name,
          help,
          labelNames: [...labelNames],
          registers: [registry],
          ...(collect
            ? {
                collect(this: Counter<(typeof labelNames)[number]>) {
                  return collect(this);
                },
              }
            : {}),
        })
      );
    },
    gauge(name, help, labelNames = [], collect) {
      return (
        existing(name) ??
        new Gauge({
          name,
          help,
          labelNames: [...labelNames],
          registers: [registry],
          ...(collect
            ? {
                collect(this: Gauge<(typeof labelNames)[number]>) {
                  return collect(this);
                },
              }
            : {}),
        })
      );
    },
    histogram(name, help, buckets, labelNames = []) {
      return existing(name) ?? new Histogram({ name, help, buckets: [...buckets], labelNames: [...labelNames], registers: [registry] });
    },
  };
}
