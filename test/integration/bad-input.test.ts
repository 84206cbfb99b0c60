// Fuzz-style bad input against the OCI Distribution Spec v1.1 surface:
// invalid repository names (incl. path traversal), malformed digests and tags,
// invalid manifests, oversized manifests, truncated bodies, wrong
// Content-Range. Every request must get its spec error (never a 5xx) and
// must leave no file behind — inside or outside the data directory.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  MT,
  assertError,
  assertErrorBody,
  assertNoNewFiles,
  assertNot5xx,
  assertStatus,
  blobOf,
  descriptorOf,
  filesWithContent,
  header,
  listFiles,
  newFilesSince,
  prepareOciImage,
  pushOciImage,
  pushBlob,
  pushManifest,
  rawRequest,
  randomBlob,
  request,
  requireHeader,
  sha256,
  sleep,
  startTestServer,
  openUpload,
  patchUpload,
  startUpload,
  uploadStatus,
  uniqueRepo,
  uploadsPath,
  withQuery,
} from './helpers.js';
import type { HttpResponse, ManifestDoc, TestServer, UploadSession } from './helpers.js';

/** Marker embedded in every hostile name, so stray files can be found anywhere. */
const MARK = `berthfuzz${randomBytes(4).toString('hex')}`;

let server: TestServer;
let small: TestServer; // maxManifestBytes: 2048
const SMALL_LIMIT = 2048;

/** Everything beside each data dir (its parent, minus the data dir itself), taken before any request. */
const outsideBefore = new Map<string, string[]>();

async function listOutside(dataDir: string): Promise<string[]> {
  const parent = path.dirname(dataDir);
  const out: string[] = [];
  async function walk(dir: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (full === dataDir) continue;
      out.push(path.relative(parent, full) + (e.isDirectory() ? '/' : ''));
      if (e.isDirectory()) await walk(full);
    }
  }
  await walk(parent);
  return out.sort();
}

before(async () => {
  server = await startTestServer();
  small = await startTestServer({ maxManifestBytes: SMALL_LIMIT });
  for (const s of [server, small]) outsideBefore.set(s.dataDir, await listOutside(s.dataDir));
});

after(async () => {
  await server.stop();
  await small.stop();
});

const octet = { 'Content-Type': 'application/octet-stream' };

// ---------------------------------------------------------------------------
// Repository names
// ---------------------------------------------------------------------------

/** Names that are syntactically reachable by the router but violate the name grammar. */
const INVALID_BUT_ROUTABLE = [`Upper${MARK}`, `${MARK}/UPPER`, `-${MARK}`, `${MARK}-`, `${MARK}.`, `${MARK}..x`, `${MARK}___x`, `${MARK}/_x`, `${MARK}%21`];

/** Names that try to escape or confuse the path layout; 400 NAME_INVALID or 404. */
const HOSTILE_NAMES = [
  `../${MARK}`,
  `../../${MARK}`,
  `../../../../../../../../tmp/${MARK}`,
  `a/../../${MARK}`,
  `${MARK}/..`,
  `${MARK}/../..`,
  `${MARK}/.`,
  `./${MARK}`,
  `/${MARK}`,
  `a//${MARK}`,
  `${MARK}//`,
  `%2e%2e/%2e%2e/${MARK}`,
  `..%2f..%2f${MARK}`,
  `a%2f..%2f..%2f${MARK}`,
  `${MARK}%2f..%2f..`,
  `%2e%2e%5c%2e%2e%5c${MARK}`,
  `..\\..\\${MARK}`,
  `${MARK}%00x`,
  `${MARK}%0ax`,
];

interface Endpoint {
  label: string;
  method: string;
  path: (name: string) => string;
  body?: () => Buffer;
  headers?: Record<string, string>;
}

