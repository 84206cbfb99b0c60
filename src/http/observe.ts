/**
 * What every request leaves behind besides its response, recorded once here rather than in each
 * handler: a request id (the `X-Request-Id` header, and a field of every line the request logs),
 * HTTP metrics by route template, the registry's push/pull/delete counts, the access log line, a
 * server span when the request is traced, and the audit entries of registry changes (pushes and
 * deletes always, pulls as `audit.pulls` says).
 *
 * Labels come from the route table (its `name`), the method and the status class, never from the
 * path: a repository name or a digest never becomes a label. Children of every family are bound
 * once per (route, method) and reused, so a request costs a few counter increments and one
 * histogram observation.
 *
 * The audit entries of registry changes are written after the response (a failure to write one is
 * logged, it cannot change an answer already sent).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Counter, Gauge, Histogram } from 'prom-client';
import type { AccessClaims } from '../auth/tokens.js';
import { latencyBuckets, type Metrics } from '../metrics/index.js';
import { tracer, type RequestTrace } from '../metrics/tracing.js';
import type { Clock } from '../shared/clock.js';
import type { Route } from './route.js';

export const requestIdHeader = 'x-request-id';
/** An incoming request id is kept if it looks like one (a proxy's or a client's); else a new one is made. */
const wellFormedId = /^[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}$/;
const knownMethods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** Routes whose bodies are blobs: their bytes on the wire are counted. */
const blobRoutes = new Set(['blob', 'upload', 'uploads']);
/** Per connection: its byte counters when its last request ended (one object per connection, updated in place). */
const socketMarks = new WeakMap<object, { read: number; written: number }>();

function markSocket(socket: IncomingMessage['socket']): void {
  const mark = socketMarks.get(socket);
  if (mark) {
    mark.read = socket.bytesRead;
    mark.written = socket.bytesWritten;
  } else {
    socketMarks.set(socket, { read: socket.bytesRead, written: socket.bytesWritten });
  }
}
/** Probes and scrapes: counted, but never written to the access log. */
const quietRoutes = new Set(['healthz', 'readyz', 'metrics']);

/** Where the observer writes audit entries (the app's audit log; a structural type, as http/ does not import metadata/). */
export interface AuditWriter {
  append(entry: {
    at: number;
    event: string;
    principalId?: string | undefined;
    principalName?: string | undefined;
    clientAddress?: string | undefined;
    repository?: string | undefined;
    detail?: unknown;
  }): Promise<void>;
}

export interface ObserverSettings {
  /** Undefined: no HTTP metrics (`metrics.enabled: false`). */
  metrics: Metrics | undefined;
  /** Where registry changes are audited (the app's recording audit index). */
  audit: AuditWriter;
  pulls: 'off' | 'sampled' | 'full';
  pullSampleRatio: number;
  clock: Clock;
  /** Who is calling (`client-address.ts`: the peer, or what trusted proxies say); default: the peer. */
  clientAddressOf?: ((req: IncomingMessage) => string) | undefined;
  random?: () => number;
}

interface HttpFamilies {
  requests: Counter<'route' | 'method' | 'status'>;
  duration: Histogram<'route' | 'method'>;
  inFlight: Gauge.Internal<never>;
  received: Counter<'route'>;
  sent: Counter<'route'>;
  /** The registry's counts, bound per kind (`countRegistry`). */
  pushes: { manifest: Counter.Internal; blob: Counter.Internal };
  pulls: { manifest: Counter.Internal; blob: Counter.Internal };
  deletes: { manifest: Counter.Internal; blob: Counter.Internal };
}

/** A counter's children for the two kinds the registry counts. */
function byKind(counter: Counter<'kind'>): { manifest: Counter.Internal; blob: Counter.Internal } {
  return { manifest: counter.labels('manifest'), blob: counter.labels('blob') };
}

/** The children of one (route, method), bound on first use. */
interface Bound {
  byStatus: Map<string, { inc(): void }>;
  duration: { observe(seconds: number): void };
}

export class RequestObserver {
  private readonly families: HttpFamilies | undefined;
  private readonly bound = new Map<string, Bound>();
  private readonly random: () => number;

