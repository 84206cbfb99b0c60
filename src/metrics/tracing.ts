/**
 * Tracing as Berth's code sees it: a small facade over OpenTelemetry, so that no module `berth
 * serve` always loads imports the SDK. Until `installTracer` is called (by the app, when
 * `tracing.endpoint` is configured, with the implementation in `otel.ts`, imported on demand)
 * every call here is a no-op that costs one function call.
 *
 * Sampling is decided once, where a trace starts: an incoming request follows the caller's
 * `traceparent` (sampled or not), otherwise `tracing.sampleRatio` decides; a background job
 * (webhook delivery, sync copy) decides by the ratio alone. An unsampled request creates no span
 * at all, and child spans (`span`) are made only inside a sampled one, so the hot path pays for
 * tracing only on the requests that are traced.
 *
 * The tracer is process-wide, like OpenTelemetry's own context: spans cross every module (the
 * metadata wrapper, storage drivers, the one registry client) without being passed along.
 */
import type { IncomingHttpHeaders } from 'node:http';

export type SpanAttributes = Record<string, string | number | boolean | undefined>;

export interface Span {
  setAttribute(key: string, value: string | number | boolean): void;
  /** Renames the span (a request's span is named once its route is known). */
  setName(name: string): void;
  /** Marks the span failed with this error (its type and message; never request bodies or secrets). */
  fail(err: unknown): void;
  end(): void;
}

/** A server span for one request, started by `Tracer.request`. */
export interface RequestTrace {
  readonly span: Span;
  /** Runs `work` with this span as the current one (children and outgoing `traceparent` follow it). */
  run<T>(work: () => T): T;
}

export interface Tracer {
  /** True when tracing is installed (spans may be recorded). */
  readonly enabled: boolean;
  /** A server span for an incoming request, or undefined when this request is not traced. */
  request(name: string, headers: IncomingHttpHeaders, attributes: SpanAttributes): RequestTrace | undefined;
  /** A root span around background work (a webhook delivery, a sync copy), sampled by the ratio. */
  job<T>(name: string, attributes: SpanAttributes, work: (span: Span | undefined) => Promise<T>): Promise<T>;
  /** A child of the current span around `work`; without a current sampled span, just `work()`. */
  span<T>(name: string, attributes: SpanAttributes, work: (span: Span | undefined) => Promise<T>): Promise<T>;
  /** True inside a sampled span (callers skip preparing attributes otherwise). */
  recording(): boolean;
  /** Adds `traceparent` (and `tracestate`) of the current span to outgoing headers; nothing outside a sampled span. */
  inject(headers: Record<string, string>): void;
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

export const noopTracer: Tracer = {
  enabled: false,
  request: () => undefined,
  job: (_name, _attributes, work) => work(undefined),
  span: (_name, _attributes, work) => work(undefined),
  recording: () => false,
  inject: () => {},
  shutdown: async () => {},
};

let current: Tracer = noopTracer;

/** The process's tracer (the no-op one unless tracing is configured). */
export function tracer(): Tracer {
  return current;
}

/** Makes `implementation` the process's tracer; returns a function that restores the previous one. */
export function installTracer(implementation: Tracer): () => void {
  const previous = current;
  current = implementation;
  return () => {
    if (current === implementation) current = previous;
  };
}
