import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startBerth } from '../support/berth-process.js';

describe('upload sessions across a server restart', () => {
  const dirs: string[] = [];
  after(async () => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

  it('resumes a chunked upload after the server was killed mid-way', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'berth-restart-'));
    dirs.push(dataDir);
    const first = randomBytes(3 * 1024 * 1024 + 17);
    const second = randomBytes(2 * 1024 * 1024 + 5);
    const digest = `sha256:${createHash('sha256').update(first).update(second).digest('hex')}`;

    const before = await startBerth({ dataDir });
    const started = await fetch(`${before.url}/v2/restart/app/blobs/uploads/`, { method: 'POST' });
    assert.equal(started.status, 202);
    const location = started.headers.get('location');
    assert.ok(location);
    const patched = await fetch(new URL(location, before.url), {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `0-${first.length - 1}` },
      body: first,
    });
    assert.equal(patched.status, 202);
    await before.kill(); // SIGKILL: no graceful shutdown, the in-memory hash state is lost

    const after = await startBerth({ dataDir });
    try {
      const status = await fetch(new URL(location, after.url));
      assert.equal(status.status, 204);
      assert.equal(status.headers.get('range'), `0-${first.length - 1}`);

      const outOfOrder = await fetch(new URL(location, after.url), {
        method: 'PATCH',
        headers: { 'Content-Range': `0-${second.length - 1}` },
        body: second,
      });
      assert.equal(outOfOrder.status, 416);
      assert.equal(outOfOrder.headers.get('range'), `0-${first.length - 1}`);

      const resumed = await fetch(new URL(location, after.url), {
        method: 'PATCH',
        headers: { 'Content-Range': `${first.length}-${first.length + second.length - 1}` },
        body: second,
      });
      assert.equal(resumed.status, 202);
      const closed = await fetch(new URL(`${location}?digest=${digest}`, after.url), { method: 'PUT' });
      assert.equal(closed.status, 201, await closed.text());
      assert.equal(closed.headers.get('docker-content-digest'), digest);

      const blob = Buffer.from(await (await fetch(`${after.url}/v2/restart/app/blobs/${digest}`)).arrayBuffer());
      assert.equal(blob.length, first.length + second.length);
      assert.ok(blob.equals(Buffer.concat([first, second])));
    } finally {
      await after.stop();
    }
  });
});
