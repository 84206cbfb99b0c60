/**
 * `berth gc` while clients push: a deduplicating push (content the registry already stores), a
 * cross-repository mount and a chunked upload of the same content race the collection of that very
 * blob. Whatever the interleaving, a repository that says it has the blob (HEAD 200) must serve it
 * (GET 200 with the right bytes): a blob row must never outlive its file.
 *
 * GC runs through the server's own registry (on PostgreSQL its transactions run on other pooled
 * connections than the requests'; SQLite has one connection per process, and a second one in this
 * process would block the event loop in its busy wait), with the test clock two hours on so the
 * seeded blob is old and unreferenced. The pushes are real parallel
 * requests; the deduplicating ones send half their body, GC runs, then they finish, which is the
 * window in which the old code looked the blob up, GC deleted it, and the push linked it again.
 * Runs on both backends (BERTH_TEST_BACKEND=postgres+s3 for PostgreSQL and S3).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Registry } from '../../src/registry/index.js';
import { startTestServer, type TestServer } from '../support/server.js';

const hour = 3600 * 1000;
const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
/** A clock the test moves forward, so "pushed two hours ago" needs no waiting; GC shares it. */
const clock = { offset: 0, now: () => Date.now() + clock.offset };

/** A monolithic push (POST ?digest=) whose body is sent in two halves, the second when asked. */
function halfwayPush(base: string, repository: string, digest: string, data: Buffer): { halfSent: Promise<void>; finish(): Promise<number> } {
  const req = request(`${base}/v2/${repository}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    headers: { 'Content-Length': String(data.length), 'Content-Type': 'application/octet-stream' },
  });
  const status = new Promise<number>((ok, fail) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => ok(res.statusCode ?? 0));
    });
    req.on('error', fail);
  });
  const half = data.subarray(0, data.length / 2);
  const halfSent = new Promise<void>((ok) => req.write(half, () => ok()));
  return {
    halfSent,
    finish: () => {
      req.end(data.subarray(half.length));
      return status;
    },
  };
}

/** A chunked upload with all its bytes sent; `complete()` sends the closing PUT ?digest=. */
async function openUpload(base: string, repository: string, data: Buffer): Promise<{ complete(digest: string): Promise<number> }> {
  const start = await fetch(`${base}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  await start.arrayBuffer();
  assert.equal(start.status, 202);
  const location = new URL(start.headers.get('location') ?? '', base);
  const patch = await fetch(location, { method: 'PATCH', body: data, headers: { 'Content-Type': 'application/octet-stream' } });
  await patch.arrayBuffer();
  assert.equal(patch.status, 202);
  const next = new URL(patch.headers.get('location') ?? location.toString(), base);
  return {
    async complete(digest) {
      next.searchParams.set('digest', digest);
      const put = await fetch(next, { method: 'PUT' });
      await put.arrayBuffer();
      return put.status;
    },
  };
}

/** Every repository that says it has `digest` (HEAD 200) serves it (GET 200, the right bytes). */
async function assertServable(base: string, repositories: readonly string[], digest: string): Promise<void> {
  for (const repository of repositories) {
    const head = await fetch(`${base}/v2/${repository}/blobs/${digest}`, { method: 'HEAD' });
    if (head.status !== 200) continue;
    const get = await fetch(`${base}/v2/${repository}/blobs/${digest}`);
    const body = Buffer.from(await get.arrayBuffer());
    assert.equal(get.status, 200, `${repository}: HEAD says the blob is there, GET answers ${get.status} ${body.toString('utf8').slice(0, 200)}`);
    assert.equal(sha256(body), digest, `${repository}: the bytes`);
  }
}

describe('garbage collection racing deduplicating pushes, mounts and uploads of the same blob', () => {
  let server: TestServer;
  let gc: Registry;

  before(async () => {
    server = await startTestServer({ clock });
    gc = server.app.registry;
  });
  after(async () => server?.stop());

  it('never leaves a repository that says it has the blob unable to serve it', async () => {
    const rounds = 4;
    const parallel = 12;
    for (let round = 0; round < rounds; round++) {
      const data = randomBytes(512 * 1024);
      const digest = sha256(data);
      const seed = `race/seed-${round}`;
      const seeded = await fetch(`${server.url}/v2/${seed}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data });
      assert.equal(seeded.status, 201);
      // Uploads of the same bytes, all sent, to be completed in the second phase.
      const uploads = await Promise.all(Array.from({ length: 4 }, (_, i) => openUpload(server.url, `race/upload-${round}-${i}`, data)));
      clock.offset += 2 * hour; // the seeded blob is now old, and nothing references it

      // Phase 1: deduplicating pushes (half sent) and mounts while GC collects the blob.
      const pushed = Array.from({ length: parallel }, (_, i) => `race/push-${round}-${i}`);
      const pushes = pushed.map((repository) => halfwayPush(server.url, repository, digest, data));
      await Promise.all(pushes.map((p) => p.halfSent));
      await sleep(50); // lets the server take up the pushes; nothing below depends on it having done so
      const collection = gc.collectGarbage({ dryRun: false, graceMs: hour });
      const mounted = Array.from({ length: parallel }, (_, i) => `race/mount-${round}-${i}`);
      const mounts = mounted.map(async (repository) => {
        const res = await fetch(`${server.url}/v2/${repository}/blobs/uploads/?mount=${digest}&from=${seed}`, { method: 'POST' });
        await res.arrayBuffer();
        return res.status;
      });
      await collection;
      const statuses = await Promise.all([...pushes.map((p) => p.finish()), ...mounts]);
      for (const status of statuses) assert.ok([201, 202].includes(status), `push or mount answered ${status}`);
      await assertServable(server.url, [seed, ...pushed, ...mounted], digest);
      for (const repository of pushed) {
        assert.equal((await fetch(`${server.url}/v2/${repository}/blobs/${digest}`, { method: 'HEAD' })).status, 200, `${repository}: its push is readable`);
      }

      // Phase 2: the blob is old again; uploads of it complete while GC collects it.
      clock.offset += 2 * hour;
      const second = gc.collectGarbage({ dryRun: false, graceMs: hour });
      const completed = await Promise.all(uploads.map((u) => u.complete(digest)));
      await second;
      for (const status of completed) assert.equal(status, 201);
      const uploaded = uploads.map((_, i) => `race/upload-${round}-${i}`);
      await assertServable(server.url, [seed, ...pushed, ...mounted, ...uploaded], digest);
      for (const repository of uploaded) {
        assert.equal((await fetch(`${server.url}/v2/${repository}/blobs/${digest}`, { method: 'HEAD' })).status, 200, `${repository}: its upload is readable`);
      }
    }
  });

  it('a push of content whose file is missing (a row left dangling) stores it again, for every repository', async () => {
    const data = randomBytes(4096);
    const digest = sha256(data);
    assert.equal((await fetch(`${server.url}/v2/dangling/a/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data })).status, 201);
    await server.app.storage.delete(`blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}`);
    assert.equal((await fetch(`${server.url}/v2/dangling/a/blobs/${digest}`)).status, 404, 'the file is gone');
    assert.equal((await fetch(`${server.url}/v2/dangling/b/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data })).status, 201);
    for (const repository of ['dangling/a', 'dangling/b']) {
      const res = await fetch(`${server.url}/v2/${repository}/blobs/${digest}`);
      assert.equal(res.status, 200, repository);
      assert.equal(sha256(Buffer.from(await res.arrayBuffer())), digest);
    }
  });
});
