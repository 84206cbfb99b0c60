/**
 * Latency and errors of every storage and database operation, measured once at the boundary
 * instead of at every call site: `instrumentStorage` wraps a `StorageDriver`, `instrumentMetadata`
 * wraps every index of a `Metadata` store. Both also make a span per operation inside a traced
 * request or job (`metrics/tracing.ts`).
 *
 * Operation labels come from the code, never from data: the driver method (`read`, `move`, …) or
 * the index path and method (`manifests.get`, `auth.principals.findByName`, …), so the label set is
 * bounded by what the program can call.
 *
 * What a storage duration covers: `read` and `write` until the stream is open (the transfer is the
 * caller's), `stream` (the fast path that serves a blob) the whole transfer to the client.
 */
import type { Counter, Histogram } from 'prom-client';
import type { Metadata } from '../metadata/store.js';
import { latencyBuckets, type Metrics } from '../metrics/index.js';
import { tracer } from '../metrics/tracing.js';
import { StorageNotFoundError, type StorageDriver } from '../storage/driver.js';

interface OperationFamilies {
  duration: Histogram<'driver' | 'operation'>;
  errors: Counter<'driver' | 'operation'>;
}

/** A bound pair of children: resolving labels once per operation keeps the hot path to two calls. */
interface BoundOperation {
  observe(seconds: number): void;
  error(): void;
}

function bind(families: OperationFamilies, driver: string, operation: string): BoundOperation {
  const duration = families.duration.labels(driver, operation);
  const errors = families.errors.labels(driver, operation);
  return { observe: (seconds) => duration.observe(seconds), error: () => errors.inc() };
}

/** Runs `work`, timing it into `bound` and, inside a traced request, as a span named `span`. */
function timed<T>(
  bound: BoundOperation,
  span: string,
  attributes: Record<string, string>,
  work: () => Promise<T>,
  failed: (err: unknown) => boolean,
): Promise<T> {
  const started = performance.now();
  const finish = (ok: boolean) => {
    bound.observe((performance.now() - started) / 1000);
    if (!ok) bound.error();
  };
  const t = tracer();
  const run = t.recording() ? () => t.span(span, attributes, work) : work;
  return run().then(
    (value) => {
      finish(true);
      return value;
    },
    (err: unknown) => {
      finish(!failed(err));
      throw err;
    },
  );
}

export function instrumentStorage(driver: StorageDriver, metrics: Metrics): StorageDriver {
  const families: OperationFamilies = {
    duration: metrics.histogram(
      'berth_storage_operation_duration_seconds',
      'Blob storage operations by driver and operation (read/write: until the stream is open; stream: the whole transfer).',
      latencyBuckets,
      ['driver', 'operation'],
    ),
    errors: metrics.counter('berth_storage_operation_errors_total', 'Blob storage operations that failed (an absent object is not a failure).', [
      'driver',
      'operation',
    ]),
  };
  const op = (operation: string) => {
    const bound = bind(families, driver.name, operation);
    const attributes = { 'berth.storage.driver': driver.name };
    return <T>(work: () => Promise<T>) => timed(bound, `storage.${operation}`, attributes, work, (err) => !(err instanceof StorageNotFoundError));
  };
  const read = op('read');
  const write = op('write');
  const stat = op('stat');
  const move = op('move');
  const remove = op('delete');
  const list = op('list');
  const redirect = op('redirect');
  const wrapped: StorageDriver = {
    name: driver.name,
    read: (path, range) => read(() => driver.read(path, range)),
    write: (path, options) => write(() => driver.write(path, options)),
    stat: (path) => stat(() => driver.stat(path)),
    move: (from, to) => move(() => driver.move(from, to)),
    delete: (path) => remove(() => driver.delete(path)),
    list: (prefix) => list(() => driver.list(prefix)),
    redirectURL: (path) => redirect(() => driver.redirectURL(path)),
  };
  const streamTo = driver.streamTo?.bind(driver);
  if (streamTo) {
    const stream = op('stream');
    wrapped.streamTo = (path, destination, ready, range) => stream(() => streamTo(path, destination, ready, range));
  }
  return wrapped;
}

/**
 * The same store with every asynchronous index method timed. Indexes are found by walking the
 * store: a plain object is a group of indexes (`auth`, `sync`, `events`), anything else with
 * methods is an index. The wrapper of an index is an object whose prototype is the index, with its
 * methods (own and inherited) replaced by timed ones that call the original on the index itself;
 * a method that returns no promise (a listener registration) is passed through untimed.
 */
export function instrumentMetadata(metadata: Metadata, metrics: Metrics, driver: string): Metadata {
  const families: OperationFamilies = {
    duration: metrics.histogram('berth_metadata_operation_duration_seconds', 'Metadata database operations by driver and index method.', latencyBuckets, [
      'driver',
      'operation',
    ]),
    errors: metrics.counter('berth_metadata_operation_errors_total', 'Metadata database operations that failed, by driver and index method.', [
      'driver',
      'operation',
    ]),
  };
  return wrapGroup(metadata as unknown as Record<string, unknown>, '', families, driver) as unknown as Metadata;
}

function wrapGroup(group: Record<string, unknown>, prefix: string, families: OperationFamilies, driver: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(group)) {
    if (typeof value === 'object' && value !== null) {
      out[name] =
        Object.getPrototypeOf(value) === Object.prototype
          ? wrapGroup(value as Record<string, unknown>, `${prefix}${name}.`, families, driver)
          : wrapIndex(value, `${prefix}${name}`, families, driver);
    } else {
      out[name] = value; // close(), and anything that is not an index
    }
  }
  return out;
}

function wrapIndex(index: object, path: string, families: OperationFamilies, driver: string): object {
  const wrapper = Object.create(index) as Record<string, unknown>;
  for (const method of methodNames(index)) {
    const original = (index as Record<string, unknown>)[method] as (...args: unknown[]) => unknown;
    let bound: BoundOperation | undefined;
    const attributes = { 'db.system': driver === 'postgres' ? 'postgresql' : 'sqlite', 'berth.db.operation': `${path}.${method}` };
    wrapper[method] = (...args: unknown[]): unknown => {
      const started = performance.now();
      const result = original.apply(index, args);
      if (!(result instanceof Promise)) return result;
      const operation = (bound ??= bind(families, driver, `${path}.${method}`));
      const t = tracer();
      // A database call has no children: its span can start once the call has.
      const settled = t.recording() ? t.span(`db ${path}.${method}`, attributes, () => result) : result;
      return settled.then(
        (value: unknown) => {
          operation.observe((performance.now() - started) / 1000);
          return value;
        },
        (err: unknown) => {
          operation.observe((performance.now() - started) / 1000);
          operation.error();
          throw err;
        },
      );
    };
  }
  return wrapper;
}

/** Every method of an object, own or inherited (constructor and Object's own excluded). */
function methodNames(object: object): string[] {
  const names = new Set<string>();
  for (let proto: object | null = object; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name === 'constructor') continue;
      const descriptor = Object.getOwnPropertyDescriptor(proto, name);
      if (descriptor && typeof descriptor.value === 'function') names.add(name);
    }
  }
  return [...names];
}
