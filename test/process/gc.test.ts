import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { BERTH_CLI } from '../support/berth-process.js';
import { startTestServer, type TestServer } from '../support/server.js';

const run = promisify(execFile);
const hour = 3600 * 1000;
const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** A clock the test moves forward, so "pushed an hour ago" needs no waiting. */
const clock = { offset: 0, now: () => Date.now() + clock.offset };

async function pushBlob(server: TestServer, repository: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const res = await fetch(`${server.url}/v2/${repository}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data });
  assert.equal(res.status, 201);
  return digest;
}

async function pushImage(server: TestServer, repository: string, tag: string, layer: Buffer): Promise<void> {
  const config = Buffer.from('{}');
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await pushBlob(server, repository, config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: await pushBlob(server, repository, layer), size: layer.length }],
  };
  const res = await fetch(`${server.url}/v2/${repository}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'Content-Type': manifest.mediaType },
    body: JSON.stringify(manifest),
  });
  assert.equal(res.status, 201);
}

/** Blobs in storage, counted through the server's own driver (filesystem or S3). */
async function blobFiles(server: TestServer): Promise<number> {
  const storage = server.app.storage;
  let count = 0;
  for (const prefix of await storage.list('blobs/sha256')) count += (await storage.list(`blobs/sha256/${prefix}`)).length;
  return count;
}

describe('berth gc', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ clock, uploadTtlMs: 2 * hour });
  });
  after(async () => server.stop());

  it('deletes unreferenced blobs and abandoned uploads, keeps referenced and recent ones', async () => {
    const orphan = await pushBlob(server, 'gc/app', randomBytes(1000));
    await pushImage(server, 'gc/app', 'v1', randomBytes(2000));
    const abandoned = await fetch(`${server.url}/v2/gc/app/blobs/uploads/`, { method: 'POST' });
    const abandonedLocation = abandoned.headers.get('location') ?? '';
    assert.equal(await blobFiles(server), 3);

    clock.offset = 3 * hour;
    const recent = await pushBlob(server, 'gc/app', randomBytes(500)); // pushed "now": within the grace period

    const { registry } = server.app;
    const dry = await registry.collectGarbage({ dryRun: true, graceMs: hour });
    assert.deepEqual(
      dry.blobs.map((b) => b.digest),
      [orphan],
    );
    assert.equal(dry.uploads.length, 1);
    assert.equal(await blobFiles(server), 4, 'a dry run deletes nothing');

    const report = await registry.collectGarbage({ dryRun: false, graceMs: hour });
    assert.deepEqual(
      report.blobs.map((b) => b.digest),
      [orphan],
    );
    assert.equal(report.bytes, 1000);
    assert.equal(await blobFiles(server), 3);
    assert.equal((await fetch(`${server.url}/v2/gc/app/blobs/${orphan}`, { method: 'HEAD' })).status, 404);
    assert.equal((await fetch(`${server.url}/v2/gc/app/blobs/${recent}`, { method: 'HEAD' })).status, 200);
    assert.equal((await fetch(`${server.url}/v2/gc/app/manifests/v1`)).status, 200);
    assert.equal((await fetch(new URL(abandonedLocation, server.url))).status, 404);
  });

  it('collects the layers of a deleted manifest', async () => {
    clock.offset = 0;
    await pushImage(server, 'gc/other', 'v1', randomBytes(3000));
    const head = await fetch(`${server.url}/v2/gc/other/manifests/v1`, { method: 'HEAD' });
    const digest = head.headers.get('docker-content-digest') ?? '';
    assert.equal((await fetch(`${server.url}/v2/gc/other/manifests/${digest}`, { method: 'DELETE' })).status, 202);
    clock.offset = 3 * hour;
    const { registry } = server.app;
    const report = await registry.collectGarbage({ dryRun: false, graceMs: hour });
    // The layer goes; the `{}` config stays: gc/app's manifest still references the same bytes.
    assert.equal(report.blobs.length, 1);
    assert.equal(report.blobs[0]?.size, 3000);
  });

  it('the CLI dry run lists what it would delete and deletes nothing', async () => {
    clock.offset = 0;
    const data = randomBytes(100);
    const digest = await pushBlob(server, 'gc/cli', data);
    const { stdout } = await run(process.execPath, [BERTH_CLI, 'gc', '--data', server.dataDir, '--dry-run', '--grace', '0']);
    assert.match(stdout, new RegExp(`would delete blob ${digest} \\(100 bytes\\)`));
    assert.equal((await fetch(`${server.url}/v2/gc/cli/blobs/${digest}`, { method: 'HEAD' })).status, 200);
    const real = await run(process.execPath, [BERTH_CLI, 'gc', '--data', server.dataDir, '--grace', '0']);
    assert.match(real.stdout, new RegExp(`deleted blob ${digest}`));
    assert.equal((await fetch(`${server.url}/v2/gc/cli/blobs/${digest}`, { method: 'HEAD' })).status, 404);
  });
});
