// Shared helpers for the OCI Distribution Specification v1.1 integration tests.
//
// Every request goes over real HTTP to a Berth server listening on a random
// loopback port (see test/support/server.ts). Requests are made with node:http
// rather than fetch so that paths are sent byte-for-byte (fetch/URL would
// normalise `..` and `//`) and so that Content-Length / Transfer-Encoding are
// fully under the test's control. node:net is used for deliberately broken
// requests (truncated bodies, lying Content-Length).

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

import { urls } from '../../src/api/urls.js';
import { testBackend } from '../support/backends.js';
import { objectContent, objectKeysFor } from '../support/s3.js';
import { startTestServer } from '../support/server.js';
import type { TestServer } from '../support/server.js';

export { startTestServer };
export type { TestServer };

// ---------------------------------------------------------------------------
// Media types
// ---------------------------------------------------------------------------

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** The error codes of the spec's "Error Codes" table (code-1 .. code-14). */
export const SPEC_ERROR_CODES: readonly string[] = [
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
];

// ---------------------------------------------------------------------------
// Digests and content
// ---------------------------------------------------------------------------

export function sha256(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

export function sha512(data: Buffer | string): string {
  return 'sha512:' + createHash('sha512').update(data).digest('hex');
}

/** Computes the digest of `data` using the algorithm named by `digest`. */
export function digestWithAlgorithmOf(digest: string, data: Buffer): string {
  const algo = digest.split(':')[0];
  if (algo === 'sha256') return sha256(data);
  if (algo === 'sha512') return sha512(data);
  throw new Error(`unsupported algorithm in ${digest}`);
}

export interface Blob {
  data: Buffer;
  digest: string;
  size: number;
}

export function blobOf(data: Buffer | string, algo: 'sha256' | 'sha512' = 'sha256'): Blob {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  return { data: buf, digest: algo === 'sha256' ? sha256(buf) : sha512(buf), size: buf.length };
}

export function randomBlob(size = 1024, algo: 'sha256' | 'sha512' = 'sha256'): Blob {
  return blobOf(randomBytes(size), algo);
}

let repoCounter = 0;
/** A fresh, valid, unique repository name (two path components). */
export function uniqueRepo(prefix = 'it'): string {
  repoCounter += 1;
  return `${prefix}/r${repoCounter}-${randomBytes(4).toString('hex')}`;
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** A one-line description of the request, for assertion messages. */
  request: string;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Send the body with Transfer-Encoding: chunked, split into these pieces. */
  chunks?: Buffer[];
  /** Do not add a Content-Length header automatically. */
  noContentLength?: boolean;
}

/**
 * Sends one HTTP request. `target` is either a path (sent verbatim, no
 * normalisation) or an absolute URL (e.g. a Location header value).
 */
export function request(base: string, method: string, target: string, options: RequestOptions = {}): Promise<HttpResponse> {
  const baseUrl = new URL(base);
  let host = baseUrl.hostname;
  let port = Number(baseUrl.port);
  let reqPath = target;
  if (/^https?:\/\//i.test(target)) {
    const u = new URL(target);
    host = u.hostname;
    port = Number(u.port);
    reqPath = u.pathname + u.search;
  }
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  let body: Buffer | undefined;
  if (options.chunks !== undefined) {
    headers['Transfer-Encoding'] = 'chunked';
  } else {
    body = options.body === undefined ? undefined : Buffer.from(options.body);
    const methodHasBody = !['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(method) || body !== undefined;
    if (!options.noContentLength && methodHasBody && !hasHeader(headers, 'content-length')) {
      headers['Content-Length'] = String(body?.length ?? 0);
    }
  }
  const description = `${method} ${reqPath}`;
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path: reqPath, headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(parts),
          request: description,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.chunks !== undefined) {
      for (const c of options.chunks) req.write(c);
      req.end();
    } else if (body !== undefined) {
      req.end(body);
    } else {
      req.end();
    }
  });
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}

/** Single-valued response header (lower-cased name). */
export function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  if (Array.isArray(v)) return v.join(', ');
  return v;
}

