/**
 * Counter, gauge and histogram families that count from the first request without loading
 * prom-client. They have prom-client's method shapes (`implements` checks it), and each also
 * speaks prom-client's metric protocol (`name`, `help`, `type`, `aggregator`, `get()`), so once a
 * scrape materialises the prom-client registry (`index.ts`) they are registered in it as they are
 * and prom-client renders them. Exemplars are accepted and ignored (Berth registries use the
 * Prometheus text format, which has none).
 *
 * Written by hand because prom-client keeps its state inside its own classes: a family created
 * there would load prom-client (about 10 MiB RSS and 30 ms at start) in every process that counts
 * anything, scraped or not. Semantics follow prom-client's: label names are checked, positional
 * `labels(...)` must name every label, a counter never decreases, a label-less counter or gauge
 * shows 0 before its first change, `collect` runs before each read.
 */
import type {
  Aggregator,
  Counter,
  Gauge,
  Histogram,
  IncreaseDataWithExemplar,
  LabelValues,
  MetricObjectWithValues,
  MetricValue,
  ObserveDataWithExemplar,
} from 'prom-client';

type MetricValueWithName<T extends string> = MetricValue<T> & { metricName?: string; sharedLabels?: LabelValues<T> };

interface Series<T extends string> {
  labels: LabelValues<T>;
  value: number;
}

interface HistogramSeries<T extends string> {
  labels: LabelValues<T>;
  /** Per bucket (not cumulative), the last one for +Inf. */
  counts: number[];
  sum: number;
  count: number;
}

const separator = '\u0001';
/** prom-client's read shape; its type also names a `collect`, which its values never carry (neither do these). */
function readShape<V>(data: { name: string; help: string; type: string; aggregator: Aggregator; values: V[] }): MetricObjectWithValues<V & MetricValue<never>> {
  return data as unknown as MetricObjectWithValues<V & MetricValue<never>>;
}

abstract class Family<T extends string> {
  readonly aggregator: Aggregator = 'sum';
  abstract readonly type: 'counter' | 'gauge' | 'histogram';

  constructor(
    public name: string,
    readonly help: string,
    protected readonly labelNames: readonly T[],
    protected readonly collect?: (family: never) => void | Promise<void>,
  ) {}

  /** The series key of a labels object; throws on a label the family does not declare. */
  protected keyOf(labels: LabelValues<T>): string {
    for (const name of Object.keys(labels)) {
      if (!this.labelNames.includes(name as T)) throw new Error(`Added label "${name}" is not included in initial labelset: ${this.labelNames.join(', ')}`);
    }
    return this.labelNames.map((n) => (labels[n] === undefined ? '' : `=${String(labels[n])}`)).join(separator);
  }

  /** `labels('a', 'b')` or `labels({ x: 'a' })` as a labels object. */
  protected labelsOf(args: readonly unknown[]): LabelValues<T> {
    const first = args[0];
    if (args.length === 1 && typeof first === 'object' && first !== null) return { ...(first as LabelValues<T>) };
    if (args.length !== this.labelNames.length) throw new Error('Invalid number of arguments');
    const labels: LabelValues<T> = {};
    this.labelNames.forEach((name, i) => (labels[name] = args[i] as string));
    return labels;
  }

  protected async collected(): Promise<void> {
    if (this.collect) await this.collect(this as never);
  }
}

abstract class ValueFamily<T extends string> extends Family<T> {
  protected series = new Map<string, Series<T>>();

  protected constructor(name: string, help: string, labelNames: readonly T[], collect?: (family: never) => void | Promise<void>) {
    super(name, help, labelNames, collect);
    this.reset();
  }

  protected entry(labels: LabelValues<T>, key = this.keyOf(labels)): Series<T> {
    let series = this.series.get(key);
    if (!series) this.series.set(key, (series = { labels: { ...labels }, value: 0 }));
    return series;
  }

