import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { ServerProcess } from '../support/berth-process.js';
import { startReferenceRegistry } from '../support/reference-registry.js';
import type { TestServer } from '../support/server.js';
import { Api, buildMultiArchImage, headDigest, imageStatus, pullToken, pushImage, startBerth, waitFor, type BuiltImage } from './helpers.js';

/**
 * Another registry's webhook drives Berth's sync with no glue code: Debian's docker-registry (CNCF
 * Distribution), configured only with a `notifications` endpoint (the rule's receiver URL and an
 * `Authorization: Bearer <rule secret>` header), sends its own event envelopes; Berth verifies the
 * bearer secret, ignores what is not a tagged manifest push of a selected repository (blob events,
 * pulls, other repositories), and copies the image with its digests unchanged. There is no polling:
 * the rule has only the webhook trigger.
 */
describe('sync triggered by CNCF Distribution notifications', () => {
  let distribution: ServerProcess;
  let customer: TestServer;
  let api: Api;
  let image: BuiltImage;
  const secret = randomBytes(24).toString('hex');

  before(async () => {
    customer = await startBerth();
    api = await Api.asOwner(customer.url);
    distribution = await startReferenceRegistry({
      notifications: { url: `${customer.url}/api/v1/sync/rules/upstream/webhook`, headers: { Authorization: `Bearer ${secret}` } },
    });
    const created = await api.post('/sync/rules', {
      name: 'upstream',
      source: { url: distribution.url },
      repositories: ['team/*'],
      destinationPrefix: 'upstream',
      triggers: { webhook: { secret } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    image = await buildMultiArchImage('dist-notify');
  });

  after(async () => {
    await Promise.all([distribution?.stop(), customer?.stop()]);
    await image?.dispose();
  });

  it('a push to Distribution arrives in Berth with identical digests; a repository outside the rule does not', async () => {
    await pushImage(distribution.url, undefined, 'other/app', 'v1', image.dir, image.index.index);
    await pushImage(distribution.url, undefined, 'team/app', 'v1', image.dir, image.index.index);
    const token = await pullToken(customer.url, 'upstream/team/app');
    const digest = await waitFor('the image on the customer', async () => headDigest(customer.url, token, 'upstream/team/app', 'v1'));
    assert.equal(digest, image.index.index.digest);
    for (const manifest of image.digests) assert.equal(await headDigest(customer.url, token, 'upstream/team/app', manifest), manifest);
    const otherToken = await pullToken(customer.url, 'upstream/other/app');
    assert.equal(await headDigest(customer.url, otherToken, 'upstream/other/app', 'v1'), undefined);
    // The status is written just after the copy: wait for it rather than race it.
    const status = await waitFor('the image status', async () => {
      const rows = await imageStatus(api, 'upstream');
      return rows.get('team/app:v1')?.copies === 1 ? rows : undefined;
    });
    assert.equal(status.get('team/app:v1')?.digest, image.index.index.digest);
    assert.equal(status.has('other/app:v1'), false);
    // The one reconcile (the backfill at creation) found an empty source: the notification did the copy.
    const rule = (await api.get('/sync/rules/upstream')).body;
    assert.deepEqual([rule.state.lastReconcileStats.tags, rule.triggers.pollIntervalMs], [0, null]);
  });
});