const someBlob = randomBlob(32);
const ENDPOINTS: Endpoint[] = [
  { label: 'GET tags/list', method: 'GET', path: (n) => `/v2/${n}/tags/list` },
  { label: 'GET manifests/<tag>', method: 'GET', path: (n) => `/v2/${n}/manifests/latest` },
  { label: 'HEAD manifests/<tag>', method: 'HEAD', path: (n) => `/v2/${n}/manifests/latest` },
  {
    label: 'PUT manifests/<tag>',
    method: 'PUT',
    path: (n) => `/v2/${n}/manifests/latest`,
    headers: { 'Content-Type': MT.ociManifest },
    body: () => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: descriptorOf(MT.ociEmpty, blobOf('{}')), layers: [] })),
  },
  { label: 'DELETE manifests/<tag>', method: 'DELETE', path: (n) => `/v2/${n}/manifests/latest` },
  { label: 'GET blobs/<digest>', method: 'GET', path: (n) => `/v2/${n}/blobs/${someBlob.digest}` },
  { label: 'DELETE blobs/<digest>', method: 'DELETE', path: (n) => `/v2/${n}/blobs/${someBlob.digest}` },
  { label: 'POST blobs/uploads/', method: 'POST', path: (n) => `/v2/${n}/blobs/uploads/` },
  {
    label: 'POST blobs/uploads/?digest=',
    method: 'POST',
    path: (n) => `/v2/${n}/blobs/uploads/?digest=${someBlob.digest}`,
    headers: octet,
    body: () => someBlob.data,
  },
  { label: 'POST blobs/uploads/?mount=', method: 'POST', path: (n) => `/v2/${n}/blobs/uploads/?mount=${someBlob.digest}&from=${n}` },
  {
    label: 'PATCH blobs/uploads/<id>',
    method: 'PATCH',
    path: (n) => `/v2/${n}/blobs/uploads/00000000-0000-4000-8000-000000000000`,
    headers: { ...octet, 'Content-Range': '0-31' },
    body: () => someBlob.data,
  },
  { label: 'GET referrers/<digest>', method: 'GET', path: (n) => `/v2/${n}/referrers/${someBlob.digest}` },
];

async function send(s: TestServer, ep: Endpoint, name: string): Promise<HttpResponse> {
  const opts: { headers?: Record<string, string>; body?: Buffer } = {};
  if (ep.headers !== undefined) opts.headers = ep.headers;
  if (ep.body !== undefined) opts.body = ep.body();
  return request(s.url, ep.method, ep.path(name), opts);
}

describe('invalid repository names', () => {
  for (const ep of ENDPOINTS) {
    it(`${ep.label}: answers a name with upper-case letters with 400 NAME_INVALID`, async () => {
      const res = await send(server, ep, `Invalid${MARK}/Name`);
      assertError(res, 400, 'NAME_INVALID');
    });
  }

  for (const name of INVALID_BUT_ROUTABLE) {
    it(`answers ${JSON.stringify(name.length > 40 ? `${name.slice(0, 12)}…(${name.length})` : name)} with 400 NAME_INVALID on every endpoint`, async () => {
      const before = await listFiles(server.dataDir);
      for (const ep of ENDPOINTS) {
        const res = await send(server, ep, name);
        assertError(res, 400, 'NAME_INVALID');
      }
      await assertNoNewFiles(server.dataDir, before, `requests for repository ${name}`);
    });
  }

  for (const name of HOSTILE_NAMES) {
    it(`answers ${JSON.stringify(name)} with 400 NAME_INVALID or 404 on every endpoint, never 5xx or success`, async () => {
      const before = await listFiles(server.dataDir);
      for (const ep of ENDPOINTS) {
        const res = await send(server, ep, name);
        assertNot5xx(res);
        assert.ok(res.status === 400 || res.status === 404, `${res.request}: expected 400 or 404, got status ${res.status}`);
        if (ep.method !== 'HEAD') {
          if (res.status === 400) assertErrorBody(res, 'NAME_INVALID');
          else assertErrorBody(res);
        }
      }
      await assertNoNewFiles(server.dataDir, before, `requests for repository ${name}`);
    });
  }

  // Repository names are at most 255 characters (src/oci/names.ts), however many components.
  for (const name of [`${MARK}${'a'.repeat(300)}`, `${MARK}/${'a/'.repeat(150)}b`]) {
    it(`answers a name over 255 characters (${name.length}) with 400 NAME_INVALID on every endpoint`, async () => {
      const before = await listFiles(server.dataDir);
      for (const ep of ENDPOINTS) {
        const res = await send(server, ep, name);
        if (ep.method === 'HEAD') assertStatus(res, 400);
        else assertError(res, 400, 'NAME_INVALID');
      }
      await assertNoNewFiles(server.dataDir, before, `requests for a ${name.length}-character repository name`);
    });
  }

  it('accepts a name of exactly 255 characters', async () => {
    const name = `${MARK}/${'a'.repeat(255 - MARK.length - 1)}`;
    assert.equal(name.length, 255);
    await pushOciImage(server, name, 'v1');
    assertStatus(await request(server.url, 'GET', `/v2/${name}/tags/list`), 200);
  });

  it('accepts names at the edges of the grammar (dots, dashes, double underscore, many components)', async () => {
    for (const name of ['a', '0', 'a.b', 'a-b', 'a--b', 'a__b', 'a_b', 'a/b/c/d/e/f', 'x1.y2-z3/q_4']) {
      const r = `${MARK.toLowerCase()}ok/${name}`;
      const res = await request(server.url, 'POST', withQuery(uploadsPath(r), { digest: someBlob.digest }), { headers: octet, body: someBlob.data });
      assertStatus(res, 201);
    }
  });
});

