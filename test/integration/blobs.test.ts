// OCI Distribution Spec v1.1 — Pulling blobs (end-2), HEAD checks, Range
// requests (RFC 9110) and Deleting Blobs (end-10).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  assertError,
  assertStatus,
  blobOf,
  digestWithAlgorithmOf,
  header,
  pushBlob,
  randomBlob,
  request,
  requireHeader,
  sha256,
  startTestServer,
  uniqueRepo,
} from './helpers.js';
import type { Blob, TestServer } from './helpers.js';

let server: TestServer;
let repo: string;
let blob: Blob;

before(async () => {
  server = await startTestServer();
  repo = uniqueRepo('blobs');
  blob = await pushBlob(server, repo, randomBlob(4096));
});
after(async () => {
  await server.stop();
});

const blobUrl = (r: string, digest: string): string => `/v2/${r}/blobs/${digest}`;

describe('GET /v2/<name>/blobs/<digest>', () => {
  it('returns 200 OK with the exact blob bytes', async () => {
    const res = await request(server.url, 'GET', blobUrl(repo, blob.digest));
    assertStatus(res, 200);
    assert.ok(res.body.equals(blob.data), 'body must be the pushed bytes');
  });

  it('sets Content-Length to the blob size', async () => {
    const res = await request(server.url, 'GET', blobUrl(repo, blob.digest));
    assert.equal(requireHeader(res, 'content-length'), String(blob.size));
  });

  it('sets Docker-Content-Digest to the digest of the returned body', async () => {
    const res = await request(server.url, 'GET', blobUrl(repo, blob.digest));
    assert.equal(requireHeader(res, 'docker-content-digest'), blob.digest);
  });

  it('serves a zero-byte blob', async () => {
    const r = uniqueRepo('blobs');
    const empty = await pushBlob(server, r, blobOf(Buffer.alloc(0)));
    const res = await request(server.url, 'GET', blobUrl(r, empty.digest));
    assertStatus(res, 200);
    assert.equal(res.body.length, 0);
    assert.equal(requireHeader(res, 'content-length'), '0');
    assert.equal(requireHeader(res, 'docker-content-digest'), empty.digest);
  });

  it('answers an unknown digest with 404 BLOB_UNKNOWN', async () => {
    const res = await request(server.url, 'GET', blobUrl(repo, randomBlob(16).digest));
    assertError(res, 404, 'BLOB_UNKNOWN');
  });

  it('answers a repository that was never pushed to with 404 (BLOB_UNKNOWN or NAME_UNKNOWN)', async () => {
    const res = await request(server.url, 'GET', blobUrl(uniqueRepo('never'), blob.digest));
    assertError(res, 404, ['BLOB_UNKNOWN', 'NAME_UNKNOWN']);
  });

  it('does not serve a blob that exists only in another repository (404 BLOB_UNKNOWN)', async () => {
    const other = uniqueRepo('blobs');
    await pushBlob(server, other, randomBlob(8)); // the other repository exists
    const res = await request(server.url, 'GET', blobUrl(other, blob.digest));
    assertError(res, 404, 'BLOB_UNKNOWN');
  });

  it('answers a malformed digest with 400 DIGEST_INVALID', async () => {
    const res = await request(server.url, 'GET', blobUrl(repo, 'sha256:not-hex'));
    assertError(res, 400, 'DIGEST_INVALID');
  });

  it('serves a blob addressed by a sha512 digest', async () => {
    const r = uniqueRepo('blobs');
    const b = randomBlob(2000, 'sha512');
    await pushBlob(server, r, b);
    const res = await request(server.url, 'GET', blobUrl(r, b.digest));
    assertStatus(res, 200);
    assert.ok(res.body.equals(b.data));
    const dcd = requireHeader(res, 'docker-content-digest');
    assert.equal(dcd, digestWithAlgorithmOf(dcd, res.body), 'Docker-Content-Digest must match the body');
  });
});