  reset(): void {
    this.series = new Map();
    if (this.labelNames.length === 0) this.entry({});
  }

  remove(...args: unknown[]): void {
    this.series.delete(this.keyOf(this.labelsOf(args)));
  }

  async get(): Promise<MetricObjectWithValues<MetricValue<T>>> {
    await this.collected();
    const values = [...this.series.values()].map((s) => ({ labels: s.labels, value: s.value }));
    return readShape({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}

/** Splits `inc(labels, value)` / `inc(value)` / `inc({labels, value})` into labels and value. */
function labelsAndValue<T extends string>(a: unknown, b: number | undefined, withExemplar: boolean): [LabelValues<T>, number | undefined] {
  if (typeof a === 'object' && a !== null) {
    if (withExemplar && b === undefined && ('exemplarLabels' in a || 'labels' in a || 'value' in a)) {
      const data = a as IncreaseDataWithExemplar<T>;
      return [data.labels ?? {}, data.value];
    }
    return [a as LabelValues<T>, b];
  }
  return [{}, a as number | undefined];
}

function checkNumber(value: number): void {
  if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${String(value)}`);
}

export class LightCounter<T extends string> extends ValueFamily<T> implements Counter<T> {
  readonly type = 'counter';

  constructor(name: string, help: string, labelNames: readonly T[], collect?: (counter: Counter<T>) => void | Promise<void>) {
    super(name, help, labelNames, collect as (family: never) => void | Promise<void>);
  }

  inc(a?: LabelValues<T> | number | IncreaseDataWithExemplar<T>, b?: number): void {
    const [labels, value = 1] = labelsAndValue<T>(a, b, true);
    this.add(this.entry(labels), value);
  }

  labels(...args: unknown[]): Counter.Internal {
    const labels = this.labelsOf(args);
    const key = this.keyOf(labels);
    return { inc: (value = 1) => this.add(this.entry(labels, key), value) };
  }

  private add(series: Series<T>, value: number): void {
    checkNumber(value);
    if (value < 0) throw new Error('It is not possible to decrease a counter');
    series.value += value;
  }
}

export class LightGauge<T extends string> extends ValueFamily<T> implements Gauge<T> {
  readonly type = 'gauge';

  constructor(name: string, help: string, labelNames: readonly T[], collect?: (gauge: Gauge<T>) => void | Promise<void>) {
    super(name, help, labelNames, collect as (family: never) => void | Promise<void>);
  }

  inc(a?: LabelValues<T> | number, b?: number): void {
    const [labels, value = 1] = labelsAndValue<T>(a, b, false);
    this.change(labels, value, true);
  }

  dec(a?: LabelValues<T> | number, b?: number): void {
    const [labels, value = 1] = labelsAndValue<T>(a, b, false);
    this.change(labels, -value, true);
  }

  set(a: LabelValues<T> | number, b?: number): void {
    const [labels, value] = labelsAndValue<T>(a, b, false);
    this.change(labels, value ?? NaN, false);
  }

  setToCurrentTime(labels: LabelValues<T> = {}): void {
    this.change(labels, Date.now() / 1000, false);
  }

  startTimer(labels: LabelValues<T> = {}): (labels?: LabelValues<T>) => number {
    const start = process.hrtime.bigint();
    return (end?: LabelValues<T>) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      this.change(Object.assign({}, labels, end), seconds, false);
      return seconds;
    };
  }

  labels(...args: unknown[]): Gauge.Internal<T> {
    const labels = this.labelsOf(args);
    const key = this.keyOf(labels);
    return {
      inc: (value = 1) => this.change(labels, value, true, key),
      dec: (value = 1) => this.change(labels, -value, true, key),
      set: (value) => this.change(labels, value, false, key),
      setToCurrentTime: () => this.setToCurrentTime(labels),
      startTimer: () => this.startTimer(labels),
    };
  }

  private change(labels: LabelValues<T>, value: number, add: boolean, key?: string): void {
    checkNumber(value);
    const series = this.entry(labels, key);
    series.value = add ? series.value + value : value;
  }
}

export class LightHistogram<T extends string> extends Family<T> implements Histogram<T> {
  readonly type = 'histogram';
  private readonly upperBounds: number[];
  private series = new Map<string, HistogramSeries<T>>();

  constructor(name: string, help: string, buckets: readonly number[], labelNames: readonly T[]) {
    super(name, help, labelNames);
    if (labelNames.includes('le' as T)) throw new Error('le is a reserved label keyword');
    this.upperBounds = [...buckets].sort((x, y) => x - y);
    // As prom-client: a histogram without labels shows its empty series from the start (reset() clears it).
    if (labelNames.length === 0) this.entry({});
  }

  observe(a: LabelValues<T> | number | ObserveDataWithExemplar<T>, b?: number): void {
    let labels: LabelValues<T> = {};
    let value: number | undefined;
    if (typeof a === 'number') value = a;
    else if (b === undefined && ('exemplarLabels' in a || 'value' in a)) {
      const data = a as ObserveDataWithExemplar<T>;
      labels = data.labels ?? {};
      value = data.value;
    } else {
      labels = a as LabelValues<T>;
      value = b;
    }
    this.record(this.entry(labels), value ?? NaN);
  }

  startTimer(labels: LabelValues<T> = {}): (labels?: LabelValues<T>) => number {
    const start = process.hrtime.bigint();
    return (end?: LabelValues<T>) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      this.observe(Object.assign({}, labels, end), seconds);
      return seconds;
    };
  }

  labels(...args: unknown[]): Histogram.Internal<T> {
    const labels = this.labelsOf(args);
    const key = this.keyOf(labels);
    return {
      observe: (value) => this.record(this.entry(labels, key), value),
      startTimer: () => this.startTimer(labels),
    };
  }

  zero(labels: LabelValues<T>): void {
    this.series.set(this.keyOf(labels), this.empty(labels));
  }

  reset(): void {
    this.series = new Map();
  }

  remove(...args: unknown[]): void {
    this.series.delete(this.keyOf(this.labelsOf(args)));
  }

  /** prom-client's own rendering shape: the family's labels as `sharedLabels`, so the text matches prom-client's byte for byte. */
  async getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<T>>> {
    await this.collected();
    const values: MetricValueWithName<T>[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.upperBounds.forEach((le, i) => {
        cumulative += s.counts[i] ?? 0;
        values.push({ labels: { le } as LabelValues<T>, sharedLabels: s.labels, value: cumulative, metricName: bucket });
      });
      values.push({ labels: { le: '+Inf' } as LabelValues<T>, sharedLabels: s.labels, value: s.count, metricName: bucket });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return readShape({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  async get(): Promise<MetricObjectWithValues<MetricValueWithName<T>>> {
    const data = await this.getForPromString();
    data.values = data.values.map(({ sharedLabels, ...value }) => Object.assign({}, value, { labels: Object.assign({}, value.labels, sharedLabels) }));
    return data;
  }

  private empty(labels: LabelValues<T>): HistogramSeries<T> {
    return { labels: { ...labels }, counts: new Array<number>(this.upperBounds.length + 1).fill(0), sum: 0, count: 0 };
  }

  private entry(labels: LabelValues<T>, key = this.keyOf(labels)): HistogramSeries<T> {
    let series = this.series.get(key);
    if (!series) this.series.set(key, (series = this.empty(labels)));
    return series;
  }

  private record(series: HistogramSeries<T>, value: number): void {
    checkNumber(value);
    let i = 0;
    while (i < this.upperBounds.length && value > (this.upperBounds[i] as number)) i++;
    series.counts[i] = (series.counts[i] ?? 0) + 1;
    series.sum += value;
    series.count += 1;
  }
}