// ---------------------------------------------------------------------------
// Digests
// ---------------------------------------------------------------------------

const HEX64 = 'a'.repeat(64);
const MALFORMED_DIGESTS = [
  'sha256:abc',
  `sha256:${'g'.repeat(64)}`,
  `sha256:${'A'.repeat(64)}`,
  `sha256:${'a'.repeat(65)}`,
  `sha256:${'a'.repeat(63)}`,
  `sha512:${HEX64}`,
  'sha256:',
  `:${HEX64}`,
  `sha256${HEX64}`,
  `SHA256:${HEX64}`,
  `sha256::${HEX64}`,
  `sha256:${HEX64}:`,
  `sha256:${HEX64.slice(0, 60)}%2f..`,
  'sha256:..%2f..%2f..%2fetc%2fpasswd',
  `sha256:${HEX64}%00`,
  `sha256:${HEX64}%20`,
  `sha 256:${HEX64}`.replace(' ', '%20'),
];

describe('malformed digests', () => {
  for (const d of MALFORMED_DIGESTS) {
    const label = JSON.stringify(d.length > 30 ? `${d.slice(0, 24)}…` : d);
    it(`rejects ${label} as a blob digest and as an upload digest with 400 DIGEST_INVALID`, async () => {
      const repo = uniqueRepo('fuzz');
      await pushBlob(server, repo, randomBlob(8));
      const before = await listFiles(server.dataDir);

      // A digest carrying an encoded '/' may legitimately fail to match the route at all.
      const pathStatus = d.includes('%2f') ? [400, 404] : [400];
      const get = await request(server.url, 'GET', `/v2/${repo}/blobs/${d}`);
      if (get.status === 404) assertError(get, pathStatus);
      else assertError(get, pathStatus, 'DIGEST_INVALID');
      const head = await request(server.url, 'HEAD', `/v2/${repo}/blobs/${d}`);
      assertStatus(head, pathStatus);
      const del = await request(server.url, 'DELETE', `/v2/${repo}/blobs/${d}`);
      if (del.status === 404) assertError(del, pathStatus);
      else assertError(del, pathStatus, 'DIGEST_INVALID');

      const post = await request(server.url, 'POST', `${uploadsPath(repo)}?digest=${d}`, { headers: octet, body: 'payload' });
      assertError(post, 400, 'DIGEST_INVALID');

      const { location } = await startUpload(server, repo);
      const put = await request(server.url, 'PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${d}`, { headers: octet, body: 'payload' });
      assertError(put, 400, 'DIGEST_INVALID');
      await request(server.url, 'DELETE', location);

      const ref = await request(server.url, 'GET', `/v2/${repo}/referrers/${d}`);
      if (ref.status === 404) assertError(ref, pathStatus);
      else assertError(ref, pathStatus, 'DIGEST_INVALID');

      // Without a ':' the string is a (valid) tag, not a digest; skip the manifest check then.
      if (d.includes(':')) {
        const man = await request(server.url, 'GET', `/v2/${repo}/manifests/${d}`);
        if (man.status === 404) assertError(man, pathStatus);
        else assertError(man, pathStatus, ['DIGEST_INVALID', 'MANIFEST_INVALID']);
      }

      await assertNoNewFiles(server.dataDir, before, `requests with digest ${d}`);
    });
  }

  it('rejects an unsupported digest algorithm with a 400 error', async () => {
    const repo = uniqueRepo('fuzz');
    const res = await request(server.url, 'POST', `${uploadsPath(repo)}?digest=md5:${'0'.repeat(32)}`, { headers: octet, body: 'x' });
    assertError(res, 400, ['DIGEST_INVALID', 'UNSUPPORTED']);
  });

  it('rejects a manifest whose descriptor digest is malformed with 400', async () => {
    const repo = uniqueRepo('fuzz');
    const cfg = await pushBlob(server, repo, blobOf('{}'));
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: descriptorOf(MT.ociEmpty, cfg),
      layers: [{ mediaType: MT.ociLayer, digest: 'sha256:../../etc/passwd', size: 10 }],
    });
    const res = await pushManifest(server, repo, 'bad', body, MT.ociManifest);
    assertError(res, 400, ['MANIFEST_INVALID', 'DIGEST_INVALID']);
  });
});

// ---------------------------------------------------------------------------
// Upload session ids
// ---------------------------------------------------------------------------

