// OCI Distribution Spec v1.1 — Pushing blobs: single POST (end-4b), POST then
// PUT (end-4a, end-6), chunked PATCH (end-5), upload status (end-13), cancel
// (end-14), cross-repository mount (end-11), plus concurrent pushes.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  assertError,
  assertNoNewFiles,
  assertStatus,
  blobOf,
  filesWithContent,
  header,
  listFiles,
  pushBlob,
  randomBlob,
  request,
  requireHeader,
  sha256,
  startTestServer,
  openUpload,
  patchUpload,
  startUpload,
  uploadStatus,
  uniqueRepo,
  uploadsPath,
  withQuery,
} from './helpers.js';
import type { Blob, HttpResponse, TestServer, UploadSession } from './helpers.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.stop();
});

const octet = { 'Content-Type': 'application/octet-stream' };

async function getBlob(repo: string, digest: string): Promise<HttpResponse> {
  return request(server.url, 'GET', `/v2/${repo}/blobs/${digest}`);
}

async function assertBlobServed(repo: string, b: Blob): Promise<void> {
  const res = await getBlob(repo, b.digest);
  assertStatus(res, 200);
  assert.ok(res.body.equals(b.data), `GET ${b.digest}: body differs from the pushed bytes`);
}

async function patch(s: UploadSession, data: Buffer, range?: string): Promise<HttpResponse> {
  return patchUpload(server, s, data, range);
}

describe('POST /v2/<name>/blobs/uploads/?digest=<digest> (single POST)', () => {
  it('stores the blob and returns 201 Created with Location and Docker-Content-Digest', async () => {
    const repo = uniqueRepo('up');
    const b = randomBlob(3000);
    const res = await request(server.url, 'POST', withQuery(uploadsPath(repo), { digest: b.digest }), { headers: octet, body: b.data });
    assertStatus(res, 201);
    assert.equal(requireHeader(res, 'docker-content-digest'), b.digest);
    const loc = requireHeader(res, 'location');
    const pulled = await request(server.url, 'GET', loc);
    assertStatus(pulled, 200);
    assert.ok(pulled.body.equals(b.data), 'the Location must be a pullable blob URL');
    await assertBlobServed(repo, b);
  });

  it('accepts a zero-byte blob', async () => {
    const repo = uniqueRepo('up');
    const b = blobOf(Buffer.alloc(0));
    const res = await request(server.url, 'POST', withQuery(uploadsPath(repo), { digest: b.digest }), { headers: octet, body: b.data });
    assertStatus(res, 201);
    await assertBlobServed(repo, b);
  });

  it('accepts a sha512 digest', async () => {
    const repo = uniqueRepo('up');
    const b = randomBlob(5000, 'sha512');
    const res = await request(server.url, 'POST', withQuery(uploadsPath(repo), { digest: b.digest }), { headers: octet, body: b.data });
    assertStatus(res, 201);
    await assertBlobServed(repo, b);
  });

  it('accepts a body sent with Transfer-Encoding: chunked', async () => {
    const repo = uniqueRepo('up');
    const b = randomBlob(10_000);
    const res = await request(server.url, 'POST', withQuery(uploadsPath(repo), { digest: b.digest }), {
      headers: octet,
      chunks: [b.data.subarray(0, 1), b.data.subarray(1, 4000), b.data.subarray(4000)],
    });
    assertStatus(res, 201);
    await assertBlobServed(repo, b);
  });

  it('rejects content that does not match the digest with 400 DIGEST_INVALID and keeps nothing', async () => {
    const repo = uniqueRepo('up');
    await pushBlob(server, repo, randomBlob(10)); // repository exists
    const claimed = randomBlob(100);
    const actual = randomBlob(100);
    const before = await listFiles(server.dataDir);
    const res = await request(server.url, 'POST', withQuery(uploadsPath(repo), { digest: claimed.digest }), { headers: octet, body: actual.data });
    assertError(res, 400, 'DIGEST_INVALID');
    assertError(await getBlob(repo, claimed.digest), 404, 'BLOB_UNKNOWN');
    assertError(await getBlob(repo, actual.digest), 404, 'BLOB_UNKNOWN');
    await assertNoNewFiles(server.dataDir, before, 'rejected single POST');
  });

  it('rejects a malformed digest with 400 DIGEST_INVALID', async () => {
    const repo = uniqueRepo('up');
    const res = await request(server.url, 'POST', withQuery(uploadsPath(repo), { digest: 'sha256:xyz' }), { headers: octet, body: 'abc' });
    assertError(res, 400, 'DIGEST_INVALID');
  });
});

