/**
 * The HTTP layer of the registry client: one request with the caller's egress policy, per-source
 * limits, timeouts and retries, and the helpers that read what a registry sends (bounded bodies,
 * `Link` pagination). Everything in remote/ that talks HTTP goes through `HttpClient.send`.
 *
 * Contract:
 * - Connections come from `options.dispatcher` when given, through undici (the egress policy's: it
 *   checks every resolved address, redirects and token realms included), else from node:http and
 *   node:https (node-transport.ts: the CLI on a person's machine, where loading undici would cost
 *   a one-shot command ~85 ms). Both answer alike, for what this module uses.
 * - With `retry: true` (idempotent requests only), connection errors, timeouts and
 *   500/502/503/504 are retried with jittered exponential backoff, and 429 (and 503) after their
 *   `Retry-After`, which also pauses every other request through the same limiter; at most
 *   `retries.attempts` tries in all. A `Retry-After` longer than `retries.maxRetryAfterMs` is not
 *   waited out: it fails at once with the wait (`HttpFailure.retryAfterMs`) so a queue can retry
 *   no earlier. Without `retry`, a status is returned as it is and a connection error fails.
 * - Failures are `HttpFailure` (unreachable, refused by the egress policy, still failing after the
 *   retries, asked to wait too long) without wording for people: the caller knows what it was
 *   doing and says so. An aborted `signal` rejects with its reason.
 * - Each transport is imported on its first request, not with this module: undici by the first
 *   request with a dispatcher (no command of the CLI sends one), node-transport.ts (node:http and
 *   node:https) by the first without one, so a command that sends nothing loads neither.
 * - Inside a traced span (`metrics/tracing.ts`) every request carries `traceparent`.
 */
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher, request as undiciRequest } from 'undici';
import { tracer } from '../metrics/tracing.js';
import type { RequestLimiter } from './limiter.js';
import type { nodeRequest, TransportOptions, TransportResponse } from './node-transport.js';

export interface RetryPolicy {
  /** Tries in all (default 4; at least 1). */
  attempts?: number | undefined;
  /** Backoff before the second try, doubling up to `maxDelayMs` (defaults 250 ms, 8 s). */
  baseDelayMs?: number | undefined;
  maxDelayMs?: number | undefined;
  /** The longest `Retry-After` waited out within a request (default 60 s). */
  maxRetryAfterMs?: number | undefined;
}

export interface HttpOptions {
  /** The egress policy's dispatcher; node:http and node:https when absent (node-transport.ts). */
  dispatcher?: Dispatcher | undefined;
  userAgent?: string | undefined;
  /** Requests per second and in flight for this source; shared by every client that shares it. */
  limiter?: RequestLimiter | undefined;
  retries?: RetryPolicy | undefined;
  /** Defaults: 30 s until the headers, 60 s between body bytes. */
  timeouts?: { headersMs?: number | undefined; bodyMs?: number | undefined } | undefined;
  /** Told about each retry (debug level). */
  logger?: { debug(details: object, message: string): void } | undefined;
}

export interface HttpRequest {
  method: string;
  url: string | URL;
  headers?: Record<string, string>;
  body?: string;
  /** Redirects to follow (blob downloads from a CDN); 0 (default) for anything carrying credentials in its body. */
  maxRedirections?: number;
  /** Retry as the module comment says; only for idempotent requests. */
  retry?: boolean;
  signal?: AbortSignal | undefined;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Must be consumed or dropped (`drain`), then `release` called. */
  body: Readable & { dump(options?: { limit: number }): Promise<void> };
  /** The first value of a header (names lower-case). */
  header(name: string): string | undefined;
  /** Frees this request's limiter slot; idempotent. */
  release(): void;
}

export type HttpFailureKind = 'unreachable' | 'egress' | 'busy' | 'wait';

