import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../support/server.js';
import {
  Api,
  buildMultiArchImage,
  deliver,
  fastSync,
  headDigest,
  imageStatus,
  loopbackEgress,
  pullToken,
  pushEvent,
  pushImage,
  pushToken,
  startBerth,
  waitFor,
  type BuiltImage,
} from './helpers.js';

/**
 * Two customer replicas sharing one database and one blob store, both running the sync worker:
 * work is claimed with leases, so notifications spread over both replicas copy an image once, and
 * an item claimed by a replica that died is taken over when its lease runs out.
 */
describe('sync across replicas sharing a database', () => {
  let vendor: TestServer;
  let first: TestServer;
  let second: TestServer;
  let api: Api;
  let image: BuiltImage;
  let secret = '';

  before(async () => {
    vendor = await startBerth();
    first = await startBerth();
    second = await startTestServer({ auth: true, dataDir: first.dataDir, config: { egress: loopbackEgress, sync: fastSync } });
    api = await Api.asOwner(first.url);
    image = await buildMultiArchImage('replicas');
    const token = await pushToken(vendor.url, 'tripinsights/api');
    await pushImage(vendor.url, token, 'tripinsights/api', 'v1', image.dir, image.index.index);
    await pushImage(vendor.url, token, 'tripinsights/api', 'v2', image.dir, image.index.index);
    const reader = await (
      await Api.asOwner(vendor.url)
    ).post('/principals', { kind: 'token', name: 'replicas', grants: [{ pattern: 'tripinsights/**', permission: 'pull' }] });
    const rule = await api.post('/sync/rules', {
      name: 'vendor',
      source: { url: vendor.url, credentials: { kind: 'basic', username: 'replicas', password: reader.body.secret.value } },
      repositories: ['tripinsights/api'],
      triggers: { webhook: {} },
    });
    assert.equal(rule.status, 201, JSON.stringify(rule.body));
    secret = rule.body.webhook.secret;
    // The backfill (due at once) copies v1 and v2; let it finish so the tests below start from a known state.
    await waitFor('the backfill', async () => {
      const rows = await imageStatus(api, 'vendor');
      return rows.get('tripinsights/api:v1')?.copies === 1 && rows.get('tripinsights/api:v2')?.copies === 1 ? rows : undefined;
    });
  });

  after(async () => {
    await second?.stop();
    await Promise.all([first?.stop(), vendor?.stop()]);
    await image?.dispose();
  });

  it('notifications spread over both replicas copy a moved tag once; a delivery id seen by one is a duplicate on the other', async () => {
    // Move v1 on the vendor to the index's first platform manifest, then announce it everywhere.
    const platform = image.index.images[0]?.manifest;
    assert.ok(platform);
    await pushImage(vendor.url, await pushToken(vendor.url, 'tripinsights/api'), 'tripinsights/api', 'v1', image.dir, platform);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        deliver(i % 2 === 0 ? first.url : second.url, 'vendor', pushEvent('tripinsights/api', 'v1', platform.digest, `spread-${i}`), { secret }),
      ),
    );
    for (const answer of answers) assert.equal(answer.status, 202, JSON.stringify(answer.body));
    const once = pushEvent('tripinsights/api', 'v1', platform.digest, 'both-replicas');
    assert.equal((await deliver(first.url, 'vendor', once, { secret })).body.events[0].outcome !== 'duplicate', true);
    assert.equal((await deliver(second.url, 'vendor', once, { secret })).body.events[0].outcome, 'duplicate');

    const token = await pullToken(first.url, 'tripinsights/api');
    await waitFor('the moved tag', async () => ((await headDigest(first.url, token, 'tripinsights/api', 'v1')) === platform.digest ? true : undefined));
    const row = await waitFor('the queue to drain', async () => {
      const status = (await api.get('/sync/rules/vendor/status')).body;
      return status.queue.pending === 0 ? status.images.find((i: any) => i.tag === 'v1') : undefined;
    });
    assert.equal(row.copies, 2, 'the backfill, then the move: once');
    const history = await fetch(`${first.url}/api/v1/repositories/tripinsights/api/history?tag=v1`, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(((await history.json()) as { pushes: unknown[] }).pushes.length, 2);
  });

  it('an item claimed by a replica that died is taken over once its lease has run out', async () => {
    const store = first.app.metadata.sync;
    const rule = await store.rules.findByName('vendor');
    assert.ok(rule);
    // A third "replica" claims v2 and never finishes (it crashed): its lease runs out 1.5 s after
    // the item is due. The item is queued due 1 s from now, so the live replicas' workers (polling
    // all along) cannot claim it before the crashed replica does: it claims as of the due time.
    const due = Date.now() + 1000;
    assert.equal(await store.queue.enqueue({ ruleId: rule.id, repository: 'tripinsights/api', tag: 'v2', digest: null, reason: 'manual' }, due), 'queued');
    const leaseUntil = due + 1500;
    const claimed = await store.queue.claim({ owner: 'crashed-replica', now: due, until: leaseUntil, limit: 10 });
    assert.deepEqual(
      claimed.map((i) => i.tag),
      ['v2'],
    );

    const checked = await waitFor('a live replica to take the item over', async () => {
      const status = (await api.get('/sync/rules/vendor/status')).body;
      const v2 = status.images.find((i: any) => i.tag === 'v2');
      return status.queue.pending === 0 && Date.parse(v2.lastCheckedAt) >= leaseUntil ? v2 : undefined;
    });
    assert.equal(checked.copies, 1, 'unchanged at the source: checked, not copied again');
    assert.equal(checked.lastError, null);
  });
});