describe('hostile upload session ids', () => {
  const ids = [`..%2f..%2f..%2f${MARK}`, `%2e%2e%2f%2e%2e%2f${MARK}`, `../../../${MARK}`, `..\\..\\${MARK}`, `${MARK}%00`, '.', '..', 'x'.repeat(1000)];
  for (const id of ids) {
    it(`answers session id ${JSON.stringify(id.length > 30 ? `${id.slice(0, 10)}…(${id.length})` : id)} with 404 BLOB_UPLOAD_UNKNOWN or 400`, async () => {
      const repo = uniqueRepo('fuzz');
      await pushBlob(server, repo, randomBlob(8));
      const before = await listFiles(server.dataDir);
      const loc = `${uploadsPath(repo)}${id}`;
      const b = randomBlob(16);
      const responses = [
        await request(server.url, 'GET', loc),
        await request(server.url, 'PATCH', loc, { headers: { ...octet, 'Content-Range': '0-15' }, body: b.data }),
        await request(server.url, 'PUT', withQuery(loc, { digest: b.digest }), { headers: octet, body: b.data }),
        await request(server.url, 'DELETE', loc),
      ];
      for (const res of responses) {
        assertNot5xx(res);
        assert.ok([400, 404].includes(res.status), `${res.request}: expected 404 or 400, got ${res.status}`);
        assertErrorBody(res);
      }
      assertStatus(await request(server.url, 'GET', `/v2/${repo}/blobs/${b.digest}`), 404);
      await assertNoNewFiles(server.dataDir, before, `requests on upload id ${id}`);
    });
  }

  it("does not accept another repository's upload session", async () => {
    const a = uniqueRepo('fuzz');
    const b = uniqueRepo('fuzz');
    await pushBlob(server, b, randomBlob(8));
    const { res } = await startUpload(server, a);
    const uuid = requireHeader(res, 'docker-upload-uuid');
    const blob = randomBlob(20);
    const put = await request(server.url, 'PUT', withQuery(`${uploadsPath(b)}${uuid}`, { digest: blob.digest }), { headers: octet, body: blob.data });
    assertError(put, 404, 'BLOB_UPLOAD_UNKNOWN');
    assertStatus(await request(server.url, 'GET', `/v2/${b}/blobs/${blob.digest}`), 404);
  });
});

// ---------------------------------------------------------------------------
// Invalid manifests
// ---------------------------------------------------------------------------

describe('invalid manifests', () => {
  let repo: string;
  let cfgDesc: ReturnType<typeof descriptorOf>;
  before(async () => {
    repo = uniqueRepo('fuzz');
    cfgDesc = descriptorOf(MT.ociConfig, await pushBlob(server, repo, blobOf('{"c":1}')));
  });

  const bodies: Array<[string, () => Buffer | string]> = [
    ['an empty body', () => ''],
    ['whitespace only', () => '  \n '],
    ['null', () => 'null'],
    ['an array', () => '[]'],
    ['a string', () => '"manifest"'],
    ['a number', () => '42'],
    ['an empty object', () => '{}'],
    ['truncated JSON', () => '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{'],
    ['trailing garbage', () => JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: cfgDesc, layers: [] }) + '}}'],
    ['invalid UTF-8', () => Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])],
    ['a missing config', () => JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, layers: [] })],
    ['a config that is not an object', () => JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: 'x', layers: [] })],
    ['layers that are not an array', () => JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: cfgDesc, layers: {} })],
    [
      'a layer without a digest',
      () => JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: cfgDesc, layers: [{ mediaType: MT.ociLayer, size: 1 }] }),
    ],
    [
      'a layer with a negative size',
      () => JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: cfgDesc, layers: [{ ...cfgDesc, mediaType: MT.ociLayer, size: -1 }] }),
    ],
    [
      'a layer with a string size',
      () => JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: cfgDesc, layers: [{ ...cfgDesc, mediaType: MT.ociLayer, size: '7' }] }),
    ],
    [
      'a config without mediaType',
      () => JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: { digest: cfgDesc.digest, size: cfgDesc.size }, layers: [] }),
    ],
    ['manifests in place of config and layers', () => JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, manifests: 'x' })],
    [
      'a subject that is not a descriptor',
      () => JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: cfgDesc, layers: [], subject: 'sha256:abc' }),
    ],
    ['deeply nested arrays', () => '['.repeat(50_000) + ']'.repeat(50_000)],
    ['deeply nested objects', () => '{"a":'.repeat(20_000) + '1' + '}'.repeat(20_000)],
  ];

  for (const [what, body] of bodies) {
    it(`rejects an OCI manifest body with ${what} with 400 MANIFEST_INVALID`, async () => {
      const before = await listFiles(server.dataDir);
      const res = await pushManifest(server, repo, 'invalid', body(), MT.ociManifest);
      assertError(res, 400, 'MANIFEST_INVALID');
      assertError(await request(server.url, 'GET', `/v2/${repo}/manifests/invalid`), 404, 'MANIFEST_UNKNOWN');
      await assertNoNewFiles(server.dataDir, before, `manifest with ${what}`);
    });
  }

  it('rejects an OCI index body with a manifests entry that is not a descriptor with 400 MANIFEST_INVALID', async () => {
    const res = await pushManifest(server, repo, 'invalid-index', JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [42] }), MT.ociIndex);
    assertError(res, 400, 'MANIFEST_INVALID');
  });

  it('rejects a Docker manifest list body without manifests with 400 MANIFEST_INVALID', async () => {
    const res = await pushManifest(server, repo, 'invalid-list', JSON.stringify({ schemaVersion: 2, mediaType: MT.dockerList }), MT.dockerList);
    assertError(res, 400, 'MANIFEST_INVALID');
  });
});