export function requireHeader(res: HttpResponse, name: string): string {
  const v = header(res, name);
  assert.ok(v !== undefined && v !== '', `${res.request}: expected a ${name} header (${show(res)})`);
  return v;
}

export function jsonBody(res: HttpResponse): unknown {
  try {
    return JSON.parse(res.body.toString('utf8')) as unknown;
  } catch {
    assert.fail(`${res.request}: expected a JSON body, got ${show(res)}`);
  }
}

/** Short, readable description of a response for assertion messages. */
export function show(res: HttpResponse): string {
  const hdrs = Object.entries(res.headers)
    .filter(([k]) => !['date', 'connection', 'keep-alive'].includes(k))
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : String(v)}`)
    .join('; ');
  let text = res.body.subarray(0, 400).toString('utf8');
  if (res.body.length > 400) text += '…';
  return `status ${res.status} [${hdrs}] body=${JSON.stringify(text)}`;
}

export function assertStatus(res: HttpResponse, expected: number | readonly number[]): void {
  const list = typeof expected === 'number' ? [expected] : expected;
  assert.ok(list.includes(res.status), `${res.request}: expected status ${list.join(' or ')}, got ${show(res)}`);
}

export interface ErrorEntry {
  code: string;
  message?: unknown;
  detail?: unknown;
}

/**
 * Asserts the spec's error body shape: {"errors":[{"code","message","detail"?}]},
 * with every code drawn from the spec's table. If `codes` is given, at least one
 * error must carry one of them.
 */
export function assertErrorBody(res: HttpResponse, codes?: string | readonly string[]): ErrorEntry[] {
  const ct = header(res, 'content-type') ?? '';
  assert.match(ct, /^application\/json\b/i, `${res.request}: error body should be JSON, got ${show(res)}`);
  const parsed = jsonBody(res);
  assert.ok(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed), `${res.request}: error body must be an object, got ${show(res)}`);
  const errors = (parsed as { errors?: unknown }).errors;
  assert.ok(Array.isArray(errors) && errors.length > 0, `${res.request}: "errors" must be a non-empty array, got ${show(res)}`);
  const out: ErrorEntry[] = [];
  for (const e of errors as unknown[]) {
    assert.ok(typeof e === 'object' && e !== null, `${res.request}: each error must be an object`);
    const entry = e as Record<string, unknown>;
    assert.equal(typeof entry['code'], 'string', `${res.request}: error.code must be a string (${show(res)})`);
    const code = entry['code'] as string;
    assert.match(code, /^[A-Z_]+$/, `${res.request}: error.code must be upper-case letters and underscores`);
    assert.ok(SPEC_ERROR_CODES.includes(code), `${res.request}: error.code ${code} is not one of the spec's error codes`);
    if ('message' in entry) {
      assert.equal(typeof entry['message'], 'string', `${res.request}: error.message must be a string`);
    }
    out.push({ code, message: entry['message'], detail: entry['detail'] });
  }
  if (codes !== undefined) {
    const want = typeof codes === 'string' ? [codes] : codes;
    assert.ok(
      out.some((e) => want.includes(e.code)),
      `${res.request}: expected error code ${want.join(' or ')}, got ${show(res)}`,
    );
  }
  return out;
}

/** Asserts status plus spec error body in one go. */
export function assertError(res: HttpResponse, status: number | readonly number[], codes?: string | readonly string[]): void {
  assertStatus(res, status);
  if (res.request.startsWith('HEAD ')) return; // HEAD responses carry no body
  assertErrorBody(res, codes);
}

export function assertNot5xx(res: HttpResponse): void {
  assert.ok(res.status < 500, `${res.request}: must never be a server error, got ${show(res)}`);
}

// ---------------------------------------------------------------------------
// Raw sockets (for broken requests)
// ---------------------------------------------------------------------------

export interface RawResult {
  /** Everything the server sent back (may be empty). */
  response: string;
  status: number | undefined;
}

/**
 * Writes `head` and `body` to a raw TCP connection. With `halfClose` the write
 * side is closed afterwards (the server sees EOF, e.g. a truncated body). The
 * promise resolves when the server closes the connection, or after `waitMs`
 * without the connection closing (then the socket is destroyed).
 */
