/**
 * Storage usage and quotas against a real Berth: usage per repository (logical and exclusive) and
 * per glob; a push that would exceed a quota refused mid-push with DENIED, naming the limit and the
 * usage, with nothing of it left visible; warning and exceeded events through the outbox; push rate
 * limits per principal; the usage metrics.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { parseDigest } from '../../src/oci/digest.js';
import { blobPath, uploadsPrefix } from '../../src/storage/paths.js';
import { Receiver } from '../webhooks/helpers.js';
import type { TestServer } from '../support/server.js';
import { Api, RegistryClient, finishedRun, sha256, startLifecycleServer, waitFor } from './helpers.js';

const KiB = 1024;

describe('usage and quotas', () => {
  let server: TestServer;
  let api: Api;
  let registry: RegistryClient;
  let receiver: Receiver;

  before(async () => {
    server = await startLifecycleServer();
    api = await Api.asOwner(server.url);
    registry = new RegistryClient(server.url);
    receiver = await Receiver.start();
    const hook = await api.post('/webhooks', { name: 'quotas', url: `${receiver.url}/hook`, events: ['quota_warning', 'quota_exceeded'] });
    assert.equal(hook.status, 201, JSON.stringify(hook.body));
  });
  after(async () => {
    await server?.stop();
    await receiver?.close();
  });

  async function refreshUsage(): Promise<void> {
    const started = await api.post('/lifecycle/usage/refresh', {});
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const { run } = await finishedRun(api, started.body.run.id);
    assert.equal(run.status, 'succeeded', JSON.stringify(run));
  }

  it('counts each repository’s logical and exclusive bytes, and a glob’s', async () => {
    // A layer shared by two repositories counts in both logical sizes and in neither exclusive one.
    const shared = randomBytes(4 * KiB);
    const a = await registry.prepare('usage/a', { layers: [1 * KiB] });
    await registry.blob('usage/a', shared);
    const b = await registry.prepare('usage/b', { layers: [2 * KiB] });
    await registry.blob('usage/b', shared);
    const withShared = (image: typeof a) => {
      const doc = JSON.parse(image.bytes.toString());
      doc.layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(shared), size: shared.length });
      return Buffer.from(JSON.stringify(doc));
    };
    const manifestA = withShared(a);
    const manifestB = withShared(b);
    assert.equal((await registry.putManifest('usage/a', 'v1', manifestA)).status, 201);
    assert.equal((await registry.putManifest('usage/b', 'v1', manifestB)).status, 201);
    await refreshUsage();

    const usage = await api.get('/lifecycle/usage?pattern=usage/*');
    assert.equal(usage.status, 200, JSON.stringify(usage.body));
    const byName = Object.fromEntries(usage.body.repositories.map((r: any) => [r.repository, r]));
    const own = (image: typeof a, manifest: Buffer) => image.blobs.reduce((n, blob) => n + blob.size, 0) + manifest.length;
    assert.equal(byName['usage/a'].logicalBytes, own(a, manifestA) + shared.length);
    assert.equal(byName['usage/a'].exclusiveBytes, own(a, manifestA));
    assert.equal(byName['usage/b'].exclusiveBytes, own(b, manifestB));
    assert.equal(byName['usage/a'].manifests, 1);
    assert.equal(byName['usage/a'].blobs, 3);
    assert.equal(usage.body.total.repositories, 2);
    assert.equal(usage.body.total.logicalBytes, byName['usage/a'].logicalBytes + byName['usage/b'].logicalBytes);
    assert.equal(usage.body.total.exclusiveBytes, own(a, manifestA) + own(b, manifestB) + shared.length, 'deleting both frees the shared layer too');
    const paged = await api.get('/lifecycle/usage?pattern=usage/*&n=1');
    assert.equal(paged.body.repositories.length, 1);
    assert.equal(paged.body.next, 'usage/a');
    assert.equal((await api.get('/lifecycle/usage?pattern=usage/*&n=1&last=usage/a')).body.repositories[0].repository, 'usage/b');

    const text = await server.app.metrics.registry.metrics();
    assert.match(text, /berth_lifecycle_logical_bytes [1-9]\d*/);
    assert.match(text, /berth_lifecycle_repositories [1-9]\d*/);
  });

  it('refuses an upload that would exceed the quota, mid-push, leaving nothing of it', async () => {
    const quota = await api.put('/lifecycle/quotas/small', { repositories: ['small/**'], limit: 12 * KiB, warnAt: 0.5 });
    assert.equal(quota.status, 201, JSON.stringify(quota.body));
    const fits = await registry.image('small/app', 'v1', { layers: [6 * KiB] });
    const used = fits.blobs.reduce((n, b) => n + b.size, 0) + fits.size;

    // The next image's big layer does not fit: its upload (a session upload, as clients do) is refused.
    const big = randomBytes(12 * KiB);
    const refused = await registry.sessionBlob('small/app', big);
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.equal(refused.body.errors[0].code, 'DENIED');
    assert.match(refused.body.errors[0].message, /quota small \(small\/\*\*\) is 12\.0 KiB; .* is in use and this upload of sha256:.* adds 12\.0 KiB/);
    assert.equal(refused.body.errors[0].detail.usage, used);
    assert.equal((await registry.headBlob('small/app', sha256(big))).status, 404, 'the refused blob is not in the repository');
    assert.equal((await registry.call('small/app', 'GET', refused.location)).status, 404, 'the upload session is gone');
    const monolithic = await registry.blob('small/app', big);
    assert.equal(monolithic.status, 403);
    assert.equal(await server.app.storage.stat(blobPath(parseDigest(sha256(big)))), undefined, 'its bytes were not stored');
    assert.deepEqual(await server.app.storage.list(uploadsPrefix), [], 'nor left in an upload');

    // Each layer fits on its own, together they do not: the manifest that makes them reachable is refused.
    const image = await registry.prepare('small/app', { layers: [4 * KiB, 4 * KiB] });
    const manifest = await registry.putManifest('small/app', 'v2', image.bytes, { tags: ['latest'] });
    assert.equal(manifest.status, 403, JSON.stringify(manifest.body));
    assert.match(manifest.body.errors[0].message, /quota small .* this push of sha256:/);
    assert.deepEqual(await registry.tags('small/app'), ['v1'], 'neither tag of the refused push exists');
    assert.equal((await registry.get('small/app', image.digest)).status, 404, 'nor its manifest');
    // The image that fitted is untouched, and a re-push of it adds nothing, so it still succeeds.
    assert.equal((await registry.putManifest('small/app', 'v1', fits.bytes)).status, 201);

    const events = await waitFor('quota events', () => {
      const found = receiver.received.filter((r) => r.json?.berth?.quota?.name === 'small');
      return found.some((r) => r.json.action === 'quota_exceeded') ? found : undefined;
    });
    const warning = events.find((e) => e.json.action === 'quota_warning');
    assert.ok(warning, 'the first push went past half the limit: a warning');
    assert.equal(warning.json.berth.quota.limitBytes, 12 * KiB);
    const exceeded = events.find((e) => e.json.action === 'quota_exceeded')!;
    assert.equal(exceeded.json.target.repository, 'small/app');
    assert.equal(exceeded.json.berth.quota.refusedBytes, 12 * KiB);
    assert.equal(exceeded.headers['berth-event'] ?? exceeded.json.action, 'quota_exceeded');
    assert.equal(events.filter((e) => e.json.action === 'quota_exceeded').length, 1, 'exceeded is reported once, not per refusal');

    const view = (await api.get('/lifecycle/usage?pattern=small/**')).body.quotas.find((q: any) => q.name === 'small');
    assert.equal(view.state, 'exceeded');
    assert.equal(view.usageBytes, used);
    assert.equal(view.limitBytes, 12 * KiB);
  });

  it('is enforced at once when created, counts pushes accepted since, and a refresh agrees', async () => {
    const existing = await registry.image('late/app', 'v1', { layers: [8 * KiB] });
    const bytesOf = (image: typeof existing) => image.size + image.blobs.reduce((n, b) => n + b.size, 0);
    // Created over existing content: its usage is computed at once.
    assert.equal((await api.put('/lifecycle/quotas/late', { repositories: ['late/**'], limit: 64 * KiB })).status, 201);
    const quota = async () => (await api.get('/lifecycle/usage?pattern=late/**')).body.quotas.find((q: any) => q.name === 'late');
    assert.equal((await quota()).usageBytes, bytesOf(existing));
    const second = await registry.image('late/other', 'v1', { layers: [3 * KiB] });
    assert.equal((await quota()).usageBytes, bytesOf(existing) + bytesOf(second));
    await refreshUsage();
    const refreshed = await quota();
    assert.equal(refreshed.usageBytes, bytesOf(existing) + bytesOf(second), 'the refresh takes off the delta it counted');
    assert.equal(refreshed.state, 'ok');
  });

  it('limits pushes per principal per hour with TOOMANYREQUESTS and Retry-After', async () => {
    assert.equal((await api.put('/lifecycle/quotas/rate', { repositories: ['rate/**'], perPrincipal: { pushesPerHour: 2 } })).status, 201);
    await registry.image('rate/app', 'a');
    await registry.image('rate/app', 'b');
    const image = await registry.prepare('rate/app');
    const third = await registry.putManifest('rate/app', 'c', image.bytes);
    assert.equal(third.status, 429, JSON.stringify(third.body));
    assert.equal(third.body.errors[0].code, 'TOOMANYREQUESTS');
    assert.match(third.body.errors[0].message, /owner reached the manifest pushes allowed per hour by quota rate \(2\)/);
    assert.ok(Number(third.headers.get('retry-after')) > 0);
    // Other repositories are not limited by it.
    await registry.image('other/app', 'c');
    assert.deepEqual(await registry.tags('rate/app'), ['a', 'b']);
  });

  it('limits uploaded bytes per principal per hour', async () => {
    assert.equal((await api.put('/lifecycle/quotas/bytes', { repositories: ['bytes/**'], perPrincipal: { bytesPerHour: '8KiB' } })).status, 201);
    assert.equal((await registry.blob('bytes/app', randomBytes(6 * KiB))).status, 201);
    const refused = await registry.blob('bytes/app', randomBytes(6 * KiB));
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    assert.match(refused.body.errors[0].message, /uploaded bytes allowed per hour by quota bytes/);
    assert.equal((await registry.headBlob('bytes/app', refused.digest)).status, 404);
  });

  it('exposes quotas in the metrics', async () => {
    const text = await server.app.metrics.registry.metrics();
    assert.match(text, /berth_lifecycle_quota_limit_bytes\{quota="small"\} 12288/);
    assert.match(text, /berth_lifecycle_quota_usage_bytes\{quota="small"\} \d+/);
    assert.match(text, /berth_lifecycle_push_refusals_total\{reason="quota"\} [1-9]/);
    assert.match(text, /berth_lifecycle_push_refusals_total\{reason="rate"\} [1-9]/);
  });
});