// ---------------------------------------------------------------------------
// Oversized manifests
// ---------------------------------------------------------------------------

/** A valid OCI manifest padded (via an annotation) to exactly `size` bytes. */
async function manifestOfSize(s: TestServer, repo: string, size: number): Promise<ManifestDoc> {
  const img = await prepareOciImage(s, repo);
  const base = JSON.parse(img.manifest.bytes.toString()) as Record<string, unknown>;
  const probe = (pad: string): Buffer => Buffer.from(JSON.stringify({ ...base, annotations: { pad } }));
  const overhead = probe('').length;
  assert.ok(size >= overhead, `cannot build a manifest of ${size} bytes`);
  const bytes = probe('x'.repeat(size - overhead));
  assert.equal(bytes.length, size);
  return { bytes, digest: sha256(bytes), size, mediaType: MT.ociManifest };
}

describe('oversized manifests', () => {
  it(`rejects a manifest one byte over maxManifestBytes (${SMALL_LIMIT}) with 413 SIZE_INVALID and keeps nothing`, async () => {
    const repo = uniqueRepo('big');
    const doc = await manifestOfSize(small, repo, SMALL_LIMIT + 1);
    const before = await listFiles(small.dataDir);
    const res = await pushManifest(small, repo, 'big', doc.bytes, MT.ociManifest);
    assertError(res, 413, 'SIZE_INVALID');
    assertStatus(await request(small.url, 'GET', `/v2/${repo}/manifests/big`), 404);
    assertStatus(await request(small.url, 'GET', `/v2/${repo}/manifests/${doc.digest}`), 404);
    await assertNoNewFiles(small.dataDir, before, 'oversized manifest');
  });

  it('accepts a manifest of exactly maxManifestBytes', async () => {
    const repo = uniqueRepo('big');
    const doc = await manifestOfSize(small, repo, SMALL_LIMIT);
    const res = await pushManifest(small, repo, 'edge', doc.bytes, MT.ociManifest);
    assertStatus(res, 201);
  });

  it('rejects an oversized manifest sent with Transfer-Encoding: chunked with 413 SIZE_INVALID', async () => {
    const repo = uniqueRepo('big');
    const doc = await manifestOfSize(small, repo, SMALL_LIMIT * 4);
    const res = await request(small.url, 'PUT', `/v2/${repo}/manifests/chunked`, {
      headers: { 'Content-Type': MT.ociManifest },
      chunks: [doc.bytes.subarray(0, 1000), doc.bytes.subarray(1000, 5000), doc.bytes.subarray(5000)],
    });
    assertError(res, 413, 'SIZE_INVALID');
    assertStatus(await request(small.url, 'GET', `/v2/${repo}/manifests/chunked`), 404);
  });

  it('rejects a Content-Length over the limit with 413 without waiting for the body', async () => {
    const repo = uniqueRepo('big');
    const head =
      `PUT /v2/${repo}/manifests/huge HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${MT.ociManifest}\r\n` +
      `Content-Length: ${10 * 1024 * 1024 * 1024}\r\nConnection: close\r\n\r\n`;
    const result = await rawRequest(small.url, head, Buffer.from('{"schemaVersion":2'), { waitMs: 5000 });
    assert.equal(result.status, 413, `expected an early 413, got ${JSON.stringify(result.response.slice(0, 300))}`);
  });

  it('rejects a manifest over the default 4 MiB limit with 413 SIZE_INVALID', async () => {
    const repo = uniqueRepo('big');
    const doc = await manifestOfSize(server, repo, 4 * 1024 * 1024 + 1);
    const res = await pushManifest(server, repo, 'big', doc.bytes, MT.ociManifest);
    assertError(res, 413, 'SIZE_INVALID');
  });

  it('accepts a manifest of exactly 4 MiB by default', async () => {
    const repo = uniqueRepo('big');
    const doc = await manifestOfSize(server, repo, 4 * 1024 * 1024);
    const res = await pushManifest(server, repo, 'four-mib', doc.bytes, MT.ociManifest);
    assertStatus(res, 201);
    const got = await request(server.url, 'GET', `/v2/${repo}/manifests/four-mib`);
    assertStatus(got, 200);
    assert.ok(got.body.equals(doc.bytes));
  });
});

