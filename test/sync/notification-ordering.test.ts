import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestServer } from '../support/server.js';
import {
  Api,
  buildMultiArchImage,
  deliver,
  headDigest,
  imageStatus,
  pullToken,
  pushEvent,
  pushImage,
  pushToken,
  startBerth,
  waitFor,
  type BuiltImage,
} from './helpers.js';

/**
 * Notifications can arrive before the source shows what they announce: CNCF Distribution sends a
 * manifest push event before it links the tag, so a fast receiver may find the tag missing or
 * still at the previous digest. The worker looks again (every second, within
 * `sync.notificationSettleMs`) instead of dropping the push. Each case here makes the race
 * certain: the notification is delivered, the worker is seen waiting, and only then does the
 * source get the tag.
 */
describe('sync notifications that arrive before the source has moved the tag', () => {
  let vendor: TestServer;
  let customer: TestServer;
  let impatient: TestServer;
  let api: Api;
  let impatientApi: Api;
  let first: BuiltImage;
  let second: BuiltImage;
  let secret = '';
  let impatientSecret = '';
  const repository = 'tripinsights/api';

  before(async () => {
    [vendor, customer, impatient, first, second] = await Promise.all([
      startBerth(),
      startBerth(),
      startBerth({ sync: { notificationSettleMs: 1500 } }),
      buildMultiArchImage('ordering-first'),
      buildMultiArchImage('ordering-second'),
    ]);
    [api, impatientApi] = await Promise.all([Api.asOwner(customer.url), Api.asOwner(impatient.url)]);
    const rule = (target: Api) =>
      target.post('/sync/rules', {
        name: 'vendor',
        source: { url: vendor.url, credentials: { kind: 'basic', username: 'owner', password: 'owner-password-1' } },
        repositories: ['tripinsights/*'],
        destinationPrefix: 'vendor',
        triggers: { webhook: {} },
      });
    const [created, impatientCreated] = await Promise.all([rule(api), rule(impatientApi)]);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(impatientCreated.status, 201, JSON.stringify(impatientCreated.body));
    secret = created.body.webhook.secret;
    impatientSecret = impatientCreated.body.webhook.secret;
  });

  after(async () => {
    await Promise.all([vendor?.stop(), customer?.stop(), impatient?.stop()]);
    await Promise.all([first?.dispose(), second?.dispose()]);
  });

  /** The queued item for `tag` once the worker has looked at the source and decided to wait. */
  const waiting = (target: Api, tag: string) =>
    waitFor(`the worker to wait for ${tag}`, async () => {
      const status = await target.get('/sync/rules/vendor/status');
      const item = status.body.queue.items.find((i: any) => i.tag === tag);
      return item?.lastError?.startsWith('waiting for the source') ? item : undefined;
    });

  const pushToVendor = async (tag: string, image: BuiltImage) =>
    pushImage(vendor.url, await pushToken(vendor.url, repository), repository, tag, image.dir, image.index.index);

  it('a push announced before its tag exists is copied once the tag appears', async () => {
    const digest = first.index.index.digest;
    assert.equal((await deliver(customer.url, 'vendor', pushEvent(repository, 'early', digest), { secret })).status, 202);
    const item = await waiting(api, 'early');
    assert.match(item.lastError, /as tripinsights\/api:early \(no such tag\)/);
    assert.equal(item.attempts, 0, 'waiting is not a failed attempt');

    await pushToVendor('early', first);
    const token = await pullToken(customer.url, `vendor/${repository}`);
    assert.equal(await waitFor('the image on the customer', () => headDigest(customer.url, token, `vendor/${repository}`, 'early')), digest);
    // The status is written just after the copy: wait for it rather than race it.
    const row = await waitFor('the image status', async () => {
      const found = (await imageStatus(api, 'vendor')).get(`${repository}:early`);
      return found?.copies === 1 ? found : undefined;
    });
    assert.deepEqual([row.digest, row.lastError], [digest, null]);
  });

  it('a moved tag announced before the source moves it ends at the new digest, not the old one', async () => {
    const [old, moved] = [first.index.index.digest, second.index.index.digest];
    await pushToVendor('moving', first);
    assert.equal((await deliver(customer.url, 'vendor', pushEvent(repository, 'moving', old), { secret })).status, 202);
    const token = await pullToken(customer.url, `vendor/${repository}`);
    await waitFor('the first image on the customer', async () =>
      (await headDigest(customer.url, token, `vendor/${repository}`, 'moving')) === old ? true : undefined,
    );

    assert.equal((await deliver(customer.url, 'vendor', pushEvent(repository, 'moving', moved), { secret })).status, 202);
    const item = await waiting(api, 'moving');
    assert.match(item.lastError, new RegExp(`\\(still ${old}\\)`));
    await pushToVendor('moving', second);
    await waitFor('the moved tag on the customer', async () =>
      (await headDigest(customer.url, token, `vendor/${repository}`, 'moving')) === moved ? true : undefined,
    );
    for (const manifest of second.digests) assert.equal(await headDigest(customer.url, token, `vendor/${repository}`, manifest), manifest);
  });

  it("past the settle window the source's answer stands: a tag that never appears is recorded as missing", async () => {
    const announced = pushEvent(repository, 'never', second.index.index.digest);
    assert.equal((await deliver(impatient.url, 'vendor', announced, { secret: impatientSecret })).status, 202);
    await waiting(impatientApi, 'never');
    const row = await waitFor('the image status to record the missing tag', async () => {
      const status = await impatientApi.get('/sync/rules/vendor/status');
      const image = status.body.images.find((i: any) => i.tag === 'never');
      return status.body.queue.pending === 0 && image?.lastError ? image : undefined;
    });
    assert.match(row.lastError, /tripinsights\/api:never does not exist on the source/);
    assert.equal(row.digest, null);
  });
});
