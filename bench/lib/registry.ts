/**
 * Minimal OCI Distribution client on node:http, used for the raw (client-cost-free)
 * measurements and the correctness checks. Every failed exchange becomes a
 * `ProtocolError` that carries the exact request and response, so the report can
 * quote them.
 */
import { type Agent, request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

export interface Exchange {
  method: string;
  url: string;
  requestHeaders: OutgoingHttpHeaders;
  requestBodyNote: string;
  status: number;
  responseHeaders: IncomingHttpHeaders;
  responseBody: Buffer;
}

export class ProtocolError extends Error {
  constructor(
    message: string,
    readonly exchange: Exchange | null,
  ) {
    super(message);
  }
}

export function describeExchange(x: Exchange): string {
  const u = new URL(x.url);
  const lines = [`${x.method} ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`];
  for (const [k, v] of Object.entries(x.requestHeaders)) lines.push(`${k}: ${String(v)}`);
  if (x.requestBodyNote !== '') lines.push('', x.requestBodyNote);
  lines.push('', `HTTP/1.1 ${x.status}`);
  for (const [k, v] of Object.entries(x.responseHeaders)) {
    lines.push(`${k}: ${Array.isArray(v) ? v.join(', ') : String(v)}`);
  }
  const body = x.responseBody.subarray(0, 1024).toString('utf8');
  if (body !== '') lines.push('', body + (x.responseBody.length > 1024 ? ' …' : ''));
  return lines.join('\n');
}

export interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  exchange: Exchange;
}

export function request(
  url: string,
  opts: {
    method: string;
    headers?: OutgoingHttpHeaders;
    body?: Buffer;
    agent?: Agent;
    timeoutMs?: number;
    /** Discard the response body (count bytes only). */
    discardBody?: boolean;
  },
): Promise<Response & { bytes: number }> {
  const headers: OutgoingHttpHeaders = { ...(opts.headers ?? {}) };
  if (opts.body !== undefined) headers['content-length'] = opts.body.length;
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: opts.method, headers, ...(opts.agent !== undefined ? { agent: opts.agent } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (opts.discardBody !== true || chunks.length < 1) chunks.push(c);
      });
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const status = res.statusCode ?? 0;
        const exchange: Exchange = {
          method: opts.method,
          url,
          requestHeaders: headers,
          requestBodyNote: opts.body !== undefined ? `<${opts.body.length} bytes>` : '',
          status,
          responseHeaders: res.headers,
          responseBody: body,
        };
        resolve({ status, headers: res.headers, body, bytes, exchange });
      });
    });
    req.setTimeout(opts.timeoutMs ?? 60_000, () => {
      req.destroy(new Error(`timeout after ${opts.timeoutMs ?? 60_000} ms`));
    });
    req.on('error', (err) => {
      // No response at all (e.g. the server closed a kept-alive connection): say which request.
      const u = new URL(url);
      const reused = req.reusedSocket ? ' on a reused keep-alive connection' : ' on a new connection';
      const hdrs = Object.entries(headers)
        .map(([k, v]) => `${k}: ${String(v)}`)
        .join('\n');
      reject(
        new Error(
          `${err.message}: no response to\n\n${opts.method} ${u.pathname}${u.search} HTTP/1.1\nHost: ${u.host}${hdrs !== '' ? `\n${hdrs}` : ''}\n\n(sent${reused})`,
        ),
      );
    });
    req.end(opts.body);
  });
}

export function expectStatus(res: Response, want: number | readonly number[], what: string): void {
  const ok = typeof want === 'number' ? res.status === want : want.includes(res.status);
  if (!ok) {
    throw new ProtocolError(`${what}: expected HTTP ${String(want)}, got ${res.status}`, res.exchange);
  }
}

function header(res: Response, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Resolves an upload Location against the base and appends digest=. */
export function withDigest(base: string, location: string, digest: string): string {
  const u = new URL(location, base);
  u.searchParams.append('digest', digest);
  return u.toString();
}

/** POST /v2/<name>/blobs/uploads/ → upload URL (absolute). */
export async function startUpload(base: string, repo: string, agent?: Agent): Promise<string> {
  const res = await request(`${base}/v2/${repo}/blobs/uploads/`, {
    method: 'POST',
    headers: { 'content-length': 0 },
    ...(agent !== undefined ? { agent } : {}),
  });
  expectStatus(res, 202, 'start blob upload');
  const loc = header(res, 'location');
  if (loc === undefined || loc === '') throw new ProtocolError('start blob upload: 202 without Location', res.exchange);
  return new URL(loc, base).toString();
}

/** POST + PUT ?digest= with the whole blob in the PUT body. */
export async function pushBlob(base: string, repo: string, data: Buffer, digest: string, agent?: Agent): Promise<void> {
  const loc = await startUpload(base, repo, agent);
  const res = await request(withDigest(base, loc, digest), {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream' },
    body: data,
    ...(agent !== undefined ? { agent } : {}),
  });
  expectStatus(res, 201, 'complete blob upload (PUT ?digest=)');
  const got = header(res, 'docker-content-digest');
  if (got !== undefined && got !== digest) {
    throw new ProtocolError(`complete blob upload: Docker-Content-Digest ${got} != ${digest}`, res.exchange);
  }
}

export async function putManifest(base: string, repo: string, ref: string, body: Buffer, mediaType: string): Promise<void> {
  const res = await request(`${base}/v2/${repo}/manifests/${ref}`, {
    method: 'PUT',
    headers: { 'content-type': mediaType },
    body,
  });
  expectStatus(res, 201, 'PUT manifest');
}