// ---------------------------------------------------------------------------
// Truncated bodies (Content-Length larger than what is sent, then EOF)
// ---------------------------------------------------------------------------

function head(method: string, target: string, headers: Record<string, string>): string {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), 'Connection: close'];
  return lines.join('\r\n') + '\r\n\r\n';
}

/** Polls an upload's status until it reads the same twice in a row. */
async function settledStatus(s: UploadSession): Promise<HttpResponse> {
  let prev = await uploadStatus(server, s);
  for (let i = 0; i < 30; i++) {
    await sleep(100);
    const cur = await uploadStatus(server, s);
    if (cur.status === prev.status && header(cur, 'range') === header(prev, 'range')) return cur;
    prev = cur;
  }
  return prev;
}

describe('truncated request bodies', () => {
  it('a single POST cut short stores nothing and the blob stays unknown', async () => {
    const repo = uniqueRepo('trunc');
    await pushBlob(server, repo, randomBlob(8));
    const b = randomBlob(100_000);
    const before = await listFiles(server.dataDir);
    const result = await rawRequest(
      server.url,
      head('POST', `${uploadsPath(repo)}?digest=${b.digest}`, { ...octet, 'Content-Length': String(b.size) }),
      b.data.subarray(0, 1000),
      { halfClose: true },
    );
    if (result.status !== undefined) assert.ok(result.status >= 400 && result.status < 500, `got ${result.status}`);
    await assertNoNewFiles(server.dataDir, before, 'truncated single POST');
    assertError(await request(server.url, 'GET', `/v2/${repo}/blobs/${b.digest}`), 404, 'BLOB_UNKNOWN');
  });

  it('a closing PUT cut short does not create the blob, and cancelling leaves nothing', async () => {
    const repo = uniqueRepo('trunc');
    await pushBlob(server, repo, randomBlob(8));
    const b = randomBlob(50_000);
    const before = await listFiles(server.dataDir);
    const s = await openUpload(server, repo);
    const target = new URL(withQuery(s.location, { digest: b.digest }), server.url);
    await rawRequest(server.url, head('PUT', target.pathname + target.search, { ...octet, 'Content-Length': String(b.size) }), b.data.subarray(0, 100), {
      halfClose: true,
    });
    await settledStatus(s);
    assertStatus(await request(server.url, 'GET', `/v2/${repo}/blobs/${b.digest}`), 404);
    await request(server.url, 'DELETE', s.location);
    await assertNoNewFiles(server.dataDir, before, 'truncated closing PUT');
  });

  it('a PATCH cut short leaves the session resumable from the offset the registry reports', async () => {
    const repo = uniqueRepo('trunc');
    await pushBlob(server, repo, randomBlob(8));
    const b = randomBlob(60_000);
    const before = await listFiles(server.dataDir);
    const s = await openUpload(server, repo);
    assertStatus(await patchUpload(server, s, b.data.subarray(0, 10), '0-9'), 202);
    const target = new URL(s.location, server.url);
    await rawRequest(
      server.url,
      head('PATCH', target.pathname + target.search, { ...octet, 'Content-Range': `10-${b.size - 1}`, 'Content-Length': String(b.size - 10) }),
      b.data.subarray(10, 5000),
      { halfClose: true },
    );
    const status = await settledStatus(s);
    assertNot5xx(status);
    if (status.status === 404) {
      // The registry dropped the session: acceptable, but nothing may remain.
      assertErrorBody(status, 'BLOB_UPLOAD_UNKNOWN');
      await assertNoNewFiles(server.dataDir, before, 'dropped session after truncated PATCH');
      return;
    }
    assertStatus(status, 204);
    const m = /^0-(\d+)$/.exec(requireHeader(status, 'range'));
    assert.ok(m?.[1] !== undefined, `bad Range ${header(status, 'range') ?? ''}`);
    const end = Number(m[1]);
    assert.ok(end >= 9 && end < 5000, `Range end ${end} must lie within what was actually received`);
    assertStatus(await patchUpload(server, s, b.data.subarray(end + 1), `${end + 1}-${b.size - 1}`), 202);
    assertStatus(await request(server.url, 'PUT', withQuery(s.location, { digest: b.digest })), 201);
    const got = await request(server.url, 'GET', `/v2/${repo}/blobs/${b.digest}`);
    assertStatus(got, 200);
    assert.ok(got.body.equals(b.data), 'resumed blob must equal the original');
    const copies = new Set(await filesWithContent(server.dataDir, b));
    const extra = (await newFilesSince(server.dataDir, before)).filter((f) => !copies.has(f));
    assert.deepEqual(extra, [], 'only the finished blob may remain');
  });

  it('a manifest PUT cut short stores nothing', async () => {
    const repo = uniqueRepo('trunc');
    const img = await prepareOciImage(server, repo);
    const before = await listFiles(server.dataDir);
    await rawRequest(
      server.url,
      head('PUT', `/v2/${repo}/manifests/cut`, { 'Content-Type': MT.ociManifest, 'Content-Length': String(img.manifest.size + 1000) }),
      img.manifest.bytes,
      { halfClose: true },
    );
    await assertNoNewFiles(server.dataDir, before, 'truncated manifest PUT');
    assertError(await request(server.url, 'GET', `/v2/${repo}/manifests/cut`), 404, 'MANIFEST_UNKNOWN');
    assertError(await request(server.url, 'GET', `/v2/${repo}/manifests/${img.manifest.digest}`), 404, 'MANIFEST_UNKNOWN');
  });

  it('a connection dropped in the middle of a single POST is harmless to later requests', async () => {
    const repo = uniqueRepo('trunc');
    const b = randomBlob(20_000);
    await rawRequest(
      server.url,
      head('POST', `${uploadsPath(repo)}?digest=${b.digest}`, { ...octet, 'Content-Length': String(b.size) }),
      b.data.subarray(0, 10_000),
      { waitMs: 200 },
    );
    const res = await request(server.url, 'POST', withQuery(uploadsPath(repo), { digest: b.digest }), { headers: octet, body: b.data });
    assertStatus(res, 201);
    const got = await request(server.url, 'GET', `/v2/${repo}/blobs/${b.digest}`);
    assert.ok(got.body.equals(b.data));
  });
});