export function rawRequest(
  base: string,
  head: string,
  body: Buffer = Buffer.alloc(0),
  opts: { halfClose?: boolean; waitMs?: number } = {},
): Promise<RawResult> {
  const u = new URL(base);
  const waitMs = opts.waitMs ?? 5000;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: u.hostname, port: Number(u.port) });
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const response = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(response);
      resolve({ response, status: m?.[1] === undefined ? undefined : Number(m[1]) });
    };
    const timer = setTimeout(finish, waitMs);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      // Stop once a complete response with a Content-Length has arrived.
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end >= 0) {
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end));
        if (cl?.[1] !== undefined && Buffer.byteLength(text, 'latin1') >= end + 4 + Number(cl[1])) finish();
      }
    });
    socket.on('error', finish);
    socket.on('close', finish);
    socket.on('connect', () => {
      socket.write(head);
      if (body.length > 0) socket.write(body);
      if (opts.halfClose) socket.end();
    });
  });
}

// ---------------------------------------------------------------------------
// Registry operations
// ---------------------------------------------------------------------------

export function uploadsPath(repo: string): string {
  return urls.uploads(repo);
}

/** Appends query parameters to a (possibly absolute, possibly query-bearing) Location. */
export function withQuery(location: string, params: Record<string, string>): string {
  const q = Object.entries(params)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
  return location + (location.includes('?') ? '&' : '?') + q;
}

/** POST /v2/<name>/blobs/uploads/ — opens a session; returns its Location. */
export async function startUpload(server: TestServer, repo: string): Promise<{ res: HttpResponse; location: string }> {
  const res = await request(server.url, 'POST', uploadsPath(repo), { headers: { 'Content-Length': '0' } });
  assertStatus(res, 202);
  return { res, location: requireHeader(res, 'location') };
}

/**
 * An upload session. `location` always holds the most recent Location the
 * registry returned: the spec says each request SHOULD use the Location of
 * the previous response (registries may encode state in it).
 */
export interface UploadSession {
  location: string;
  post: HttpResponse;
}

export async function openUpload(server: TestServer, repo: string): Promise<UploadSession> {
  const { res, location } = await startUpload(server, repo);
  return { location, post: res };
}

function track(s: UploadSession, res: HttpResponse): HttpResponse {
  const loc = header(res, 'location');
  if (res.status >= 200 && res.status < 300 && loc !== undefined && loc !== '') s.location = loc;
  return res;
}

/** PATCH a chunk (with Content-Range unless `range` is undefined); follows the returned Location. */
export async function patchUpload(
  server: TestServer,
  s: UploadSession,
  data: Buffer,
  range: string | undefined,
  opts: { chunked?: boolean } = {},
): Promise<HttpResponse> {
  const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' };
  if (range !== undefined) headers['Content-Range'] = range;
  const res = opts.chunked
    ? await request(server.url, 'PATCH', s.location, {
        headers,
        chunks: [data.subarray(0, Math.floor(data.length / 2)), data.subarray(Math.floor(data.length / 2))],
      })
    : await request(server.url, 'PATCH', s.location, { headers, body: data });
  return track(s, res);
}

/** GET the upload status; follows the returned Location. */
export async function uploadStatus(server: TestServer, s: UploadSession): Promise<HttpResponse> {
  return track(s, await request(server.url, 'GET', s.location));
}

/** POST then PUT (the upload flow every registry must support). Returns the blob. */
export async function pushBlob(server: TestServer, repo: string, blob: Blob | Buffer | string): Promise<Blob> {
  const b = Buffer.isBuffer(blob) || typeof blob === 'string' ? blobOf(blob) : blob;
  const { location } = await startUpload(server, repo);
  const res = await request(server.url, 'PUT', withQuery(location, { digest: b.digest }), {
    headers: { 'Content-Type': 'application/octet-stream' },
    body: b.data,
  });
  assertStatus(res, 201);
  return b;
}

