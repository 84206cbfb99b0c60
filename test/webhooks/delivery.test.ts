import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { verifyDelivery } from '../../src/shared/webhook-signature.js';
import type { TestServer } from '../support/server.js';
import { Api } from '../admin/helpers.js';
import { deleteManifest, pushImage, Receiver, startWebhookServer, waitFor, type Received } from './helpers.js';

/** Deliveries end to end: a real Berth, real pushes over /v2, a real HTTP receiver. */
describe('webhook deliveries', () => {
  let server: TestServer;
  let owner: Api;
  let receiver: Receiver;
  let secret = '';
  let webhookId = '';

  /** Creates a subscription to the receiver; returns its id and secret. */
  async function subscribe(name: string, body: Record<string, unknown> = {}): Promise<{ id: string; secret: string }> {
    const res = await owner.post('/webhooks', { name, url: `${receiver.url}/hook/${name}`, ...body });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return { id: res.body.webhook.id as string, secret: res.body.secret as string };
  }

  const forHook = (name: string) => receiver.received.filter((r) => r.path === `/hook/${name}`);

  before(async () => {
    server = await startWebhookServer();
    owner = await Api.asOwner(server.url);
    receiver = await Receiver.start();
    ({ id: webhookId, secret } = await subscribe('all'));
  });
  after(async () => {
    await server.stop();
    await receiver.close();
  });
  beforeEach(() => {
    receiver.mode = { kind: 'ok' };
  });

  describe('a push by tag', () => {
    let pushed: Awaited<ReturnType<typeof pushImage>>;
    let delivery: Received;

    before(async () => {
      pushed = await pushImage(server.url, 'tripinsights/web', 'v1', { 'User-Agent': 'test-client/1.0', 'X-Request-Id': 'req-123' });
      delivery = await waitFor('the push delivery', () => forHook('all').find((r) => r.json?.target?.digest === pushed.digest && r.json.action === 'push'));
    });

    it('is POSTed as the ACR payload: id, timestamp, action, target, request', () => {
      assert.equal(delivery.method, 'POST');
      assert.equal(delivery.headers['content-type'], 'application/json');
      const body = delivery.json;
      assert.match(body.id, /^[0-9a-f-]{36}$/);
      assert.ok(!Number.isNaN(Date.parse(body.timestamp)));
      assert.equal(body.action, 'push');
      assert.deepEqual(body.target, {
        mediaType: pushed.mediaType,
        size: pushed.size,
        digest: pushed.digest,
        length: pushed.size,
        repository: 'tripinsights/web',
        tag: 'v1',
      });
      assert.deepEqual(body.request, { id: 'req-123', host: new URL(server.url).host, method: 'PUT', useragent: 'test-client/1.0' });
    });

    it('names the pusher in the berth extension', () => {
      assert.equal(delivery.json.berth.actor.principalName, 'owner');
      assert.match(delivery.json.berth.actor.principalId, /^[0-9a-f-]{36}$/);
      assert.equal(delivery.json.berth.actor.provenance, null);
    });

    it('carries the event id and type in headers, and a signature the receiver verifies with the secret', () => {
      assert.equal(delivery.headers['berth-event-id'], delivery.json.id);
      assert.equal(delivery.headers['berth-event'], 'push');
      assert.match(String(delivery.headers['berth-delivery']), /^[0-9a-f-]{36}$/);
      assert.match(String(delivery.headers['user-agent']), /^Berth-Webhooks\//);
      const header = String(delivery.headers['berth-signature']);
      assert.deepEqual(verifyDelivery([secret], header, delivery.body, Date.now()), { ok: true, timestamp: Number(/t=(\d+)/.exec(header)?.[1]) });
    });

    it('fails verification with another secret, a changed body, or outside the replay window', () => {
      const header = String(delivery.headers['berth-signature']);
      assert.equal(verifyDelivery(['not-the-secret-at-all'], header, delivery.body, Date.now()).ok, false);
      assert.equal(verifyDelivery([secret], header, delivery.body.replace('tripinsights', 'tripinsightz'), Date.now()).ok, false);
      const check = verifyDelivery([secret], header, delivery.body, Date.now() + 301_000);
      assert.equal(check.ok, false);
      assert.match(check.ok ? '' : check.reason, /timestamp/);
    });

    it('is listed in the subscription history with its attempt', async () => {
      // The receiver has the POST before the dispatcher records the outcome (a network round trip
      // later on PostgreSQL): wait for the record rather than assume it is already there.
      const entry = await waitFor('the delivery to be recorded', async () => {
        const list = await owner.get(`/webhooks/all/deliveries`);
        assert.equal(list.status, 200);
        const found = list.body.deliveries.find((d: { eventId: string }) => d.eventId === delivery.json.id);
        assert.ok(found, JSON.stringify(list.body));
        return found.status === 'pending' ? undefined : found;
      });
      assert.equal(entry.status, 'delivered');
      assert.equal(entry.action, 'push');
      assert.equal(entry.repository, 'tripinsights/web');
      assert.deepEqual(entry.tags, ['v1']);
      assert.equal(entry.lastAttempt.statusCode, 200);
      assert.equal(entry.lastAttempt.ok, true);
      assert.equal(entry.lastAttempt.responseSnippet, 'ok');
      assert.equal(typeof entry.lastAttempt.latencyMs, 'number');
      const detail = await owner.get(`/webhooks/${webhookId}/deliveries/${entry.id}`);
      assert.equal(detail.status, 200);
      assert.equal(detail.body.attemptHistory.length, 1);
      assert.deepEqual(detail.body.payload, delivery.json);
    });
  });

  it('a push by digest has no tag; deleting a tag and then the manifest send delete events', async () => {
    const pushed = await pushImage(server.url, 'team/app', 'stable');
    const byDigest = await pushImage(server.url, 'team/app');
    const untagged = await waitFor('the untagged push', () => forHook('all').find((r) => r.json?.target?.digest === byDigest.digest));
    assert.equal(untagged.json.target.tag, undefined);
    assert.equal(untagged.json.target.repository, 'team/app');

    await deleteManifest(server.url, 'team/app', 'stable');
    const tagDelete = await waitFor('the tag delete', () => forHook('all').find((r) => r.json?.action === 'delete' && r.json.target.tag === 'stable'));
    assert.deepEqual(tagDelete.json.target, {
      mediaType: pushed.mediaType,
      size: pushed.size,
      digest: pushed.digest,
      length: pushed.size,
      repository: 'team/app',
      tag: 'stable',
    });
    assert.equal(tagDelete.headers['berth-event'], 'delete');
    assert.equal(tagDelete.json.request.method, 'DELETE');

    await pushImage(server.url, 'team/app', 'again');
    const retagged = await waitFor('the second tag', () => forHook('all').find((r) => r.json?.target?.tag === 'again'));
    await deleteManifest(server.url, 'team/app', retagged.json.target.digest);
    const digestDelete = await waitFor('the digest delete', () =>
      forHook('all').find((r) => r.json?.action === 'delete' && r.json.target.digest === retagged.json.target.digest && r.json.target.tag === undefined),
    );
    assert.deepEqual(digestDelete.json.berth.removedTags, ['again']);
    assert.equal(digestDelete.json.target.mediaType, retagged.json.target.mediaType);
  });

  it('the push answers while the receiver has not answered yet (the push path never waits for a webhook)', async () => {
    receiver.mode = { kind: 'hang' };
    const before = receiver.received.length;
    await pushImage(server.url, 'slow/app', 'v1');
    // The push is complete; the delivery may be in flight, held by the receiver, or not yet sent.
    const delivered = await waitFor('the held delivery', () => receiver.received.slice(before).find((r) => r.json?.target?.repository === 'slow/app'));
    receiver.mode = { kind: 'ok' };
    receiver.releaseHanging();
    assert.equal(delivered.json.target.tag, 'v1');
  });

  describe('filters', () => {
    before(async () => {
      await subscribe('trip', { filters: ['tripinsights/*'] });
      await subscribe('v-tags', { filters: ['*:v*'] });
      await subscribe('deep-v', { filters: ['**:v*'] });
      await subscribe('deletes', { events: ['delete'], filters: ['filters/**'] });
    });

    it('deliver only matching repositories and tags, per subscription', async () => {
      await pushImage(server.url, 'tripinsights/api', 'latest');
      await pushImage(server.url, 'tripinsights/api/cache', 'v2');
      await pushImage(server.url, 'top', 'v3');
      await pushImage(server.url, 'top', 'latest');
      await pushImage(server.url, 'filters/x', 'v4');
      await deleteManifest(server.url, 'filters/x', 'v4');
      // The unfiltered subscription saw all six changes, so everything the others would get has been sent.
      await waitFor('all six on the unfiltered hook', () =>
        forHook('all').some((r) => r.json?.action === 'delete' && r.json.target.repository === 'filters/x'),
      );
      // Each subscription's deliveries are separate jobs: wait for every filtered one, not one of them.
      await waitFor('the filtered deliveries to settle', async () => {
        for (const hook of ['trip', 'v-tags', 'deep-v', 'deletes']) {
          const { deliveries } = (await owner.get(`/webhooks/${hook}/deliveries`)).body as { deliveries: Array<{ status: string }> };
          if (!deliveries.every((d) => d.status !== 'pending')) return false;
        }
        return true;
      });
      const expected: Record<string, number> = { trip: 1, 'v-tags': 1, 'deep-v': 4, deletes: 1 };
      await waitFor('each filtered hook to have received its share', () => Object.entries(expected).every(([hook, n]) => forHook(hook).length >= n));
      const seen = (name: string) =>
        forHook(name)
          .map((r) => `${r.json.action} ${r.json.target.repository}:${r.json.target.tag}`)
          .sort();
      assert.deepEqual(seen('trip'), ['push tripinsights/api:latest']);
      assert.deepEqual(seen('v-tags'), ['push top:v3']);
      assert.deepEqual(seen('deep-v'), ['delete filters/x:v4', 'push filters/x:v4', 'push top:v3', 'push tripinsights/api/cache:v2']);
      assert.deepEqual(seen('deletes'), ['delete filters/x:v4']);
    });
  });

  it('a disabled subscription gets nothing; a new subscription gets no backlog', async () => {
    const { id } = await subscribe('paused', { enabled: false });
    await pushImage(server.url, 'paused/app', 'v1');
    await waitFor('the unfiltered delivery', () => forHook('all').find((r) => r.json?.target?.repository === 'paused/app'));
    await subscribe('late');
    await pushImage(server.url, 'paused/app', 'v2');
    await waitFor('the late subscription', () => forHook('late').find((r) => r.json?.target?.tag === 'v2'));
    assert.deepEqual(forHook('paused'), []);
    assert.deepEqual(
      forHook('late').map((r) => r.json.target.tag),
      ['v2'],
    );
    assert.deepEqual((await owner.get(`/webhooks/${id}/deliveries`)).body.deliveries, []);
  });

  it('custom headers are sent; the CloudEvents format wraps the ACR payload', async () => {
    await subscribe('ce', { format: 'cloudevents', filters: ['ce/app'], headers: { Authorization: 'Bearer receiver-token', 'X-Team': 'platform' } });
    const pushed = await pushImage(server.url, 'ce/app', 'v9');
    const got = await waitFor('the cloud event', () => forHook('ce')[0]);
    assert.equal(got.headers['content-type'], 'application/cloudevents+json; charset=utf-8');
    assert.equal(got.headers['authorization'], 'Bearer receiver-token');
    assert.equal(got.headers['x-team'], 'platform');
    const event = got.json;
    assert.equal(event.specversion, '1.0');
    assert.equal(event.type, 'dev.berth.image.pushed');
    assert.equal(event.source, '/v2/ce/app');
    assert.equal(event.subject, 'ce/app:v9');
    assert.equal(event.id, got.headers['berth-event-id']);
    assert.equal(event.datacontenttype, 'application/json');
    assert.equal(event.data.id, event.id);
    assert.equal(event.data.target.digest, pushed.digest);
    assert.equal(event.time, event.data.timestamp);
  });

  it('a ping goes through the same machinery and shows in the history, even while disabled', async () => {
    const { id } = await subscribe('pinged', { enabled: false, filters: ['nothing/here'] });
    const res = await owner.post(`/webhooks/pinged/ping`);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.delivery.action, 'ping');
    const got = await waitFor('the ping', () => forHook('pinged')[0]);
    assert.equal(got.json.action, 'ping');
    assert.equal(got.json.id, res.body.delivery.eventId);
    assert.equal(got.json.berth.webhook, 'pinged');
    assert.equal(got.json.target, undefined);
    assert.equal(got.headers['berth-event'], 'ping');
    const list = await waitFor('the ping recorded', async () => {
      const body = (await owner.get(`/webhooks/${id}/deliveries`)).body;
      return body.deliveries[0]?.status === 'delivered' ? body : undefined;
    });
    assert.equal(list.deliveries.length, 1);
  });
});
