import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signDelivery } from '../../src/shared/webhook-signature.js';
import { assertError } from '../admin/helpers.js';
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
 * POST /api/v1/sync/rules/{rule}/webhook against a real customer Berth whose rule pulls from a
 * real vendor Berth: what is accepted, what is refused and how, and that accepted work is
 * queued, deduplicated and copied once.
 */
describe('the sync webhook receiver', () => {
  let vendor: TestServer;
  let customer: TestServer;
  let api: Api;
  let image: BuiltImage;
  let secret = '';
  let vendorUser = '';
  let vendorPassword = '';

  before(async () => {
    [vendor, customer] = await Promise.all([startBerth(), startBerth()]);
    api = await Api.asOwner(customer.url);
    image = await buildMultiArchImage('receiver');
    await pushImage(vendor.url, await pushToken(vendor.url, 'tripinsights/api'), 'tripinsights/api', 'v1', image.dir, image.index.index);
    // The customer reads the vendor with a pull-only token principal of the vendor's.
    const vendorApi = await Api.asOwner(vendor.url);
    const created = await vendorApi.post('/principals', { kind: 'token', name: 'customer-a', grants: [{ pattern: 'tripinsights/**', permission: 'pull' }] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    vendorUser = 'customer-a';
    vendorPassword = created.body.secret.value;
    const rule = await api.post('/sync/rules', {
      name: 'vendor',
      source: { url: vendor.url, credentials: { kind: 'basic', username: vendorUser, password: vendorPassword } },
      repositories: ['tripinsights/*'],
      destinationPrefix: 'vendor',
      triggers: { webhook: {} },
    });
    assert.equal(rule.status, 201, JSON.stringify(rule.body));
    secret = rule.body.webhook.secret;
    assert.ok(secret.length >= 32);
  });

  after(async () => {
    await Promise.all([vendor?.stop(), customer?.stop()]);
    await image?.dispose();
  });

  const indexDigest = () => image.index.index.digest;

  it('refuses an unsigned delivery with 401 and queues nothing', async () => {
    const res = await deliver(customer.url, 'vendor', pushEvent('tripinsights/api', 'v1', indexDigest()), { headers: {} });
    assertError(res, 401, 'UNAUTHORIZED', /missing Berth-Signature/);
    const status = await api.get('/sync/rules/vendor/status');
    assert.equal(status.body.queue.pending, 0);
  });

  it('refuses a wrongly signed, a tampered and a stale delivery with 401', async () => {
    const event = pushEvent('tripinsights/api', 'v1', indexDigest());
    assertError(await deliver(customer.url, 'vendor', event, { secret: 'not-the-secret-at-all-000000' }), 401, 'UNAUTHORIZED', /does not match/);
    const text = JSON.stringify(event);
    const signature = signDelivery([secret], text, Date.now());
    const tampered = text.replace('tripinsights/api', 'tripinsights/app');
    assertError(await deliver(customer.url, 'vendor', tampered, { headers: { 'Berth-Signature': signature } }), 401, 'UNAUTHORIZED', /does not match/);
    assertError(await deliver(customer.url, 'vendor', event, { secret, at: Date.now() - 3600_000 }), 401, 'UNAUTHORIZED', /timestamp/);
    assertError(
      await deliver(customer.url, 'vendor', event, { headers: { Authorization: 'Bearer wrong-secret' } }),
      401,
      'UNAUTHORIZED',
      /bearer secret does not match/,
    );
  });

  it('answers an unknown rule exactly like a wrong secret (401), so rule names do not leak', async () => {
    const event = pushEvent('tripinsights/api', 'v1', indexDigest());
    const unknown = await deliver(customer.url, 'no-such-rule', event, { secret });
    const wrong = await deliver(customer.url, 'vendor', event, { secret: 'not-the-secret-at-all-000000' });
    assertError(unknown, 401, 'UNAUTHORIZED');
    assert.deepEqual(unknown.body, wrong.body);
    assert.deepEqual(
      (await deliver(customer.url, 'no-such-rule', event, { headers: {} })).body,
      (await deliver(customer.url, 'vendor', event, { headers: {} })).body,
    );
  });

  it('refuses malformed bodies with 400 once the signature checks out', async () => {
    const cases: Array<[string, RegExp]> = [
      ['{not json', /not valid JSON/],
      ['[]', /JSON object/],
      ['{"action":"push"}', /target must be an object/],
      ['{"action":"push","target":{"repository":"../etc/passwd","tag":"v1"}}', /valid repository name/],
      [`{"action":"push","target":{"repository":"tripinsights/api","tag":"v1","digest":"md5:abc"}}`, /not a valid digest/],
      ['{"events":"nope"}', /events must be an array/],
    ];
    for (const [body, message] of cases) {
      assertError(await deliver(customer.url, 'vendor', body, { secret }), 400, 'UNSUPPORTED', message);
    }
  });

  it("refuses a repository outside the rule's allow-list with 403 and queues nothing", async () => {
    const res = await deliver(customer.url, 'vendor', pushEvent('internal/secret', 'v1', indexDigest()), { secret });
    assertError(res, 403, 'DENIED', /internal\/secret is not synced by this rule/);
    assert.equal((await api.get('/sync/rules/vendor/status')).body.queue.pending, 0);
  });

  it('refuses a body over the configured limit with 413', async () => {
    const big = JSON.stringify({ ...pushEvent('tripinsights/api', 'v1', indexDigest()), padding: 'x'.repeat(1024 * 1024) });
    const res = await deliver(customer.url, 'vendor', big, { secret });
    assert.equal(res.status, 413);
  });

  it('acknowledges a ping with 202 and queues nothing', async () => {
    const res = await deliver(customer.url, 'vendor', { id: 'ping-1', action: 'ping', timestamp: new Date().toISOString() }, { secret });
    assert.equal(res.status, 202);
    assert.equal(res.body.events[0].outcome, 'ping');
    assert.equal(res.body.queued, 0);
  });

  it('answers 202 at once for a burst of deliveries of one digest, and copies the image once with its digests', async () => {
    const deliveries = Array.from({ length: 40 }, (_, i) =>
      deliver(customer.url, 'vendor', pushEvent('tripinsights/api', 'v1', indexDigest(), `burst-${i}`), { secret }),
    );
    const answers = await Promise.all(deliveries);
    for (const answer of answers) assert.equal(answer.status, 202, JSON.stringify(answer.body));
    const outcomes = answers.map((a) => a.body.events[0].outcome as string);
    assert.equal(
      outcomes.filter((o) => o === 'queued').length + outcomes.filter((o) => o === 'unchanged').length + outcomes.filter((o) => o === 'updated').length,
      40,
    );

    const token = await pullToken(customer.url, 'vendor/tripinsights/api');
    await waitFor('the image on the customer', () => headDigest(customer.url, token, 'vendor/tripinsights/api', 'v1'));
    assert.equal(await headDigest(customer.url, token, 'vendor/tripinsights/api', 'v1'), indexDigest());
    for (const digest of image.digests) assert.equal(await headDigest(customer.url, token, 'vendor/tripinsights/api', digest), digest);
    const status = await waitFor('the queue to drain', async () => {
      const s = await api.get('/sync/rules/vendor/status');
      return s.body.queue.pending === 0 ? s.body : undefined;
    });
    const row = status.images.find((i: any) => i.repository === 'tripinsights/api' && i.tag === 'v1');
    assert.equal(row.copies, 1, JSON.stringify(row));
    assert.equal(row.digest, indexDigest());
    assert.equal(row.destination, 'vendor/tripinsights/api');
    assert.equal(row.lastError, null);
    const history = await fetch(`${customer.url}/api/v1/repositories/vendor/tripinsights/api/history?tag=v1`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    const pushes = ((await history.json()) as { pushes: Array<{ principal: { name: string }; provenance: { sync?: { rule: string; repository: string } } }> })
      .pushes;
    assert.equal(pushes.length, 1, JSON.stringify(pushes));
    assert.equal(pushes[0]?.principal.name, 'sync:vendor');
    assert.deepEqual([pushes[0]?.provenance.sync?.rule, pushes[0]?.provenance.sync?.repository], ['vendor', 'tripinsights/api']);
  });

  it('treats a replayed delivery (same event id) as a duplicate and copies nothing again', async () => {
    const event = pushEvent('tripinsights/api', 'v1', indexDigest(), 'replay-me');
    const first = await deliver(customer.url, 'vendor', event, { secret });
    assert.equal(first.status, 202);
    const again = await deliver(customer.url, 'vendor', event, { secret });
    assert.equal(again.status, 202);
    assert.equal(again.body.duplicates, 1);
    assert.equal(again.body.events[0].outcome, 'duplicate');
    await waitFor('the queue to drain', async () => ((await api.get('/sync/rules/vendor/status')).body.queue.pending === 0 ? true : undefined));
    assert.equal((await imageStatus(api, 'vendor')).get('tripinsights/api:v1').copies, 1);
  });

  it('accepts an ACR-style delivery with the secret as a bearer token', async () => {
    const res = await deliver(customer.url, 'vendor', pushEvent('tripinsights/api', 'v1', indexDigest()), { headers: { Authorization: `Bearer ${secret}` } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
  });

  it('accepts a Distribution envelope: pushes queued, other repositories and unreadable events rejected, other actions and untagged events ignored, always 202', async () => {
    const res = await deliver(
      customer.url,
      'vendor',
      {
        events: [
          {
            id: 'd-1',
            action: 'push',
            target: { repository: 'tripinsights/api', tag: 'v1', digest: indexDigest(), mediaType: 'application/vnd.oci.image.index.v1+json' },
          },
          { id: 'd-2', action: 'push', target: { repository: 'internal/secret', tag: 'v1', digest: indexDigest() } },
          { id: 'd-3', action: 'pull', target: { repository: 'tripinsights/api', tag: 'v1', digest: indexDigest() } },
          { id: 'd-4', action: 'push', target: { repository: 'tripinsights/api', digest: image.digests[1] } },
          { id: 'd-5', action: 'delete', target: { repository: 'tripinsights/api', tag: 'v1', digest: indexDigest() } },
          { id: 'd-6', action: 'push', target: { repository: 'Not A Name', tag: 'v1' } },
        ],
      },
      { headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/vnd.docker.distribution.events.v1+json' } },
    );
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.deepEqual(
      res.body.events.map((e: any) => e.outcome),
      [res.body.events[0].outcome, 'rejected', 'ignored', 'ignored', 'ignored', 'rejected'],
    );
    assert.ok(['queued', 'updated', 'unchanged'].includes(res.body.events[0].outcome));
    assert.equal(res.body.rejected, 2);
    assert.match(res.body.events[4].reason, /never deletes/);
    assert.match(res.body.events[5].reason, /malformed event: events\.5\.target\.repository must be a valid repository name/);
  });

  it('ignores tags the rule filters out, and everything while the rule is disabled (202: the sender need not retry)', async () => {
    assert.equal((await api.patch('/sync/rules/vendor', { tags: { exclude: ['*-rc*'] } })).status, 200);
    const filtered = await deliver(customer.url, 'vendor', pushEvent('tripinsights/api', 'v2-rc1', indexDigest()), { secret });
    assert.equal(filtered.status, 202);
    assert.equal(filtered.body.events[0].outcome, 'ignored');
    assert.match(filtered.body.events[0].reason, /filtered out/);
    assert.equal((await api.patch('/sync/rules/vendor', { enabled: false })).status, 200);
    const disabled = await deliver(customer.url, 'vendor', pushEvent('tripinsights/api', 'v3', indexDigest()), { secret });
    assert.equal(disabled.status, 202);
    assert.match(disabled.body.events[0].reason, /disabled/);
    assert.equal((await api.patch('/sync/rules/vendor', { enabled: true, tags: { exclude: [] } })).status, 200);
  });

  it('stops accepting the old secret once it is rotated', async () => {
    const rotated = await api.patch('/sync/rules/vendor', { triggers: { webhook: { rotateSecret: true } } });
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    const fresh = rotated.body.webhook.secret as string;
    assert.notEqual(fresh, secret);
    assertError(await deliver(customer.url, 'vendor', pushEvent('tripinsights/api', 'v1', indexDigest()), { secret }), 401, 'UNAUTHORIZED');
    assert.equal((await deliver(customer.url, 'vendor', pushEvent('tripinsights/api', 'v1', indexDigest()), { secret: fresh })).status, 202);
    secret = fresh;
  });
});
