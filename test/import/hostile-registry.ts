/**
 * A tiny registry (read-only /v2 API) on a random loopback port that serves a test image honestly
 * unless a test tells it to lie: `intercept` sees every request first and may answer it itself
 * (garbage, a wrong digest, a 429, a dropped connection, a redirect). It counts requests per path.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Blob, Manifest, TestImage } from './fixtures.js';

export type Interceptor = (req: IncomingMessage, res: ServerResponse, path: string) => boolean;

export interface HostileRegistry {
  url: string;
  host: string;
  /** Serve `image` under `repository`, with the tags given. */
  serve(repository: string, image: TestImage, tags: string[]): void;
  /** Requests seen per path (method + path, query excluded). */
  count(method: string, path: string): number;
  /** Replaces the interceptor (undefined: honest). */
  intercept: Interceptor | undefined;
  /** Require this Authorization header on every /v2 request (Basic challenge otherwise). */
  requireAuthorization: string | undefined;
  stop(): Promise<void>;
}

export async function startHostileRegistry(): Promise<HostileRegistry> {
  const manifests = new Map<string, Manifest>();
  const blobs = new Map<string, Blob>();
  const counts = new Map<string, number>();
  const state: { intercept: Interceptor | undefined; requireAuthorization: string | undefined } = { intercept: undefined, requireAuthorization: undefined };

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    const key = `${req.method} ${path}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    if (state.intercept?.(req, res, path)) return;
    if (state.requireAuthorization !== undefined && req.headers.authorization !== state.requireAuthorization) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="hostile"', 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return;
    }
    if (path === '/v2/' || path === '/v2') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{}');
      return;
    }
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
    if (manifest) {
      const found = manifests.get(`${manifest[1]}|${manifest[2]}`);
      if (!found) return notFound(res, 'MANIFEST_UNKNOWN');
      res.writeHead(200, { 'Content-Type': found.mediaType, 'Content-Length': found.bytes.length, 'Docker-Content-Digest': found.digest });
      res.end(req.method === 'HEAD' ? undefined : found.bytes);
      return;
    }
    const blob = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(path);
    if (blob) {
      const found = blobs.get(`${blob[1]}|${blob[2]}`);
      if (!found) return notFound(res, 'BLOB_UNKNOWN');
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': found.size, 'Docker-Content-Digest': found.digest });
      res.end(req.method === 'HEAD' ? undefined : found.bytes);
      return;
    }
    notFound(res, 'NAME_UNKNOWN');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    serve(repository, image, tags) {
      for (const m of [image.root, ...image.children, ...(image.referrer ? [image.referrer] : [])]) manifests.set(`${repository}|${m.digest}`, m);
      for (const tag of tags) manifests.set(`${repository}|${tag}`, image.root);
      for (const b of [...image.blobs, ...image.referrerBlobs]) blobs.set(`${repository}|${b.digest}`, b);
    },
    count: (method, path) => counts.get(`${method} ${path}`) ?? 0,
    get intercept() {
      return state.intercept;
    },
    set intercept(value) {
      state.intercept = value;
    },
    get requireAuthorization() {
      return state.requireAuthorization;
    },
    set requireAuthorization(value) {
      state.requireAuthorization = value;
    },
    stop: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}

function notFound(res: ServerResponse, code: string): void {
  res.writeHead(404, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ errors: [{ code, message: 'not found' }] }));
}
