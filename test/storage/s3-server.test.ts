/**
 * The registry on S3 storage, whatever BERTH_TEST_BACKEND says: two replicas sharing a bucket (and
 * a database) serve the requests of one chunked upload in turn, and blob GETs answer with a
 * redirect to a presigned URL when `storage.s3.redirect` is on.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { s3StorageFor } from '../support/s3.js';
import { startTestServer, type TestServer } from '../support/server.js';

const MiB = 1024 * 1024;
/** The Location header as path + query, to be sent to any replica. */
function pathOf(res: Response): string {
  const url = new URL(res.headers.get('location') ?? '', 'http://any');
  return url.pathname + url.search;
}

const digestOf = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

describe('registry on S3 storage', () => {
  let parent: string;
  let first: TestServer;
  let second: TestServer;

  before(async () => {
    parent = await mkdtemp(join(tmpdir(), 'berth-s3-server-'));
    const dataDir = join(parent, 'data');
    const storage = await s3StorageFor(dataDir);
    first = await startTestServer({ dataDir, config: { storage } });
    second = await startTestServer({ dataDir, config: { storage: { ...storage, s3: { ...storage.s3!, redirect: true } } } });
  });
  after(async () => {
    await first?.stop();
    await second?.stop();
    await rm(parent, { recursive: true, force: true });
  });

  for (const [label, sizes] of [
    ['large chunks (assembled by part copies)', [6 * MiB, 5 * MiB, 1234]],
    ['small chunks (assembled by streaming)', [1000, 70_000, 5]],
  ] as const) {
    it(`commits an upload whose chunks went to different replicas: ${label}`, async () => {
      const chunks = sizes.map((size) => randomBytes(size));
      const blob = Buffer.concat(chunks);
      const replicas = [first, second];
      const started = await fetch(`${first.url}/v2/shared/app/blobs/uploads/`, { method: 'POST' });
      assert.equal(started.status, 202);
      let location = pathOf(started);
      let offset = 0;
      for (const [index, chunk] of chunks.entries()) {
        const replica = replicas[(index + 1) % 2] as TestServer;
        const res = await fetch(new URL(location, replica.url), {
          method: 'PATCH',
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${offset + chunk.length - 1}` },
          body: chunk,
        });
        assert.equal(res.status, 202, await res.text());
        offset += chunk.length;
        assert.equal(res.headers.get('range'), `0-${offset - 1}`);
        location = pathOf(res);
      }
      const status = await fetch(new URL(location, first.url));
      assert.equal(status.headers.get('range'), `0-${blob.length - 1}`, 'the other replica sees the same progress');
      const closing = new URL(location, second.url);
      closing.searchParams.set('digest', digestOf(blob));
      const done = await fetch(closing, { method: 'PUT' });
      assert.equal(done.status, 201, await done.text());
      const got = await fetch(`${first.url}/v2/shared/app/blobs/${digestOf(blob)}`);
      assert.equal(got.status, 200);
      assert.ok(Buffer.from(await got.arrayBuffer()).equals(blob));
    });
  }

  it('redirects blob GETs to a presigned URL when redirect is on, serves ranges itself', async () => {
    const blob = randomBytes(300_000);
    const pushed = await fetch(`${first.url}/v2/shared/redirect/blobs/uploads/?digest=${digestOf(blob)}`, { method: 'POST', body: blob });
    assert.equal(pushed.status, 201);
    const direct = await fetch(`${first.url}/v2/shared/redirect/blobs/${digestOf(blob)}`, { redirect: 'manual' });
    assert.equal(direct.status, 200, 'redirect is off on the first replica');
    await direct.arrayBuffer();
    const redirected = await fetch(`${second.url}/v2/shared/redirect/blobs/${digestOf(blob)}`, { redirect: 'manual' });
    assert.equal(redirected.status, 307);
    assert.equal(redirected.headers.get('docker-content-digest'), digestOf(blob));
    const target = redirected.headers.get('location') ?? '';
    assert.match(target, /X-Amz-Signature=/);
    const fromStorage = await fetch(target);
    assert.equal(fromStorage.status, 200);
    assert.ok(Buffer.from(await fromStorage.arrayBuffer()).equals(blob));
    const ranged = await fetch(`${second.url}/v2/shared/redirect/blobs/${digestOf(blob)}`, { headers: { Range: 'bytes=10-19' }, redirect: 'manual' });
    assert.equal(ranged.status, 206);
    assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(blob.subarray(10, 20)));
  });
});