export class HttpFailure extends Error {
  override name = 'HttpFailure';
  constructor(
    /**
     * `unreachable`: no answer (`cause` says why: ECONNREFUSED, a TLS code, a timeout); `egress`: the
     * egress policy refused the destination (`message` names the range); `busy`: 429/5xx on every
     * try; `wait`: a `Retry-After` longer than the caller waits.
     */
    readonly kind: HttpFailureKind,
    message: string,
    readonly attempts: number,
    readonly details: { cause?: string; status?: number; retryAfterMs?: number } = {},
  ) {
    super(message);
  }

  get status(): number | undefined {
    return this.details.status;
  }

  get retryAfterMs(): number | undefined {
    return this.details.retryAfterMs;
  }
}

const retryStatuses = new Set([500, 502, 503, 504]);

let undici: Promise<{ request: typeof undiciRequest }> | undefined;
const loadUndici = () => (undici ??= import('undici'));
let nodeTransport: Promise<{ nodeRequest: typeof nodeRequest }> | undefined;
const loadNodeTransport = () => (nodeTransport ??= import('./node-transport.js'));

export class HttpClient {
  private readonly limiter: RequestLimiter | undefined;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly headersTimeout: number;
  private readonly bodyTimeout: number;

  constructor(private readonly options: HttpOptions = {}) {
    this.limiter = options.limiter;
    this.attempts = Math.max(1, options.retries?.attempts ?? 4);
    this.baseDelayMs = options.retries?.baseDelayMs ?? 250;
    this.maxDelayMs = options.retries?.maxDelayMs ?? 8000;
    this.maxRetryAfterMs = options.retries?.maxRetryAfterMs ?? 60_000;
    this.headersTimeout = options.timeouts?.headersMs ?? 30_000;
    this.bodyTimeout = options.timeouts?.bodyMs ?? 60_000;
  }

  /** Sends `req` (with retries when `req.retry`); the caller owns the response body and its slot. */
  async send(req: HttpRequest): Promise<HttpResponse> {
    const url = typeof req.url === 'string' ? new URL(req.url) : req.url;
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent ?? 'berth', ...req.headers };
    // Inside a traced request or job (a sync copy, an import), the source sees the trace (`traceparent`).
    tracer().inject(headers);
    const attempts = req.retry ? this.attempts : 1;
    const where = { url: `${url.origin}${url.pathname}` };
    for (let attempt = 1; ; attempt++) {
      const release = this.limiter ? await this.limiter.acquire(req.signal) : () => {};
      let res: TransportResponse;
      try {
        const options: TransportOptions = {
          method: req.method,
          headers,
          ...(req.body !== undefined ? { body: req.body } : {}),
          maxRedirections: req.maxRedirections ?? 0,
          headersTimeout: this.headersTimeout,
          bodyTimeout: this.bodyTimeout,
          signal: req.signal ?? null,
        };
        const { dispatcher } = this.options;
        res = dispatcher
          ? await (await loadUndici()).request(url, { ...options, method: options.method as Dispatcher.HttpMethod, dispatcher })
          : await (await loadNodeTransport()).nodeRequest(url, options);
      } catch (err) {
        release();
        if (req.signal?.aborted) throw req.signal.reason ?? err;
        const refused = egressRefusal(err);
        if (refused) throw new HttpFailure('egress', refused, attempt);
        const cause = failure(err);
        if (attempt >= attempts) throw new HttpFailure('unreachable', `no answer from ${url.origin} (${cause})`, attempt, { cause });
        this.options.logger?.debug({ ...where, attempt, err: cause }, 'request failed; retrying');
        await sleep(this.backoff(attempt), undefined, req.signal ? { signal: req.signal } : {});
        continue;
      }
      const status = res.statusCode;
      if (req.retry && (status === 429 || retryStatuses.has(status))) {
        const retryAfter = status === 429 || status === 503 ? parseRetryAfter(first(res.headers['retry-after'])) : undefined;
        await drain(res);
        release();
        if (retryAfter !== undefined && retryAfter > this.maxRetryAfterMs) {
          throw new HttpFailure('wait', `${url.origin} asks to wait ${Math.ceil(retryAfter / 1000)} s (HTTP ${status})`, attempt, {
            status,
            retryAfterMs: retryAfter,
          });
        }
        if (attempt >= attempts) throw new HttpFailure('busy', `${url.origin} answered HTTP ${status} ${attempt} times`, attempt, { status });
        const wait = retryAfter ?? this.backoff(attempt);
        if (retryAfter !== undefined) this.limiter?.pause(retryAfter);
        this.options.logger?.debug({ ...where, status, attempt, wait }, 'asked to back off; retrying');
        await sleep(wait, undefined, req.signal ? { signal: req.signal } : {});
        continue;
      }
      return {
        status,
        headers: res.headers,
        body: res.body,
        header: (name) => first(res.headers[name]),
        release,
      };
    }
  }

  private backoff(attempt: number): number {
    const base = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    return base / 2 + Math.random() * (base / 2);
  }
}

