/**
 * The OpenTelemetry implementation of `tracing.ts`, imported only when `tracing.endpoint` is set
 * (the SDK and the OTLP exporter cost start time and memory that an untraced registry should not
 * pay). Spans go to an OTLP/HTTP collector in batches; W3C Trace Context (`traceparent`) is read
 * from requests and written into outgoing ones.
 *
 * Nothing is registered globally (no `trace.setGlobalTracerProvider`): the provider, the context
 * manager and the propagator are used directly, so a second app in the same process (tests) or a
 * library's own OpenTelemetry setup cannot collide with this one.
 *
 * Sampling is decided here rather than by an SDK sampler (see the module comment of tracing.ts):
 * an unsampled request gets no span object at all, which keeps the cost of tracing proportional to
 * the share of requests traced. On top of the ratio, at most `maxPerSecond` traces start a second
 * (a token bucket), whatever callers ask for.
 *
 * The context of a trace travels in an AsyncLocalStorage, and on Node 20 an AsyncLocalStorage in
 * use hooks every promise and async resource of the process (measured: about 13% of manifest GET
 * throughput). So the context manager is on only while a traced request or job is in flight: it is
 * enabled by the first one and disabled when the last one ends, and untraced requests in between
 * pay nothing.
 */
import type { IncomingHttpHeaders } from 'node:http';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
  type Context,
  type Span as OtelSpan,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { RequestTrace, Span, SpanAttributes, Tracer } from './tracing.js';

export interface OtelSettings {
  endpoint: string;
  headers: Record<string, string>;
  sampleRatio: number;
  /** New traces a second at most (0: no limit). */
  maxPerSecond: number;
  serviceName: string;
  serviceVersion?: string | undefined;
  exportTimeoutMs: number;
  /** How long spans wait to be batched (default 2 s; tests shorten it). */
  batchDelayMs?: number;
  random?: () => number;
  now?: () => number;
}

export function createOtelTracer(settings: OtelSettings): Tracer {
  const random = settings.random ?? Math.random;
  const ratio = settings.sampleRatio;
  const exporter = new OTLPTraceExporter({ url: settings.endpoint, headers: settings.headers, timeoutMillis: settings.exportTimeoutMs });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      'service.name': settings.serviceName,
      ...(settings.serviceVersion ? { 'service.version': settings.serviceVersion } : {}),
    }),
    sampler: new AlwaysOnSampler(),
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: settings.batchDelayMs ?? 2000, exportTimeoutMillis: settings.exportTimeoutMs })],
  });
  const otel = provider.getTracer('berth');
  const contexts = new AsyncLocalStorageContextManager().enable();
  const propagator = new W3CTraceContextPropagator();
  const admit = traceBudget(settings.maxPerSecond, settings.now ?? Date.now);

  // Traces in flight; the context manager's AsyncLocalStorage is on only while there are any.
  let inFlight = 0;
  const opened = () => void inFlight++;
  const closed = () => {
    inFlight--;
    // with() enables it again for the next trace.
    if (inFlight === 0) contexts.disable();
  };

  const recordingSpan = (ctx: Context): OtelSpan | undefined => {
    const span = trace.getSpan(ctx);
    return span?.isRecording() ? span : undefined;
  };

  const within = async <T>(span: OtelSpan, ctx: Context, work: (span: Span) => Promise<T>): Promise<T> => {
    const handle = wrap(span);
    try {
      return await contexts.with(ctx, () => work(handle));
    } catch (err) {
      handle.fail(err);
      throw err;
    } finally {
      span.end();
    }
  };
  // A root span (request or job) counts as in flight until it ends, once.
  const rootSpan = (span: OtelSpan): OtelSpan => {
    opened();
    let ended = false;
    const end = span.end.bind(span);
    span.end = (time) => {
      if (!ended) {
        ended = true;
        closed();
      }
      end(time);
    };
    return span;
  };

  return {
    enabled: true,
    request(name: string, headers: IncomingHttpHeaders, attributes: SpanAttributes): RequestTrace | undefined {
      let parent = ROOT_CONTEXT;
      if (headers['traceparent'] !== undefined) {
        parent = propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
        const caller = trace.getSpanContext(parent);
        // The caller decided: follow it (a malformed traceparent extracts nothing and falls through).
        if (caller && (caller.traceFlags & TraceFlags.SAMPLED) === 0) return undefined;
        if (!caller && !(random() < ratio)) return undefined;
      } else if (!(random() < ratio)) {
        return undefined;
      }
      if (!admit()) return undefined;
      const span = rootSpan(otel.startSpan(name, { kind: SpanKind.SERVER, attributes: defined(attributes) }, parent));
      const ctx = trace.setSpan(parent, span);
      return { span: wrap(span), run: (work) => contexts.with(ctx, work) };
    },
    async job(name, attributes, work) {
      if (!(random() < ratio) || !admit()) return work(undefined);
      const span = rootSpan(otel.startSpan(name, { kind: SpanKind.INTERNAL, attributes: defined(attributes), root: true }, ROOT_CONTEXT));
      return within(span, trace.setSpan(ROOT_CONTEXT, span), work);
    },
    async span(name, attributes, work) {
      const active = contexts.active();
      if (!recordingSpan(active)) return work(undefined);
      const span = otel.startSpan(name, { kind: SpanKind.INTERNAL, attributes: defined(attributes) }, active);
      return within(span, trace.setSpan(active, span), work);
    },
    recording() {
      return recordingSpan(contexts.active()) !== undefined;
    },
    inject(headers: Record<string, string>) {
      const active = contexts.active();
      if (recordingSpan(active)) propagator.inject(active, headers, defaultTextMapSetter);
    },
    async shutdown() {
      await provider.shutdown();
      contexts.disable();
    },
  };
}

/** A token bucket of `perSecond` traces (a second's worth at most); 0 admits everything. */
export function traceBudget(perSecond: number, now: () => number): () => boolean {
  if (perSecond === 0) return () => true;
  let tokens = perSecond;
  let last = now();
  return () => {
    const t = now();
    tokens = Math.min(perSecond, tokens + ((t - last) * perSecond) / 1000);
    last = t;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
}

function wrap(span: OtelSpan): Span {
  return {
    setAttribute: (key, value) => void span.setAttribute(key, value),
    setName: (name) => void span.updateName(name),
    fail(err: unknown) {
      const error = err instanceof Error ? err : new Error(String(err));
      const code = (error as { code?: unknown }).code;
      span.setAttribute('error.type', typeof code === 'string' ? code : error.name);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.message.slice(0, 300) });
    },
    end: () => span.end(),
  };
}

function defined(attributes: SpanAttributes): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) out[key] = value;
  return out;
}