  constructor(
    private readonly settings: ObserverSettings,
    readonly logger: Logger,
  ) {
    this.random = settings.random ?? Math.random;
    const m = settings.metrics;
    this.families = m && {
      requests: m.counter('berth_http_requests_total', 'HTTP requests by route, method and status class (2xx, 4xx, …; aborted: the client went away).', [
        'route',
        'method',
        'status',
      ]),
      duration: m.histogram(
        'berth_http_request_duration_seconds',
        'HTTP request latency, from the request head to the end of the response, by route and method.',
        latencyBuckets,
        ['route', 'method'],
      ),
      inFlight: m.gauge('berth_http_requests_in_flight', 'HTTP requests being served.').labels(),
      received: m.counter('berth_http_blob_received_bytes_total', 'Bytes received on blob routes (uploads), on the wire.', ['route']),
      sent: m.counter('berth_http_blob_sent_bytes_total', 'Bytes sent on blob routes (blob GETs), on the wire.', ['route']),
      pushes: byKind(
        m.counter('berth_registry_pushes_total', 'Manifests and blobs pushed (kind=manifest|blob; a blob push is a completed upload or a mount).', ['kind']),
      ),
      pulls: byKind(m.counter('berth_registry_pulls_total', 'Manifests and blobs pulled (GET answered with content or a redirect to it).', ['kind'])),
      deletes: byKind(m.counter('berth_registry_deletes_total', 'Manifests, tags and blobs deleted.', ['kind'])),
    };
  }

  /** The address audit entries name for a request. */
  clientAddressOf(req: IncomingMessage): string {
    return this.settings.clientAddressOf?.(req) ?? req.socket?.remoteAddress ?? 'unknown';
  }

  /** Starts observing a request: its id, its span, the in-flight count; the rest is recorded when it closes. */
  begin(req: IncomingMessage, res: ServerResponse): ObservedRequest {
    const incoming = req.headers[requestIdHeader];
    const id = typeof incoming === 'string' && wellFormedId.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', id);
    const method = req.method !== undefined && knownMethods.has(req.method) ? req.method : 'OTHER';
    const trace = tracer().request(method, req.headers, { 'http.request.method': method, 'berth.request_id': id });
    const observed = new ObservedRequest(this, id, method, trace, req);
    this.families?.inFlight.inc();
    res.once('close', () => this.end(observed, res));
    return observed;
  }

  private end(observed: ObservedRequest, res: ServerResponse): void {
    const seconds = (performance.now() - observed.started) / 1000;
    const routeName = observed.route?.name ?? 'unmatched';
    const status = res.writableFinished ? `${Math.floor(res.statusCode / 100)}xx` : 'aborted';
    const families = this.families;
    if (families) {
      families.inFlight.dec();
      const bound = this.bind(routeName, observed.method);
      let byStatus = bound.byStatus.get(status);
      if (!byStatus) {
        byStatus = families.requests.labels(routeName, observed.method, status);
        bound.byStatus.set(status, byStatus);
      }
      byStatus.inc();
      bound.duration.observe(seconds);
      if (blobRoutes.has(routeName)) this.countBytes(observed, routeName, families);
      if (observed.socket) markSocket(observed.socket);
      if (res.writableFinished) this.countRegistry(routeName, observed.method, res.statusCode, families);
    }
    if (observed.trace) {
      const span = observed.trace.span;
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.fail(new Error(`HTTP ${res.statusCode}`));
      span.end();
    }
    if (!quietRoutes.has(routeName) && this.logger.isLevelEnabled('debug')) {
      this.logger.debug(
        {
          requestId: observed.id,
          method: observed.method,
          route: routeName,
          url: observed.url,
          status: res.statusCode,
          aborted: !res.writableFinished,
          ms: Math.round(seconds * 1000),
        },
        'request',
      );
    }
    if (res.writableFinished && res.statusCode < 300 && observed.route) this.audit(observed, observed.route, res);
  }

  private bind(route: string, method: string): Bound {
    const key = `${route} ${method}`;
    let bound = this.bound.get(key);
    if (!bound && this.families) {
      bound = { byStatus: new Map(), duration: this.families.duration.labels(route, method) };
      this.bound.set(key, bound);
    }
    return bound as Bound;
  }