/**
 * The whole body, at most `limit` bytes (a larger Content-Length or body throws `tooLarge()`
 * before or while reading, never after buffering it all).
 */
export async function readBounded(res: Pick<HttpResponse, 'body' | 'header'>, limit: number, tooLarge: () => Error): Promise<Buffer> {
  const declared = Number(res.header('content-length'));
  if (Number.isSafeInteger(declared) && declared > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Discards what is left of a body so the connection can be reused (or closes it). */
export async function drain(res: Pick<HttpResponse, 'body'>): Promise<void> {
  if (res.body.readableEnded || res.body.destroyed) return;
  await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
}

/**
 * The `rel="next"` target of a `Link` header (RFC 8288), resolved against `base`; undefined when
 * there is none. Link values are `<URI-reference>` plus `;`-separated parameters, `rel` holding
 * space-separated relation types; commas inside `<…>` and quoted strings belong to the value.
 * Scanned by hand (linear; the header is untrusted).
 */
export function nextLink(header: string | undefined, base: string | URL): URL | undefined {
  if (!header) return undefined;
  let i = 0;
  const s = header;
  while (i < s.length) {
    const open = s.indexOf('<', i);
    if (open < 0) return undefined;
    const close = s.indexOf('>', open + 1);
    if (close < 0) return undefined;
    const target = s.slice(open + 1, close);
    // The parameters run to the next comma outside a quoted string.
    let rel: string | undefined;
    let j = close + 1;
    let param = '';
    let quoted = false;
    const take = () => {
      const eq = param.indexOf('=');
      if (eq > 0 && param.slice(0, eq).trim().toLowerCase() === 'rel' && rel === undefined) {
        rel = param
          .slice(eq + 1)
          .trim()
          .replace(/^"(.*)"$/s, '$1');
      }
      param = '';
    };
    for (; j < s.length; j++) {
      const c = s[j] as string;
      if (quoted) {
        if (c === '\\' && j + 1 < s.length) {
          param += s[++j];
          continue;
        }
        if (c === '"') quoted = false;
        param += c;
        continue;
      }
      if (c === '"') {
        quoted = true;
        param += c;
      } else if (c === ';') take();
      else if (c === ',') break;
      else param += c;
    }
    take();
    i = j + 1;
    if (
      rel !== undefined &&
      rel
        .toLowerCase()
        .split(/[ \t]+/)
        .includes('next')
    ) {
      try {
        return new URL(target.trim(), base);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The egress policy's refusal message, if that is why the request failed. */
function egressRefusal(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { code?: unknown }).code === 'EGRESS_REFUSED') return (e as Error).message;
  }
  return undefined;
}

/** undici's errors say little at the top; the cause (ECONNREFUSED, a TLS error, a timeout) helps. */
function failure(err: unknown): string {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR') return code;
  }
  return (err as Error)?.message ?? String(err);
}
