/**
 * `HttpClient`'s transport when it has no dispatcher: the `berth` client commands, the docker
 * credential helper and the kubelet credential provider. Requests Berth's server makes always carry
 * the egress policy's undici dispatcher (net/egress.ts) and go through undici.
 *
 * Why not undici here: a one-shot process pays for loading it on its first request, and undici is
 * about a hundred modules. Measured on the project's 2-core machine, a fresh process's first
 * request (a `GET /v2/` to a local Berth) took 90–125 ms through undici's `request`, 80–90 ms
 * through Node's built-in `fetch` and 15 ms through node:http, which Node has compiled in; a
 * `berth token` made its first connection ~190 ms after it started, ~85 ms of that loading undici.
 *
 * Contract: what undici's `request` answers, for the options http.ts uses.
 * - `statusCode`; `headers` with lower-case names, a header sent more than once as an array of
 *   its values (never joined); `body` a Readable with undici's `dump`.
 * - Redirects (300, 301, 302, 303, 307, 308 with a `Location`) are followed up to
 *   `maxRedirections`, the next one answered as it is. A 303 turns the request into a GET without a
 *   body (a HEAD stays a HEAD); a redirect to another origin drops `Authorization`, `Cookie` and
 *   `Proxy-Authorization`.
 * - `headersTimeout`: the headers must arrive within it (`UND_ERR_HEADERS_TIMEOUT`);
 *   `bodyTimeout`: the body may pause at most that long (`UND_ERR_BODY_TIMEOUT`, as the body's
 *   error). Connection errors keep Node's codes (ECONNREFUSED, ENOTFOUND, TLS codes), as undici's
 *   do in their `cause`. An aborted `signal` aborts the request or the body with its reason.
 * - Connections are kept alive and reused, and an idle one does not keep the process running.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';

export interface TransportOptions {
  method: string;
  headers: Record<string, string>;
  body?: string;
  maxRedirections: number;
  headersTimeout: number;
  bodyTimeout: number;
  signal?: AbortSignal | null;
}

export type TransportBody = Readable & { dump(options?: { limit: number }): Promise<void> };

export interface TransportResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: TransportBody;
}

/** An error with undici's code for the same failure, so callers and their messages see no difference. */
export class TransportTimeout extends Error {
  constructor(
    readonly code: 'UND_ERR_HEADERS_TIMEOUT' | 'UND_ERR_BODY_TIMEOUT',
    message: string,
  ) {
    super(message);
    this.name = 'TransportTimeout';
  }
}

const redirectStatuses = new Set([300, 301, 302, 303, 307, 308]);
/** Dropped when a redirect leaves the origin the credentials were meant for. */
const credentialHeaders = ['authorization', 'cookie', 'proxy-authorization'];

let agents: { http: HttpAgent; https: HttpsAgent } | undefined;

export async function nodeRequest(url: URL, options: TransportOptions): Promise<TransportResponse> {
  let current = url;
  let method = options.method;
  let body = options.body;
  let headers = { ...options.headers };
  for (let redirects = 0; ; redirects++) {
    const res = await once(current, method, headers, body, options);
    const location = res.headers.location;
    if (redirects >= options.maxRedirections || !redirectStatuses.has(res.statusCode ?? 0) || typeof location !== 'string') return respond(res, options);
    // The redirect's own body is not wanted; reading it frees the connection for the next request
    // (an error while discarding it only costs that connection), also when `Location` is no URL.
    res.on('error', () => undefined).resume();
    const next = new URL(location, current);
    if (res.statusCode === 303 && method !== 'HEAD') {
      method = 'GET';
      body = undefined;
      headers = withoutContentHeaders(headers);
    }
    if (next.origin !== current.origin)
      headers = Object.fromEntries(Object.entries(headers).filter(([name]) => !credentialHeaders.includes(name.toLowerCase())));
    current = next;
  }
}

/** One exchange, resolved when the headers arrive. */
function once(url: URL, method: string, headers: Record<string, string>, body: string | undefined, options: TransportOptions): Promise<IncomingMessage> {
  const secure = url.protocol === 'https:';
  if (!secure && url.protocol !== 'http:') return Promise.reject(new TypeError(`unsupported protocol ${url.protocol}`));
  agents ??= { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };
  const outgoing: OutgoingHttpHeaders = { ...headers };
  if (body !== undefined) outgoing['content-length'] = Buffer.byteLength(body);
  return new Promise((resolve, reject) => {
    const req = (secure ? httpsRequest : httpRequest)(url, {
      method,
      headers: outgoing,
      agent: secure ? agents!.https : agents!.http,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const timer = setTimeout(() => req.destroy(new TransportTimeout('UND_ERR_HEADERS_TIMEOUT', 'Headers Timeout Error')), options.headersTimeout);
    req.once('response', (res) => {
      clearTimeout(timer);
      resolve(res);
    });
    // `on`, not `once`: Node hands a connection failing mid-body to the body's reader (tested), and
    // should the request itself emit a second error, it must not go unhandled.
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(options.signal?.aborted ? (options.signal.reason ?? err) : err);
    });
    req.end(body);
  });
}

function respond(res: IncomingMessage, options: TransportOptions): TransportResponse {
  const headers: TransportResponse['headers'] = {};
  for (const [name, values] of Object.entries(res.headersDistinct)) headers[name] = values && values.length === 1 ? values[0] : values;
  // Node's socket timeout is an idle timeout: the body may pause at most this long.
  res.setTimeout(options.bodyTimeout, () => res.destroy(new TransportTimeout('UND_ERR_BODY_TIMEOUT', 'Body Timeout Error')));
  const body = Object.assign(res, { dump: (dumpOptions?: { limit: number }) => dump(res, dumpOptions?.limit ?? 128 * 1024) });
  return { statusCode: res.statusCode ?? 0, headers, body };
}

/** Reads and discards the rest of the body, closing the connection instead once more than `limit` bytes came. */
function dump(res: IncomingMessage, limit: number): Promise<void> {
  if (res.readableEnded || res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let left = limit;
    res.on('data', (chunk: Buffer) => {
      left -= chunk.length;
      if (left <= 0) res.destroy();
    });
    res.on('error', () => undefined);
    res.once('close', () => resolve());
    res.resume();
  });
}

function withoutContentHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !name.toLowerCase().startsWith('content-')));
}
