/**
 * One delivery attempt over HTTP: POST the body to the subscription's URL through the egress
 * policy's dispatcher, within one overall timeout, following a few redirects, and report what
 * happened (status, latency, the start of the response body, or why there was no response).
 *
 * Redirects are followed here rather than by undici's redirect handler because undici keeps
 * every header but Authorization/Cookie on a cross-origin hop, and a subscription's custom headers
 * may hold other secrets (an API key header): on a hop to another origin none of them are sent.
 * Each hop opens its own connection through `egress.dispatcher`, so a redirect into a private
 * range is refused like a private target.
 */
import type { Dispatcher } from 'undici';
import type { Egress } from '../net/egress.js';

/** How much of a response body is kept with an attempt. */
export const responseSnippetBytes = 1024;

const followed = new Set([301, 302, 307, 308]);

export interface OutgoingRequest {
  url: string;
  body: string;
  /** Berth's own headers (content type, signature, event id): sent on every hop. */
  headers: Record<string, string>;
  /** The subscription's custom headers: sent only to the subscription URL's origin. */
  customHeaders: Record<string, string>;
}

export interface SendOptions {
  timeoutMs: number;
  maxRedirects: number;
}

export interface SendResult {
  ok: boolean;
  statusCode: number | undefined;
  error: string | undefined;
  latencyMs: number;
  responseSnippet: string | undefined;
}

export async function sendDelivery(egress: Egress, outgoing: OutgoingRequest, options: SendOptions): Promise<SendResult> {
  const started = performance.now();
  const latency = () => Math.max(0, Math.round(performance.now() - started));
  const signal = AbortSignal.timeout(options.timeoutMs);
  const origin = new URL(outgoing.url).origin;
  let url = new URL(outgoing.url);
  try {
    // Loaded with the first delivery, not when Berth starts (see net/egress.ts).
    const { request } = await import('undici');
    for (let hop = 0; ; hop++) {
      const custom = url.origin === origin ? outgoing.customHeaders : {};
      const res = await request(url, {
        method: 'POST',
        dispatcher: egress.dispatcher,
        headers: { ...custom, ...outgoing.headers },
        body: outgoing.body,
        signal,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
      });
      const location = header(res, 'location');
      if (followed.has(res.statusCode) && location !== undefined && hop < options.maxRedirects) {
        await res.body.dump().catch(() => undefined);
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          return {
            ok: false,
            statusCode: res.statusCode,
            error: `redirect to an invalid URL ${JSON.stringify(location.slice(0, 200))}`,
            latencyMs: latency(),
            responseSnippet: undefined,
          };
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          return {
            ok: false,
            statusCode: res.statusCode,
            error: `redirect to a ${next.protocol} URL not followed`,
            latencyMs: latency(),
            responseSnippet: undefined,
          };
        }
        url = next;
        continue;
      }
      const snippet = await readSnippet(res.body);
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      let error: string | undefined;
      if (!ok && res.statusCode >= 300 && res.statusCode < 400) {
        error =
          location === undefined
            ? `HTTP ${res.statusCode} without a Location`
            : `redirect not followed (more than ${options.maxRedirects} hops, or status ${res.statusCode})`;
      }
      return { ok, statusCode: res.statusCode, error, latencyMs: latency(), responseSnippet: snippet };
    }
  } catch (err) {
    return { ok: false, statusCode: undefined, error: describeError(err, url, options.timeoutMs), latencyMs: latency(), responseSnippet: undefined };
  }
}

function header(res: Dispatcher.ResponseData, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The first `responseSnippetBytes` of a body as text; the rest is discarded unread. */
async function readSnippet(body: Dispatcher.ResponseData['body']): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= responseSnippetBytes) break;
    }
  } catch {
    // A body cut short still leaves what arrived.
  } finally {
    body.destroy();
  }
  if (size === 0) return undefined;
  return Buffer.concat(chunks).subarray(0, responseSnippetBytes).toString('utf8');
}

/** One line saying why no usable response arrived; never includes headers or the body. */
function describeError(err: unknown, url: URL, timeoutMs: number): string {
  for (let cause: unknown = err, depth = 0; cause instanceof Error && depth < 5; cause = cause.cause, depth++) {
    if ((cause as { code?: unknown }).code === 'EGRESS_REFUSED') return `refused by egress policy: ${cause.message}`;
  }
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT') {
    return `timed out after ${timeoutMs} ms`;
  }
  const code = e.code ?? e.cause?.code;
  const message = e.cause?.message ?? e.message ?? String(err);
  return `${code ? `${code}: ` : ''}${message} (${url.origin})`.slice(0, 500);
}