export async function pushManifest(server: TestServer, repo: string, reference: string, body: Buffer | string, contentType: string): Promise<HttpResponse> {
  return request(server.url, 'PUT', urls.manifest(repo, reference), {
    headers: { 'Content-Type': contentType },
    body,
  });
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}

export function descriptorOf(mediaType: string, b: { digest: string; size: number }): Descriptor {
  return { mediaType, digest: b.digest, size: b.size };
}

export interface ManifestDoc {
  /** The exact bytes pushed. */
  bytes: Buffer;
  digest: string;
  size: number;
  mediaType: string;
}

export function manifestDoc(obj: unknown, mediaType: string, pretty = false): ManifestDoc {
  const bytes = Buffer.from(pretty ? JSON.stringify(obj, null, 3) + '\n' : JSON.stringify(obj));
  return { bytes, digest: sha256(bytes), size: bytes.length, mediaType };
}

export interface OciManifestOptions {
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export function ociManifest(o: OciManifestOptions, pretty = false): ManifestDoc {
  const obj: Record<string, unknown> = { schemaVersion: 2, mediaType: MT.ociManifest };
  if (o.artifactType !== undefined) obj['artifactType'] = o.artifactType;
  obj['config'] = o.config;
  obj['layers'] = o.layers;
  if (o.subject !== undefined) obj['subject'] = o.subject;
  if (o.annotations !== undefined) obj['annotations'] = o.annotations;
  return manifestDoc(obj, MT.ociManifest, pretty);
}

export function ociIndex(
  manifests: Descriptor[],
  extra: { subject?: Descriptor; artifactType?: string; annotations?: Record<string, string> } = {},
): ManifestDoc {
  const obj: Record<string, unknown> = { schemaVersion: 2, mediaType: MT.ociIndex };
  if (extra.artifactType !== undefined) obj['artifactType'] = extra.artifactType;
  obj['manifests'] = manifests;
  if (extra.subject !== undefined) obj['subject'] = extra.subject;
  if (extra.annotations !== undefined) obj['annotations'] = extra.annotations;
  return manifestDoc(obj, MT.ociIndex);
}

export function dockerManifest(config: Descriptor, layers: Descriptor[]): ManifestDoc {
  return manifestDoc({ schemaVersion: 2, mediaType: MT.dockerManifest, config, layers }, MT.dockerManifest);
}

export function dockerList(manifests: Descriptor[]): ManifestDoc {
  return manifestDoc({ schemaVersion: 2, mediaType: MT.dockerList, manifests }, MT.dockerList);
}

export interface PushedImage {
  config: Blob;
  layers: Blob[];
  manifest: ManifestDoc;
}

/**
 * Pushes a config blob and `layerCount` random layers, then builds (but does
 * not push) an OCI image manifest over them.
 */
export async function prepareOciImage(
  server: TestServer,
  repo: string,
  opts: {
    layerCount?: number;
    subject?: Descriptor;
    artifactType?: string;
    annotations?: Record<string, string>;
    configMediaType?: string;
    pretty?: boolean;
  } = {},
): Promise<PushedImage> {
  const config = await pushBlob(
    server,
    repo,
    blobOf(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') })),
  );
  const layers: Blob[] = [];
  for (let i = 0; i < (opts.layerCount ?? 1); i++) layers.push(await pushBlob(server, repo, randomBlob(512 + i)));
  const m: OciManifestOptions = {
    config: descriptorOf(opts.configMediaType ?? MT.ociConfig, config),
    layers: layers.map((l) => descriptorOf(MT.ociLayer, l)),
  };
  if (opts.subject !== undefined) m.subject = opts.subject;
  if (opts.artifactType !== undefined) m.artifactType = opts.artifactType;
  if (opts.annotations !== undefined) m.annotations = opts.annotations;
  return { config, layers, manifest: ociManifest(m, opts.pretty ?? false) };
}

/** Pushes an OCI image (blobs + manifest) under `reference`; asserts 201. */
export async function pushOciImage(
  server: TestServer,
  repo: string,
  reference: string,
  opts: Parameters<typeof prepareOciImage>[2] = {},
): Promise<PushedImage> {
  const img = await prepareOciImage(server, repo, opts);
  const res = await pushManifest(server, repo, reference, img.manifest.bytes, MT.ociManifest);
  assertStatus(res, 201);
  return img;
}

/** An artifact manifest (OCI image manifest with the empty config) pointing at `subject`. */
export async function pushArtifact(
  server: TestServer,
  repo: string,
  subject: Descriptor,
  opts: { artifactType?: string; configMediaType?: string; annotations?: Record<string, string> } = {},
): Promise<{ manifest: ManifestDoc; res: HttpResponse }> {
  const configBytes = opts.configMediaType === undefined ? '{}' : JSON.stringify({ kind: opts.configMediaType, n: randomBytes(4).toString('hex') });
  const config = await pushBlob(server, repo, blobOf(configBytes));
  const layer = await pushBlob(server, repo, randomBlob(64));
  const m: OciManifestOptions = {
    config: descriptorOf(opts.configMediaType ?? MT.ociEmpty, config),
    layers: [descriptorOf('application/octet-stream', layer)],
    subject,
  };
  if (opts.artifactType !== undefined) m.artifactType = opts.artifactType;
  if (opts.annotations !== undefined) m.annotations = opts.annotations;
  const manifest = ociManifest(m);
  const res = await pushManifest(server, repo, manifest.digest, manifest.bytes, MT.ociManifest);
  assertStatus(res, 201);
  return { manifest, res };
}

// ---------------------------------------------------------------------------
// Filesystem checks
// ---------------------------------------------------------------------------

/** SQLite side files come and go on their own; they are not upload leftovers. */
const IGNORED_FILE = /(-wal|-shm|-journal)$/;

/** All regular files under `dir` (relative paths), excluding SQLite side files. */
export async function listFiles(dir: string): Promise<Set<string>> {
  const out = new Set<string>();
  async function walk(d: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) await walk(full);
      else if (!IGNORED_FILE.test(e.name)) out.add(path.relative(dir, full));
    }
  }
  await walk(dir);
  // With blobs in S3 (BERTH_TEST_BACKEND=s3), the server's bucket is part of its data.
  if (testBackend().s3) for (const key of await objectKeysFor(dir)) out.add(s3Marker + key);
  return out;
}