describe('POST /v2/<name>/blobs/uploads/ (open a session)', () => {
  it('returns 202 Accepted with a Location that contains the Docker-Upload-UUID', async () => {
    const { res, location } = await startUpload(server, uniqueRepo('up'));
    const uuid = requireHeader(res, 'docker-upload-uuid');
    assert.ok(location.includes(uuid), `Location ${location} must contain the session id ${uuid}`);
  });

  it('reports an empty session as Range: 0-0', async () => {
    const { res } = await startUpload(server, uniqueRepo('up'));
    assert.equal(requireHeader(res, 'range'), '0-0');
  });

  it('opens a distinct session on every request', async () => {
    const repo = uniqueRepo('up');
    const a = await startUpload(server, repo);
    const b = await startUpload(server, repo);
    assert.notEqual(a.location, b.location);
    assert.notEqual(header(a.res, 'docker-upload-uuid'), header(b.res, 'docker-upload-uuid'));
  });
});

describe('PATCH /v2/<name>/blobs/uploads/<reference>', () => {
  it('accepts the first chunk with 202, Location and Range: 0-<end>', async () => {
    const s = await openUpload(server, uniqueRepo('up'));
    const res = await patch(s, Buffer.alloc(100, 1), '0-99');
    assertStatus(res, 202);
    requireHeader(res, 'location');
    assert.equal(requireHeader(res, 'range'), '0-99');
  });

  it('accepts consecutive chunks in order and the closing PUT assembles them', async () => {
    const repo = uniqueRepo('up');
    const b = randomBlob(3000);
    const s = await openUpload(server, repo);
    const cuts = [0, 1000, 1001, 2500, 3000];
    for (let i = 0; i + 1 < cuts.length; i++) {
      const start = cuts[i] ?? 0;
      const end = cuts[i + 1] ?? 0;
      const res = await patch(s, b.data.subarray(start, end), `${start}-${end - 1}`);
      assertStatus(res, 202);
      assert.equal(requireHeader(res, 'range'), `0-${end - 1}`);
      requireHeader(res, 'location');
    }
    const put = await request(server.url, 'PUT', withQuery(s.location, { digest: b.digest }));
    assertStatus(put, 201);
    assert.equal(requireHeader(put, 'docker-content-digest'), b.digest);
    await assertBlobServed(repo, b);
  });

  it('answers a chunk that skips ahead with 416 and the current Range', async () => {
    const s = await openUpload(server, uniqueRepo('up'));
    assertStatus(await patch(s, Buffer.alloc(10), '0-9'), 202);
    const res = await patch(s, Buffer.alloc(10), '20-29');
    assertError(res, 416);
    assert.equal(requireHeader(res, 'range'), '0-9');
  });

  it('answers an overlapping chunk with 416 and the current Range', async () => {
    const s = await openUpload(server, uniqueRepo('up'));
    assertStatus(await patch(s, Buffer.alloc(10), '0-9'), 202);
    const res = await patch(s, Buffer.alloc(10), '5-14');
    assertError(res, 416);
    assert.equal(requireHeader(res, 'range'), '0-9');
  });

  it('answers a repeated chunk with 416', async () => {
    const s = await openUpload(server, uniqueRepo('up'));
    assertStatus(await patch(s, Buffer.alloc(10), '0-9'), 202);
    const res = await patch(s, Buffer.alloc(10), '0-9');
    assertError(res, 416);
    assert.equal(requireHeader(res, 'range'), '0-9');
  });

  it('answers a first chunk that does not begin at 0 with 416', async () => {
    const s = await openUpload(server, uniqueRepo('up'));
    const res = await patch(s, Buffer.alloc(10), '1-10');
    assertError(res, 416);
  });

  it('keeps the session usable after a 416: the right chunk is then accepted', async () => {
    const repo = uniqueRepo('up');
    const b = randomBlob(40);
    const s = await openUpload(server, repo);
    assertStatus(await patch(s, b.data.subarray(0, 20), '0-19'), 202);
    assertStatus(await patch(s, b.data.subarray(30, 40), '30-39'), 416);
    const ok = await patch(s, b.data.subarray(20, 40), '20-39');
    assertStatus(ok, 202);
    assert.equal(requireHeader(ok, 'range'), '0-39');
    assertStatus(await request(server.url, 'PUT', withQuery(s.location, { digest: b.digest })), 201);
    await assertBlobServed(repo, b);
  });

  it('accepts a chunk sent with Transfer-Encoding: chunked', async () => {
    const repo = uniqueRepo('up');
    const b = randomBlob(9000);
    const s = await openUpload(server, repo);
    const res = await request(server.url, 'PATCH', s.location, {
      headers: { ...octet, 'Content-Range': `0-${b.size - 1}` },
      chunks: [b.data.subarray(0, 3000), b.data.subarray(3000, 6000), b.data.subarray(6000)],
    });
    assertStatus(res, 202);
    s.location = requireHeader(res, 'location');
    assert.equal(requireHeader(res, 'range'), `0-${b.size - 1}`);
    assertStatus(await request(server.url, 'PUT', withQuery(s.location, { digest: b.digest })), 201);
    await assertBlobServed(repo, b);
  });

  it('appends a chunk sent without Content-Range (streamed upload, as docker sends)', async () => {
    const repo = uniqueRepo('up');
    const b = randomBlob(5000);
    const s = await openUpload(server, repo);
    const res = await request(server.url, 'PATCH', s.location, { headers: octet, chunks: [b.data.subarray(0, 2500), b.data.subarray(2500)] });
    assertStatus(res, 202);
    s.location = requireHeader(res, 'location');
    assert.equal(requireHeader(res, 'range'), `0-${b.size - 1}`);
    assertStatus(await request(server.url, 'PUT', withQuery(s.location, { digest: b.digest })), 201);
    await assertBlobServed(repo, b);
  });

  it('continues a session begun before uploads were flat: its bytes stay under uploads/<id>/data until committed', async () => {
    const { storage, metadata } = server.app;
    const before = new Set(await storage.list('uploads'));
    const repo = uniqueRepo('up');
    const b = randomBlob(6000);
    // A session as an older Berth left it: its row without a layout (the migration's default), its first chunk in a directory.
    const s = await openUpload(server, repo);
    const id = s.location.split('/').pop()?.split('?')[0] ?? '';
    await metadata.uploads.delete(id);
    await metadata.uploads.create(repo, id, Date.now(), 'directory');
    const writer = await storage.write(`uploads/${id}/data`, { append: false });
    await new Promise<void>((done, fail) => writer.end(b.data.subarray(0, 2000), (err?: Error | null) => (err ? fail(err) : done())));

    assert.equal(header(await uploadStatus(server, s), 'range'), '0-1999');
    assertStatus(await patch(s, b.data.subarray(2000, 4000), '2000-3999'), 202);
    assert.equal((await storage.stat(`uploads/${id}/data`))?.size, 4000);
    assert.equal(await storage.stat(`uploads/${id}`), undefined, 'nothing is written in the flat layout');
    assertStatus(await request(server.url, 'PUT', withQuery(s.location, { digest: b.digest }), { headers: octet, body: b.data.subarray(4000) }), 201);
    await assertBlobServed(repo, b);
    assert.deepEqual(
      (await storage.list('uploads')).filter((name) => !before.has(name)),
      [],
      'its directory went with it',
    );
  });

  it('answers an unknown session with 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const repo = uniqueRepo('up');
    const res = await request(server.url, 'PATCH', `${uploadsPath(repo)}00000000-0000-4000-8000-000000000000`, {
      headers: { ...octet, 'Content-Range': '0-3' },
      body: Buffer.alloc(4),
    });
    assertError(res, 404, 'BLOB_UPLOAD_UNKNOWN');
  });
});