  /**
   * Bytes on the wire since the previous request on the same connection ended (requests on a
   * connection are served one after another), heads included: a request's head and the start of
   * its body are often read before it is dispatched, so a count from dispatch would miss them.
   */
  private countBytes(observed: ObservedRequest, route: string, families: HttpFamilies): void {
    const socket = observed.socket;
    if (!socket) return;
    const mark = socketMarks.get(socket) ?? { read: 0, written: 0 };
    const received = socket.bytesRead - mark.read;
    const sent = socket.bytesWritten - mark.written;
    if (received > 0) families.received.inc({ route }, received);
    if (sent > 0) families.sent.inc({ route }, sent);
  }

  /** The registry's own counts, from what the route table says a successful request was. */
  private countRegistry(route: string, method: string, status: number, families: HttpFamilies): void {
    if (status >= 400) return;
    if (route === 'manifest') {
      if (method === 'PUT' && status === 201) families.pushes.manifest.inc();
      else if (method === 'GET' && status === 200) families.pulls.manifest.inc();
      else if (method === 'DELETE') families.deletes.manifest.inc();
    } else if (route === 'blob') {
      if (method === 'GET') families.pulls.blob.inc();
      else if (method === 'DELETE') families.deletes.blob.inc();
    } else if ((route === 'upload' && method === 'PUT' && status === 201) || (route === 'uploads' && method === 'POST' && status === 201)) {
      families.pushes.blob.inc();
    }
  }

  /** Audit entries of successful registry changes (and pulls, as configured). */
  private audit(observed: ObservedRequest, route: Route, res: ServerResponse): void {
    const repository = observed.params['name'];
    if (repository === undefined) return;
    const reference = observed.params['reference'];
    const digestHeader = res.getHeader('docker-content-digest');
    const digest = typeof digestHeader === 'string' ? digestHeader : observed.params['digest'];
    let event: string | undefined;
    if (route.name === 'manifest' && route.method === 'PUT') event = 'registry.push';
    else if ((route.name === 'manifest' || route.name === 'blob') && route.method === 'DELETE') event = 'registry.delete';
    else if (route.name === 'manifest' && route.method === 'GET' && this.auditsPull()) event = 'registry.pull';
    if (!event) return;
    const detail: Record<string, unknown> = { kind: route.name, requestId: observed.id };
    if (reference !== undefined) detail['reference'] = reference;
    if (digest !== undefined) detail['digest'] = digest;
    this.settings.audit
      .append({
        at: this.settings.clock.now(),
        event,
        principalId: observed.identity?.subject,
        principalName: observed.identity?.name,
        clientAddress: observed.clientAddress,
        repository,
        detail,
      })
      .catch((err: unknown) => this.logger.error({ err, requestId: observed.id, event }, 'could not write an audit entry'));
  }

  private auditsPull(): boolean {
    const { pulls, pullSampleRatio } = this.settings;
    return pulls === 'full' || (pulls === 'sampled' && this.random() < pullSampleRatio);
  }
}

/** One request while it is served: what dispatch learns about it (its route, its caller). */
export class ObservedRequest {
  readonly started = performance.now();
  route: Route | undefined;
  params: Record<string, string> = {};
  identity: AccessClaims | undefined;
  readonly socket: IncomingMessage['socket'] | undefined;
  readonly clientAddress: string;
  readonly url: string;
  private child: Logger | undefined;

  constructor(
    private readonly observer: RequestObserver,
    readonly id: string,
    readonly method: string,
    readonly trace: RequestTrace | undefined,
    req: IncomingMessage,
  ) {
    this.socket = req.socket ?? undefined;
    this.clientAddress = observer.clientAddressOf(req);
    this.url = (req.url ?? '/').slice(0, 300);
  }

  /** The request's logger: every line carries `requestId` (made on first use). */
  get logger(): Logger {
    this.child ??= this.observer.logger.child({ requestId: this.id });
    return this.child;
  }

  /** Runs `work` inside the request's span, when it is traced. */
  run<T>(work: () => T): T {
    return this.trace ? this.trace.run(work) : work();
  }

  matched(route: Route, params: Record<string, string>): void {
    this.route = route;
    this.params = params;
    if (this.trace) {
      this.trace.span.setName(`${this.method} ${route.name}`);
      this.trace.span.setAttribute('http.route', route.name);
      if (params['name'] !== undefined) this.trace.span.setAttribute('berth.repository', params['name']);
    }
  }

  identified(identity: AccessClaims | undefined): void {
    this.identity = identity;
  }
}