describe('GET /v2/<name>/blobs/<digest> with Range', () => {
  it('answers Range: bytes=a-b with 206 Partial Content, Content-Range and the slice', async () => {
    const res = await request(server.url, 'GET', blobUrl(repo, blob.digest), { headers: { Range: 'bytes=100-199' } });
    assertStatus(res, 206);
    assert.equal(requireHeader(res, 'content-range'), `bytes 100-199/${blob.size}`);
    assert.equal(requireHeader(res, 'content-length'), '100');
    assert.ok(res.body.equals(blob.data.subarray(100, 200)));
  });

  it('answers a single-byte range bytes=0-0', async () => {
    const res = await request(server.url, 'GET', blobUrl(repo, blob.digest), { headers: { Range: 'bytes=0-0' } });
    assertStatus(res, 206);
    assert.equal(requireHeader(res, 'content-range'), `bytes 0-0/${blob.size}`);
    assert.ok(res.body.equals(blob.data.subarray(0, 1)));
  });

  it('answers an open-ended range bytes=a- with the rest of the blob', async () => {
    const res = await request(server.url, 'GET', blobUrl(repo, blob.digest), { headers: { Range: 'bytes=4000-' } });
    assertStatus(res, 206);
    assert.equal(requireHeader(res, 'content-range'), `bytes 4000-${blob.size - 1}/${blob.size}`);
    assert.ok(res.body.equals(blob.data.subarray(4000)));
  });

  it('answers a suffix range bytes=-n with the last n bytes', async () => {
    const res = await request(server.url, 'GET', blobUrl(repo, blob.digest), { headers: { Range: 'bytes=-10' } });
    assertStatus(res, 206);
    assert.equal(requireHeader(res, 'content-range'), `bytes ${blob.size - 10}-${blob.size - 1}/${blob.size}`);
    assert.ok(res.body.equals(blob.data.subarray(blob.size - 10)));
  });

  it('clamps a range whose end lies past the blob to the blob end', async () => {
    const res = await request(server.url, 'GET', blobUrl(repo, blob.digest), { headers: { Range: `bytes=4090-99999` } });
    assertStatus(res, 206);
    assert.equal(requireHeader(res, 'content-range'), `bytes 4090-${blob.size - 1}/${blob.size}`);
    assert.ok(res.body.equals(blob.data.subarray(4090)));
  });

  it('answers a range starting past the end with 416 Range Not Satisfiable', async () => {
    const res = await request(server.url, 'GET', blobUrl(repo, blob.digest), { headers: { Range: `bytes=${blob.size + 10}-${blob.size + 20}` } });
    assertStatus(res, 416);
    const cr = header(res, 'content-range');
    if (cr !== undefined) assert.equal(cr, `bytes */${blob.size}`);
  });
});

describe('HEAD /v2/<name>/blobs/<digest>', () => {
  it('returns 200 OK with Content-Length and Docker-Content-Digest and no body', async () => {
    const res = await request(server.url, 'HEAD', blobUrl(repo, blob.digest));
    assertStatus(res, 200);
    assert.equal(requireHeader(res, 'content-length'), String(blob.size));
    assert.equal(requireHeader(res, 'docker-content-digest'), blob.digest);
    assert.equal(res.body.length, 0);
  });

  it('answers an unknown digest with 404 and no body', async () => {
    const res = await request(server.url, 'HEAD', blobUrl(repo, randomBlob(16).digest));
    assertStatus(res, 404);
    assert.equal(res.body.length, 0);
  });

  it('answers a malformed digest with 400', async () => {
    const res = await request(server.url, 'HEAD', blobUrl(repo, 'sha256:zz'));
    assertStatus(res, 400);
  });
});

describe('DELETE /v2/<name>/blobs/<digest>', () => {
  it('returns 202 Accepted, after which the blob is 404 BLOB_UNKNOWN', async () => {
    const r = uniqueRepo('blobs');
    const b = await pushBlob(server, r, randomBlob(300));
    const del = await request(server.url, 'DELETE', blobUrl(r, b.digest));
    assertStatus(del, 202);
    const get = await request(server.url, 'GET', blobUrl(r, b.digest));
    assertError(get, 404, 'BLOB_UNKNOWN');
    const head = await request(server.url, 'HEAD', blobUrl(r, b.digest));
    assertStatus(head, 404);
  });

  it('removes the blob from that repository only', async () => {
    const a = uniqueRepo('blobs');
    const b = uniqueRepo('blobs');
    const shared = randomBlob(300);
    await pushBlob(server, a, shared);
    await pushBlob(server, b, shared);
    assertStatus(await request(server.url, 'DELETE', blobUrl(a, shared.digest)), 202);
    assertStatus(await request(server.url, 'GET', blobUrl(a, shared.digest)), 404);
    const still = await request(server.url, 'GET', blobUrl(b, shared.digest));
    assertStatus(still, 200);
    assert.ok(still.body.equals(shared.data));
  });

  it('answers an unknown digest with 404 BLOB_UNKNOWN', async () => {
    const res = await request(server.url, 'DELETE', blobUrl(repo, randomBlob(16).digest));
    assertError(res, 404, 'BLOB_UNKNOWN');
  });

  it('answers a malformed digest with 400 DIGEST_INVALID', async () => {
    const res = await request(server.url, 'DELETE', blobUrl(repo, 'sha256:1234'));
    assertError(res, 400, 'DIGEST_INVALID');
  });

  it('lets the same content be pushed again after deletion', async () => {
    const r = uniqueRepo('blobs');
    const b = await pushBlob(server, r, randomBlob(100));
    assertStatus(await request(server.url, 'DELETE', blobUrl(r, b.digest)), 202);
    await pushBlob(server, r, b);
    const res = await request(server.url, 'GET', blobUrl(r, b.digest));
    assertStatus(res, 200);
    assert.equal(sha256(res.body), b.digest);
  });
});