describe('PUT /v2/<name>/blobs/uploads/<reference>?digest=<digest>', () => {
  it('completes a POST-then-PUT monolithic upload with 201, Location and Docker-Content-Digest', async () => {
    const repo = uniqueRepo('up');
    const b = randomBlob(2048);
    const s = await openUpload(server, repo);
    const res = await request(server.url, 'PUT', withQuery(s.location, { digest: b.digest }), { headers: octet, body: b.data });
    assertStatus(res, 201);
    assert.equal(requireHeader(res, 'docker-content-digest'), b.digest);
    const pulled = await request(server.url, 'GET', requireHeader(res, 'location'));
    assertStatus(pulled, 200);
    assert.ok(pulled.body.equals(b.data));
  });

  it('ends the session with the upload: its status and a second PUT answer 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const repo = uniqueRepo('up');
    const b = randomBlob(1024);
    const s = await openUpload(server, repo);
    assertStatus(await request(server.url, 'PUT', withQuery(s.location, { digest: b.digest }), { headers: octet, body: b.data }), 201);
    assertError(await uploadStatus(server, s), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertError(await request(server.url, 'PUT', withQuery(s.location, { digest: b.digest }), { headers: octet, body: b.data }), 404, 'BLOB_UPLOAD_UNKNOWN');
    await assertBlobServed(repo, b);
  });

  it('closes a session whose final chunk arrives in the PUT body', async () => {
    const repo = uniqueRepo('up');
    const b = randomBlob(1500);
    const s = await openUpload(server, repo);
    assertStatus(await patch(s, b.data.subarray(0, 1000), '0-999'), 202);
    const res = await request(server.url, 'PUT', withQuery(s.location, { digest: b.digest }), {
      headers: { ...octet, 'Content-Range': '1000-1499' },
      body: b.data.subarray(1000),
    });
    assertStatus(res, 201);
    await assertBlobServed(repo, b);
  });

  it('closes a session whose final chunk arrives in the PUT body without Content-Range', async () => {
    const repo = uniqueRepo('up');
    const b = randomBlob(1500);
    const s = await openUpload(server, repo);
    assertStatus(await patch(s, b.data.subarray(0, 700), '0-699'), 202);
    const res = await request(server.url, 'PUT', withQuery(s.location, { digest: b.digest }), { headers: octet, body: b.data.subarray(700) });
    assertStatus(res, 201);
    await assertBlobServed(repo, b);
  });

  it('accepts a final body sent with Transfer-Encoding: chunked', async () => {
    const repo = uniqueRepo('up');
    const b = randomBlob(7000);
    const s = await openUpload(server, repo);
    const res = await request(server.url, 'PUT', withQuery(s.location, { digest: b.digest }), {
      headers: octet,
      chunks: [b.data.subarray(0, 100), b.data.subarray(100)],
    });
    assertStatus(res, 201);
    await assertBlobServed(repo, b);
  });

  it('accepts a sha512 digest for a chunked upload', async () => {
    const repo = uniqueRepo('up');
    const b = randomBlob(3000, 'sha512');
    const s = await openUpload(server, repo);
    assertStatus(await patch(s, b.data.subarray(0, 2000), '0-1999'), 202);
    assertStatus(await patch(s, b.data.subarray(2000), '2000-2999'), 202);
    assertStatus(await request(server.url, 'PUT', withQuery(s.location, { digest: b.digest })), 201);
    await assertBlobServed(repo, b);
  });

  it('rejects content that does not match the digest with 400 DIGEST_INVALID; the blob is not retrievable', async () => {
    const repo = uniqueRepo('up');
    const real = randomBlob(500);
    const claimed = randomBlob(500);
    const before = await listFiles(server.dataDir);
    const s = await openUpload(server, repo);
    assertStatus(await patch(s, real.data, `0-${real.size - 1}`), 202);
    const res = await request(server.url, 'PUT', withQuery(s.location, { digest: claimed.digest }));
    assertError(res, 400, 'DIGEST_INVALID');
    assertError(await getBlob(repo, claimed.digest), 404, 'BLOB_UNKNOWN');
    assertStatus(await getBlob(repo, real.digest), 404);
    // Whatever state the session is left in, cancelling it must leave nothing behind.
    await request(server.url, 'DELETE', s.location);
    await assertNoNewFiles(server.dataDir, before, 'upload closed with a wrong digest');
  });

  it('rejects a closing PUT without the digest parameter with 400 DIGEST_INVALID', async () => {
    const repo = uniqueRepo('up');
    const s = await openUpload(server, repo);
    assertStatus(await patch(s, Buffer.from('abcd'), '0-3'), 202);
    const res = await request(server.url, 'PUT', s.location);
    assertError(res, 400, 'DIGEST_INVALID');
  });

  it('rejects a malformed digest parameter with 400 DIGEST_INVALID', async () => {
    const repo = uniqueRepo('up');
    const s = await openUpload(server, repo);
    const res = await request(server.url, 'PUT', withQuery(s.location, { digest: 'sha256:../../etc/passwd' }), { headers: octet, body: 'x' });
    assertError(res, 400, 'DIGEST_INVALID');
  });

  it('ends the session: the upload location is then 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const repo = uniqueRepo('up');
    const b = randomBlob(10);
    const s = await openUpload(server, repo);
    assertStatus(await request(server.url, 'PUT', withQuery(s.location, { digest: b.digest }), { headers: octet, body: b.data }), 201);
    assertError(await uploadStatus(server, s), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertError(await patch(s, Buffer.alloc(1), '10-10'), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('leaves nothing under uploads/ once committed: POST + PUT, chunked, and a single POST', async () => {
    const { storage } = server.app;
    const before = new Set(await storage.list('uploads'));
    const repo = uniqueRepo('up');
    const whole = randomBlob(5000);
    const s = await openUpload(server, repo);
    assertStatus(await request(server.url, 'PUT', withQuery(s.location, { digest: whole.digest }), { headers: octet, body: whole.data }), 201);
    const chunked = randomBlob(4000);
    const c = await openUpload(server, repo);
    assertStatus(await patch(c, chunked.data.subarray(0, 1000), '0-999'), 202);
    assertStatus(
      await request(server.url, 'PUT', withQuery(c.location, { digest: chunked.digest }), { headers: octet, body: chunked.data.subarray(1000) }),
      201,
    );
    const single = randomBlob(3000);
    assertStatus(await request(server.url, 'POST', withQuery(uploadsPath(repo), { digest: single.digest }), { headers: octet, body: single.data }), 201);
    const left = (await storage.list('uploads')).filter((name) => !before.has(name));
    assert.deepEqual(left, [], 'committed uploads left entries under uploads/');
    for (const b of [whole, chunked, single]) await assertBlobServed(repo, b);
  });

  it('answers an unknown session with 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const repo = uniqueRepo('up');
    const b = randomBlob(10);
    const res = await request(server.url, 'PUT', withQuery(`${uploadsPath(repo)}00000000-0000-4000-8000-000000000000`, { digest: b.digest }), {
      headers: octet,
      body: b.data,
    });
    assertError(res, 404, 'BLOB_UPLOAD_UNKNOWN');
  });
});

describe('GET /v2/<name>/blobs/uploads/<reference>', () => {
  it('returns 204 No Content with Location and the current Range', async () => {
    const s = await openUpload(server, uniqueRepo('up'));
    assertStatus(await patch(s, Buffer.alloc(64), '0-63'), 202);
    const res = await uploadStatus(server, s);
    assertStatus(res, 204);
    requireHeader(res, 'location');
    assert.equal(requireHeader(res, 'range'), '0-63');
    assert.equal(res.body.length, 0);
  });

  it('reports a fresh session with the same Range the POST returned', async () => {
    const s = await openUpload(server, uniqueRepo('up'));
    const res = await uploadStatus(server, s);
    assertStatus(res, 204);
    assert.equal(requireHeader(res, 'range'), requireHeader(s.post, 'range'));
  });

  it('answers an unknown session with 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const res = await request(server.url, 'GET', `${uploadsPath(uniqueRepo('up'))}00000000-0000-4000-8000-000000000000`);
    assertError(res, 404, 'BLOB_UPLOAD_UNKNOWN');
  });
});

describe('DELETE /v2/<name>/blobs/uploads/<reference>', () => {
  it('cancels the session with 204; later use is 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const repo = uniqueRepo('up');
    const b = randomBlob(32);
    const s = await openUpload(server, repo);
    assertStatus(await patch(s, b.data, '0-31'), 202);
    const del = await request(server.url, 'DELETE', s.location, { headers: { 'Content-Length': '0' } });
    assertStatus(del, 204);
    assertError(await uploadStatus(server, s), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertError(await patch(s, b.data, '0-31'), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertError(await request(server.url, 'PUT', withQuery(s.location, { digest: b.digest })), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertError(await request(server.url, 'DELETE', s.location), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertStatus(await getBlob(repo, b.digest), 404);
  });

  it('leaves no uploaded data behind', async () => {
    const repo = uniqueRepo('up');
    await pushBlob(server, repo, randomBlob(8));
    const before = await listFiles(server.dataDir);
    const s = await openUpload(server, repo);
    assertStatus(await patch(s, randomBlob(100_000).data, '0-99999'), 202);
    assertStatus(await request(server.url, 'DELETE', s.location), 204);
    await assertNoNewFiles(server.dataDir, before, 'cancelled upload');
  });

  it('answers an unknown session with 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const res = await request(server.url, 'DELETE', `${uploadsPath(uniqueRepo('up'))}00000000-0000-4000-8000-000000000000`);
    assertError(res, 404, 'BLOB_UPLOAD_UNKNOWN');
  });
});

describe('POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<other_name>', () => {
  it('mounts a blob that exists in <other_name>: 201 Created with Location', async () => {
    const from = uniqueRepo('src');
    const to = uniqueRepo('dst');
    const b = await pushBlob(server, from, randomBlob(700));
    const res = await request(server.url, 'POST', withQuery(uploadsPath(to), { mount: b.digest, from }), { headers: { 'Content-Length': '0' } });
    assertStatus(res, 201);
    const loc = requireHeader(res, 'location');
    const dcd = header(res, 'docker-content-digest');
    if (dcd !== undefined) assert.equal(dcd, b.digest);
    const pulled = await request(server.url, 'GET', loc);
    assertStatus(pulled, 200);
    assert.ok(pulled.body.equals(b.data));
    await assertBlobServed(to, b);
  });

  it('falls back to an upload session (202 with Location) when <other_name> lacks the blob', async () => {
    const from = uniqueRepo('src');
    const to = uniqueRepo('dst');
    await pushBlob(server, from, randomBlob(10));
    const b = randomBlob(300);
    const res = await request(server.url, 'POST', withQuery(uploadsPath(to), { mount: b.digest, from }), { headers: { 'Content-Length': '0' } });
    assertStatus(res, 202);
    const location = requireHeader(res, 'location');
    assertStatus(await getBlob(to, b.digest), 404);
    // The session is a real one: the client may proceed with the upload.
    const put = await request(server.url, 'PUT', withQuery(location, { digest: b.digest }), { headers: octet, body: b.data });
    assertStatus(put, 201);
    await assertBlobServed(to, b);
  });

  it('falls back to an upload session (202) when <other_name> does not exist', async () => {
    const b = randomBlob(30);
    const res = await request(server.url, 'POST', withQuery(uploadsPath(uniqueRepo('dst')), { mount: b.digest, from: uniqueRepo('ghost') }), {
      headers: { 'Content-Length': '0' },
    });
    assertStatus(res, 202);
    requireHeader(res, 'location');
  });

  it('rejects a malformed mount digest with 400 DIGEST_INVALID', async () => {
    const from = uniqueRepo('src');
    await pushBlob(server, from, randomBlob(10));
    const res = await request(server.url, 'POST', withQuery(uploadsPath(uniqueRepo('dst')), { mount: 'sha256:nothex', from }), {
      headers: { 'Content-Length': '0' },
    });
    assertError(res, 400, 'DIGEST_INVALID');
  });

  it('never mounts from an invalid <other_name>', async () => {
    const b = randomBlob(30);
    const res = await request(server.url, 'POST', withQuery(uploadsPath(uniqueRepo('dst')), { mount: b.digest, from: '../../etc' }), {
      headers: { 'Content-Length': '0' },
    });
    assert.ok(res.status === 202 || res.status === 400, `mount from ../../etc: got ${res.status}`);
    if (res.status === 400) assertError(res, 400, 'NAME_INVALID');
  });
});

// "The registry MAY treat the `from` parameter as optional, and it MAY cross-mount the blob if it
// can be found." (v1.1, "Mounting a blob from another repository"); otherwise "it SHOULD return a
// `202`" and the upload proceeds. The conformance suite tests it as "mount anonymous"
// (`apis.blobs.mountAnonymous`, on in its stable settings). With auth off every repository may be
// read, so any holder counts; with auth on see mount-without-from.test.ts.
describe('POST /v2/<name>/blobs/uploads/?mount=<digest> without from', () => {
  it('mounts a blob some other repository holds: 201 Created with Location', async () => {
    const b = await pushBlob(server, uniqueRepo('src'), randomBlob(321));
    const to = uniqueRepo('dst');
    const res = await request(server.url, 'POST', withQuery(uploadsPath(to), { mount: b.digest }), { headers: { 'Content-Length': '0' } });
    assertStatus(res, 201);
    assert.equal(requireHeader(res, 'location'), `/v2/${to}/blobs/${b.digest}`);
    assert.equal(header(res, 'docker-content-digest'), b.digest);
    await assertBlobServed(to, b);
  });

  it('reads an empty from as no from', async () => {
    const b = await pushBlob(server, uniqueRepo('src'), randomBlob(55));
    const to = uniqueRepo('dst');
    const res = await request(server.url, 'POST', withQuery(uploadsPath(to), { mount: b.digest, from: '' }), { headers: { 'Content-Length': '0' } });
    assertStatus(res, 201);
    await assertBlobServed(to, b);
  });

  it('answers 201 when the repository itself already holds the blob', async () => {
    const repo = uniqueRepo('dst');
    const b = await pushBlob(server, repo, randomBlob(77));
    const res = await request(server.url, 'POST', withQuery(uploadsPath(repo), { mount: b.digest }), { headers: { 'Content-Length': '0' } });
    assertStatus(res, 201);
  });

  it('falls back to an upload session (202) when no repository holds the blob, and the upload works', async () => {
    const to = uniqueRepo('dst');
    const b = randomBlob(222);
    const res = await request(server.url, 'POST', withQuery(uploadsPath(to), { mount: b.digest }), { headers: { 'Content-Length': '0' } });
    assertStatus(res, 202);
    const location = requireHeader(res, 'location');
    assertStatus(await getBlob(to, b.digest), 404);
    assertStatus(await request(server.url, 'PUT', withQuery(location, { digest: b.digest }), { headers: octet, body: b.data }), 201);
    await assertBlobServed(to, b);
  });

  it('falls back to an upload session (202) when the only holder deleted its link', async () => {
    const from = uniqueRepo('src');
    const b = await pushBlob(server, from, randomBlob(99));
    assertStatus(await request(server.url, 'DELETE', `/v2/${from}/blobs/${b.digest}`), 202);
    const res = await request(server.url, 'POST', withQuery(uploadsPath(uniqueRepo('dst')), { mount: b.digest }), { headers: { 'Content-Length': '0' } });
    assertStatus(res, 202);
  });

  it('rejects a malformed mount digest with 400 DIGEST_INVALID', async () => {
    const res = await request(server.url, 'POST', withQuery(uploadsPath(uniqueRepo('dst')), { mount: 'sha256:nothex' }), {
      headers: { 'Content-Length': '0' },
    });
    assertError(res, 400, 'DIGEST_INVALID');
  });
});

describe('concurrent pushes of the same blob', () => {
  it('lets two interleaved chunked sessions both succeed, storing the content once', async () => {
    const repo = uniqueRepo('race');
    const b = randomBlob(64 * 1024);
    const s1 = await openUpload(server, repo);
    const s2 = await openUpload(server, repo);
    const half = b.size / 2;
    assertStatus(await patch(s1, b.data.subarray(0, half), `0-${half - 1}`), 202);
    assertStatus(await patch(s2, b.data.subarray(0, half), `0-${half - 1}`), 202);
    const [p1, p2] = await Promise.all([
      request(server.url, 'PUT', withQuery(s1.location, { digest: b.digest }), {
        headers: { ...octet, 'Content-Range': `${half}-${b.size - 1}` },
        body: b.data.subarray(half),
      }),
      request(server.url, 'PUT', withQuery(s2.location, { digest: b.digest }), {
        headers: { ...octet, 'Content-Range': `${half}-${b.size - 1}` },
        body: b.data.subarray(half),
      }),
    ]);
    assertStatus(p1, 201);
    assertStatus(p2, 201);
    await assertBlobServed(repo, b);
    const copies = await filesWithContent(server.dataDir, b);
    assert.equal(copies.length, 1, `blob stored ${copies.length} times: ${copies.join(', ')}`);
  });

  it('lets two simultaneous single-POST uploads into two repositories both succeed, storing the content once', async () => {
    const r1 = uniqueRepo('race');
    const r2 = uniqueRepo('race');
    const b = randomBlob(256 * 1024);
    const results = await Promise.all(
      [r1, r2, r1, r2].map((r) => request(server.url, 'POST', withQuery(uploadsPath(r), { digest: b.digest }), { headers: octet, body: b.data })),
    );
    for (const res of results) assertStatus(res, 201);
    await assertBlobServed(r1, b);
    await assertBlobServed(r2, b);
    const copies = await filesWithContent(server.dataDir, b);
    assert.equal(copies.length, 1, `blob stored ${copies.length} times: ${copies.join(', ')}`);
  });

  it('stores a blob pushed to many repositories once', async () => {
    const b = randomBlob(20_000);
    for (let i = 0; i < 3; i++) await pushBlob(server, uniqueRepo('dedup'), b);
    const copies = await filesWithContent(server.dataDir, b);
    assert.equal(copies.length, 1, `blob stored ${copies.length} times: ${copies.join(', ')}`);
    assert.equal(sha256(b.data), b.digest);
  });
});