const s3Marker = 's3:';

export async function newFilesSince(dir: string, before: Set<string>): Promise<string[]> {
  const after = await listFiles(dir);
  return [...after].filter((f) => !before.has(f)).sort();
}

/**
 * Polls until no file appeared under `dir` since `before` (the server may
 * clean up asynchronously after an aborted request), then asserts it.
 */
export async function assertNoNewFiles(dir: string, before: Set<string>, what: string): Promise<void> {
  let extra: string[] = [];
  for (let i = 0; i < 50; i++) {
    extra = await newFilesSince(dir, before);
    if (extra.length === 0) return;
    await sleep(100);
  }
  assert.deepEqual(extra, [], `${what}: files were left behind under the data dir`);
}

/** Files under `dir` whose content has the given sha256 digest. */
export async function filesWithContent(dir: string, blob: Blob): Promise<string[]> {
  const found: string[] = [];
  for (const rel of await listFiles(dir)) {
    if (rel.startsWith(s3Marker)) {
      if (sha256(await objectContent(dir, rel.slice(s3Marker.length))) === sha256(blob.data)) found.push(rel);
      continue;
    }
    const full = path.join(dir, rel);
    let st;
    try {
      st = await stat(full);
    } catch {
      continue;
    }
    if (st.size !== blob.size) continue;
    const data = await readFile(full);
    if (sha256(data) === sha256(blob.data)) found.push(rel);
  }
  return found;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Parses `Link: <url>; rel="next"`; returns the URL or undefined. */
export function nextLink(res: HttpResponse): string | undefined {
  const link = header(res, 'link');
  if (link === undefined) return undefined;
  const m = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(link);
  assert.ok(m?.[1] !== undefined, `${res.request}: malformed Link header ${JSON.stringify(link)}`);
  return m[1];
}