// ---------------------------------------------------------------------------
// Wrong Content-Range
// ---------------------------------------------------------------------------

describe('PATCH with a wrong Content-Range', () => {
  const cases: Array<[string, string, number]> = [
    ['not a range', 'abc', 10],
    ['a missing end', '10-', 10],
    ['a missing start', '-19', 10],
    ['an end before the start', '19-10', 10],
    ['a range longer than the body', '10-19', 5],
    ['a range shorter than the body', '10-14', 10],
    ['an absurdly large end', '10-99999999999999999999999', 10],
    ['an absurdly large start', '18446744073709551616-18446744073709551625', 10],
    ['negative numbers', '-5--1', 10],
    ['an empty value', '', 10],
  ];
  for (const [what, range, bodyLen] of cases) {
    it(`rejects ${what} (${JSON.stringify(range)}) with 400 or 416 and keeps the session intact`, async () => {
      const repo = uniqueRepo('range');
      const b = randomBlob(30);
      const s = await openUpload(server, repo);
      assertStatus(await patchUpload(server, s, b.data.subarray(0, 10), '0-9'), 202);
      const res = await request(server.url, 'PATCH', s.location, { headers: { ...octet, 'Content-Range': range }, body: randomBlob(bodyLen).data });
      assertError(res, [400, 416], ['BLOB_UPLOAD_INVALID', 'SIZE_INVALID']);
      if (res.status === 416) assert.equal(requireHeader(res, 'range'), '0-9');
      const status = await uploadStatus(server, s);
      assertStatus(status, 204);
      assert.equal(requireHeader(status, 'range'), '0-9', 'a rejected chunk must not change the upload');
      assertStatus(await patchUpload(server, s, b.data.subarray(10), '10-29'), 202);
      assertStatus(await request(server.url, 'PUT', withQuery(s.location, { digest: b.digest })), 201);
      const got = await request(server.url, 'GET', `/v2/${repo}/blobs/${b.digest}`);
      assert.ok(got.body.equals(b.data));
    });
  }

  it('rejects a closing PUT whose Content-Range leaves a gap with 416 and creates no blob', async () => {
    const repo = uniqueRepo('range');
    const b = randomBlob(30);
    const s = await openUpload(server, repo);
    assertStatus(await patchUpload(server, s, b.data.subarray(0, 10), '0-9'), 202);
    const res = await request(server.url, 'PUT', withQuery(s.location, { digest: b.digest }), {
      headers: { ...octet, 'Content-Range': '20-29' },
      body: b.data.subarray(20),
    });
    assertStatus(res, 416);
    assertStatus(await request(server.url, 'GET', `/v2/${repo}/blobs/${b.digest}`), 404);
  });
});

