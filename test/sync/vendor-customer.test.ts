import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readBlob } from '../support/oci-layout.js';
import type { TestServer } from '../support/server.js';
import {
  Api,
  buildMultiArchImage,
  headDigest,
  imageStatus,
  pullToken,
  pushImage,
  pushToken,
  startBerth,
  waitFor,
  waitForRun,
  type BuiltImage,
} from './helpers.js';

/**
 * The acr-sync pattern (seed 002) between two Berth instances with no glue code: the vendor's
 * own webhook, filtered to `tripinsights/*`, drives the customer's sync rule, which imports
 * exactly the pushed images into the customer's registry with their digests unchanged.
 */
describe('vendor -> customer: a Berth webhook drives a Berth sync rule', () => {
  let vendor: TestServer;
  let customer: TestServer;
  let vendorApi: Api;
  let customerApi: Api;
  let app: BuiltImage;
  let secret: BuiltImage;

  before(async () => {
    [vendor, customer] = await Promise.all([startBerth(), startBerth()]);
    [vendorApi, customerApi] = await Promise.all([Api.asOwner(vendor.url), Api.asOwner(customer.url)]);
    [app, secret] = await Promise.all([buildMultiArchImage('tripinsights-api'), buildMultiArchImage('internal-secret')]);

    // Vendor: a pull-only credential for this customer (ACR's "repository-scoped token").
    const token = await vendorApi.post('/principals', {
      kind: 'token',
      name: 'customer-contoso',
      grants: [{ pattern: 'tripinsights/**', permission: 'pull' }],
    });
    assert.equal(token.status, 201, JSON.stringify(token.body));

    // Customer: a rule that accepts the vendor's notifications for tripinsights/* only.
    const rule = await customerApi.post('/sync/rules', {
      name: 'vendor',
      source: { url: vendor.url, credentials: { kind: 'basic', username: 'customer-contoso', password: token.body.secret.value } },
      repositories: ['tripinsights/*'],
      destinationPrefix: 'vendor',
      triggers: { webhook: {} },
    });
    assert.equal(rule.status, 201, JSON.stringify(rule.body));

    // Vendor: the webhook, filtered like the seed's, pointing at the customer's receiver.
    const webhook = await vendorApi.post('/webhooks', {
      name: 'contoso',
      url: rule.body.webhook.url,
      events: ['push'],
      filters: ['tripinsights/*'],
      secret: rule.body.webhook.secret,
    });
    assert.equal(webhook.status, 201, JSON.stringify(webhook.body));
  });

  after(async () => {
    await Promise.all([vendor?.stop(), customer?.stop()]);
    await Promise.all([app?.dispose(), secret?.dispose()]);
  });

  it('a multi-arch push to tripinsights/api arrives with identical digests; internal/secret does not', async () => {
    await pushImage(vendor.url, await pushToken(vendor.url, 'internal/secret'), 'internal/secret', 'v1', secret.dir, secret.index.index);
    await pushImage(vendor.url, await pushToken(vendor.url, 'tripinsights/api'), 'tripinsights/api', 'v1', app.dir, app.index.index);

    const token = await pullToken(customer.url, 'vendor/tripinsights/api');
    const arrived = await waitFor('tripinsights/api:v1 on the customer', () => headDigest(customer.url, token, 'vendor/tripinsights/api', 'v1'));
    assert.equal(arrived, app.index.index.digest);
    // The index, both platform manifests and every blob, under the same digests, byte for byte.
    for (const digest of app.digests) {
      const res = await fetch(`${customer.url}/v2/vendor/tripinsights/api/manifests/${digest}`, {
        headers: { Authorization: `Bearer ${token}`, Accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' },
      });
      assert.equal(res.status, 200);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), await readBlob(app.dir, digest));
    }
    for (const image of app.index.images) {
      for (const blob of [image.config, ...image.layers]) {
        const res = await fetch(`${customer.url}/v2/vendor/tripinsights/api/blobs/${blob.digest}`, {
          method: 'HEAD',
          headers: { Authorization: `Bearer ${token}` },
        });
        assert.equal(res.status, 200, blob.digest);
      }
    }

    // internal/secret was pushed first: had it been sent, it would have been handled first.
    const deliveries = (await vendorApi.get('/webhooks/contoso/deliveries?limit=500')).body.deliveries as Array<{
      repository: string;
      tags: string[];
      status: string;
      lastAttempt: { statusCode: number } | null;
    }>;
    assert.ok(deliveries.length > 0);
    assert.ok(
      deliveries.every((d) => d.repository === 'tripinsights/api'),
      JSON.stringify(deliveries.map((d) => d.repository)),
    );
    const secretToken = await pullToken(customer.url, 'vendor/internal/secret');
    assert.equal(await headDigest(customer.url, secretToken, 'vendor/internal/secret', 'v1'), undefined);
    // A reconcile (the safety net for lost notifications) takes nothing the rule does not select
    // either. The vendor's catalog lists this credential only the repositories it is granted.
    const run = await customerApi.post('/sync/rules/vendor/run', {});
    assert.equal(run.status, 202);
    const reconciled = await waitForRun(customerApi, 'vendor', run.body.requestedAt);
    assert.equal(reconciled.rule.state.lastReconcileError, null);
    assert.deepEqual(reconciled.rule.state.lastReconcileStats, { repositories: 1, tags: 1, queued: 0, errors: 0, catalog: 'listed' });
    assert.equal(await headDigest(customer.url, secretToken, 'vendor/internal/secret', 'v1'), undefined);

    const image = (await imageStatus(customerApi, 'vendor')).get('tripinsights/api:v1');
    assert.equal(image.digest, app.index.index.digest);
    assert.equal(image.copies, 1);
    assert.equal([...(await imageStatus(customerApi, 'vendor')).keys()].filter((k) => k.startsWith('internal/')).length, 0);
  });

  it('replaying the webhook does nothing twice', async () => {
    const deliveries = (await vendorApi.get('/webhooks/contoso/deliveries?limit=500')).body.deliveries as Array<{
      id: string;
      tags: string[];
      status: string;
      cycle: number;
    }>;
    const tagged = deliveries.find((d) => d.tags.includes('v1'));
    assert.ok(tagged, JSON.stringify(deliveries));
    await waitFor('the first delivery to be acknowledged', async () =>
      (await vendorApi.get(`/webhooks/contoso/deliveries/${tagged.id}`)).body.status === 'delivered' ? true : undefined,
    );

    const redelivered = await vendorApi.post(`/webhooks/contoso/deliveries/${tagged.id}/redeliver`, {});
    assert.equal(redelivered.status, 202, JSON.stringify(redelivered.body));
    const done = await waitFor('the redelivery', async () => {
      const d = (await vendorApi.get(`/webhooks/contoso/deliveries/${tagged.id}`)).body;
      return d.cycle > tagged.cycle && d.status === 'delivered' ? d : undefined;
    });
    // The customer acknowledged it (202) as a duplicate of an event it already has.
    assert.equal(done.lastAttempt.statusCode, 202);
    assert.match(String(done.lastAttempt.responseSnippet), /"duplicate"/);

    const status = (await customerApi.get('/sync/rules/vendor/status')).body;
    assert.equal(status.queue.pending, 0);
    assert.equal(status.images.find((i: any) => i.repository === 'tripinsights/api' && i.tag === 'v1').copies, 1);
    const token = await pullToken(customer.url, 'vendor/tripinsights/api');
    const history = await fetch(`${customer.url}/api/v1/repositories/vendor/tripinsights/api/history?tag=v1`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal(((await history.json()) as { pushes: unknown[] }).pushes.length, 1);
  });

  it('a tag pushed later arrives too', async () => {
    await pushImage(vendor.url, await pushToken(vendor.url, 'tripinsights/api'), 'tripinsights/api', 'v2', app.dir, app.index.index);
    const token = await pullToken(customer.url, 'vendor/tripinsights/api');
    assert.equal(await waitFor('v2 on the customer', () => headDigest(customer.url, token, 'vendor/tripinsights/api', 'v2')), app.index.index.digest);
  });
});