// ---------------------------------------------------------------------------
// Random requests, then a scan for stray files
// ---------------------------------------------------------------------------

/** Small deterministic PRNG (mulberry32) so failures are reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('random requests', () => {
  it('never produce a server error, and every 4xx carries a spec error body', async () => {
    const rand = prng(0xbe27);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    const segs = [
      'v2',
      'v2',
      'blobs',
      'uploads',
      'manifests',
      'tags',
      'list',
      'referrers',
      '_catalog',
      '..',
      '.',
      '',
      '%2e%2e',
      '%2f',
      '%00',
      'a',
      'Z',
      MARK,
      someBlob.digest,
      'sha256:',
      'sha256:zz',
      'latest',
      '~',
      '%ff',
      ';x',
      '%',
      '*',
      'a.b-c_d',
    ];
    const methods = ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS'];
    const queries = [
      '',
      '',
      '?n=2',
      '?n=-1',
      '?last=%ff',
      '?digest=sha256:1',
      `?digest=${someBlob.digest}`,
      '?mount=x&from=..',
      '?artifactType=%00',
      '?n=1&n=2',
    ];
    for (let i = 0; i < 300; i++) {
      const depth = 1 + Math.floor(rand() * 6);
      const parts = ['v2'];
      for (let j = 0; j < depth; j++) parts.push(pick(segs));
      const target = '/' + parts.join('/') + pick(queries);
      const method = pick(methods);
      const body = method === 'GET' || method === 'HEAD' ? undefined : randomBytes(Math.floor(rand() * 64));
      const headers: Record<string, string> = {};
      if (rand() < 0.3) headers['Content-Range'] = pick(['0-0', 'x', '5-1', '0-63']);
      if (rand() < 0.3) headers['Content-Type'] = pick([MT.ociManifest, 'application/octet-stream', 'text/plain', '']);
      const res = await request(server.url, method, target, body === undefined ? { headers } : { headers, body });
      assertNot5xx(res);
      if (res.status >= 400 && method !== 'HEAD' && res.body.length > 0) assertErrorBody(res);
    }
  });

  it('changed nothing beside the data dir (in its parent directory)', async () => {
    for (const s of [server, small]) {
      assert.deepEqual(await listOutside(s.dataDir), outsideBefore.get(s.dataDir), `entries appeared or vanished beside ${s.dataDir}`);
    }
  });

  it('left no file or directory named after the hostile inputs anywhere near the data dir', async () => {
    const roots = new Set<string>();
    for (const s of [server, small]) {
      roots.add(path.dirname(s.dataDir));
      roots.add(path.dirname(path.dirname(s.dataDir)));
    }
    roots.add(process.cwd());
    async function findMarked(): Promise<string[]> {
      const found: string[] = [];
      let budget = 200_000;
      async function walk(dir: string, depth: number): Promise<void> {
        if (depth < 0 || budget <= 0) return;
        let entries;
        try {
          entries = await readdir(dir, { withFileTypes: true });
        } catch {
          return;
        }
        for (const e of entries) {
          budget -= 1;
          const full = path.join(dir, e.name);
          if (e.name.toLowerCase().includes(MARK)) found.push(full);
          if (e.isDirectory() && e.name !== 'node_modules' && e.name !== '.git') await walk(full, depth - 1);
        }
      }
      for (const root of roots) await walk(root, 8);
      return found;
    }
    // Prove the scan can see a stray file where a traversal would put one.
    const probe = path.join(path.dirname(path.dirname(server.dataDir)), `${MARK}-probe`);
    await writeFile(probe, 'probe');
    try {
      assert.ok((await findMarked()).includes(probe), `the scan must find the probe file ${probe}`);
    } finally {
      await rm(probe, { force: true });
    }
    const found = await findMarked();
    // The valid names used above (`${MARK}ok/...`) legitimately exist as repositories; only
    // look for entries that are not inside a data dir, or that stem from hostile names.
    const stray = found.filter((f) => {
      const insideData = [server, small].some((s) => f.startsWith(s.dataDir + path.sep));
      return !insideData || !f.includes(`${MARK}ok`);
    });
    assert.deepEqual(stray, [], 'hostile requests created files');
  });
});
