import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { verifyDelivery } from '../../src/shared/webhook-signature.js';
import type { TestServer } from '../support/server.js';
import { startTestServer } from '../support/server.js';
import { Api } from '../admin/helpers.js';
import { loopbackEgress, pushImage, quickWebhooks, Receiver, startWebhookServer, waitFor } from './helpers.js';

interface Delivery {
  id: string;
  eventId: string;
  status: string;
  attempts: number;
  cycle: number;
  repository: string;
  lastAttempt: { ok: boolean; statusCode: number | null; error: string | null; responseSnippet: string | null } | null;
}

async function deliveries(owner: Api, webhook: string): Promise<Delivery[]> {
  const res = await owner.get(`/webhooks/${webhook}/deliveries?limit=500`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.deliveries as Delivery[];
}

async function subscribe(owner: Api, name: string, url: string, body: Record<string, unknown> = {}): Promise<string> {
  const res = await owner.post('/webhooks', { name, url, ...body });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.secret as string;
}

describe('webhook retries, failures and redelivery', () => {
  describe('with the receiver down for a while', () => {
    let server: TestServer;
    let owner: Api;
    let receiver: Receiver;
    before(async () => {
      server = await startWebhookServer();
      owner = await Api.asOwner(server.url);
      receiver = await Receiver.start();
    });
    after(async () => {
      await server.stop();
      await receiver.close();
    });

    it('retries each delivery until the receiver is back, then every event arrives once delivered', async () => {
      const secret = await subscribe(owner, 'flaky', `${receiver.url}/hook`);
      await receiver.close();
      const pushed = [await pushImage(server.url, 'down/a', 'v1'), await pushImage(server.url, 'down/b', 'v1'), await pushImage(server.url, 'down/c', 'v1')];
      // Every delivery has failed at least twice against the closed port.
      const failing = await waitFor('repeated failed attempts', async () => {
        const list = await deliveries(owner, 'flaky');
        return list.length === 3 && list.every((d) => d.status === 'pending' && d.attempts >= 2) ? list : undefined;
      });
      for (const d of failing) {
        assert.equal(d.lastAttempt?.ok, false);
        assert.equal(d.lastAttempt?.statusCode, null);
        assert.match(d.lastAttempt?.error ?? '', /ECONNREFUSED/);
      }

      await receiver.listen();
      const delivered = await waitFor('all delivered', async () => {
        const list = await deliveries(owner, 'flaky');
        return list.every((d) => d.status === 'delivered') ? list : undefined;
      });
      const digests = receiver.received.map((r) => r.json.target.digest).sort();
      assert.deepEqual(digests, pushed.map((p) => p.digest).sort());
      for (const r of receiver.received) assert.equal(verifyDelivery([secret], String(r.headers['berth-signature']), r.body, Date.now()).ok, true);
      // The history keeps every attempt: the failures, then the success, for the same event.
      for (const d of delivered) {
        const detail = (await owner.get(`/webhooks/flaky/deliveries/${d.id}`)).body;
        const history = detail.attemptHistory as Array<{ ok: boolean; attempt: number; error: string | null }>;
        assert.ok(history.length >= 3, JSON.stringify(history));
        assert.deepEqual(
          history.map((a) => a.attempt),
          history.map((_, i) => i + 1),
        );
        assert.ok(history.slice(0, -1).every((a) => !a.ok && /ECONNREFUSED/.test(a.error ?? '')));
        assert.equal(history.at(-1)?.ok, true);
        assert.equal(detail.payload.id, d.eventId);
        assert.ok(receiver.eventIds().includes(d.eventId));
      }
    });
  });

  describe('after the last attempt', () => {
    let server: TestServer;
    let owner: Api;
    let receiver: Receiver;
    before(async () => {
      server = await startWebhookServer({ webhooks: { maxAttempts: 3 } });
      owner = await Api.asOwner(server.url);
      receiver = await Receiver.start();
    });
    after(async () => {
      await server.stop();
      await receiver.close();
    });

    it('marks the delivery failed, keeping status and a 1 KiB response snippet of each attempt', async () => {
      receiver.mode = { kind: 'status', status: 503, body: `unavailable ${'x'.repeat(5000)}` };
      await subscribe(owner, 'broken', `${receiver.url}/hook`);
      await pushImage(server.url, 'fails/app', 'v1');
      const [failed] = await waitFor('the failed delivery', async () => {
        const list = await deliveries(owner, 'broken');
        return list[0]?.status === 'failed' ? list : undefined;
      });
      assert.ok(failed);
      assert.equal(failed.attempts, 3);
      assert.equal(receiver.received.length, 3);
      const detail = (await owner.get(`/webhooks/broken/deliveries/${failed.id}`)).body;
      assert.equal(detail.attemptHistory.length, 3);
      for (const attempt of detail.attemptHistory) {
        assert.equal(attempt.statusCode, 503);
        assert.equal(attempt.ok, false);
        assert.equal(attempt.responseSnippet.length, 1024);
        assert.ok(attempt.responseSnippet.startsWith('unavailable xxx'));
      }
      assert.deepEqual(
        (await deliveries(owner, 'broken')).map((d) => d.status),
        ['failed'],
      );
    });

    it('redelivers a failed event by hand: a new cycle, the same event id', async () => {
      const [failed] = await deliveries(owner, 'broken');
      assert.ok(failed);
      receiver.mode = { kind: 'ok' };
      const before = receiver.received.length;
      const res = await owner.post(`/webhooks/broken/deliveries/${failed.id}/redeliver`);
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(res.body.delivery.status, 'pending');
      assert.equal(res.body.delivery.cycle, 1);
      assert.equal(res.body.delivery.attempts, 0);
      const done = await waitFor('the redelivery', async () => {
        const [d] = await deliveries(owner, 'broken');
        return d?.status === 'delivered' ? d : undefined;
      });
      assert.equal(done.cycle, 1);
      assert.equal(done.attempts, 1);
      const again = receiver.received.slice(before);
      assert.equal(again.length, 1);
      assert.equal(again[0]?.headers['berth-event-id'], failed.eventId);
      assert.equal(again[0]?.json.id, failed.eventId);
      const history = (await owner.get(`/webhooks/broken/deliveries/${failed.id}`)).body.attemptHistory as Array<{ cycle: number; ok: boolean }>;
      assert.deepEqual(
        history.map((a) => [a.cycle, a.ok]),
        [
          [0, false],
          [0, false],
          [0, false],
          [1, true],
        ],
      );
    });
  });

  describe('timeouts', () => {
    let server: TestServer;
    let owner: Api;
    let receiver: Receiver;
    before(async () => {
      server = await startWebhookServer({ webhooks: { timeoutMs: 300, maxAttempts: 1 } });
      owner = await Api.asOwner(server.url);
      receiver = await Receiver.start();
    });
    after(async () => {
      await server.stop();
      await receiver.close();
    });

    it('an attempt the receiver does not answer in time is recorded as timed out', async () => {
      receiver.mode = { kind: 'hang' };
      await subscribe(owner, 'slow', `${receiver.url}/hook`);
      await pushImage(server.url, 'timeout/app', 'v1');
      const [d] = await waitFor('the timed-out delivery', async () => {
        const list = await deliveries(owner, 'slow');
        return list[0]?.status === 'failed' ? list : undefined;
      });
      assert.match(d?.lastAttempt?.error ?? '', /timed out after 300 ms/);
      receiver.releaseHanging();
    });
  });

  describe('redirects', () => {
    let first: Receiver;
    let second: Receiver;
    before(async () => {
      first = await Receiver.start();
      second = await Receiver.start();
    });
    after(async () => {
      await first.close();
      await second.close();
    });

    it('are followed within the egress policy; custom headers stay with the original origin', async () => {
      const server = await startWebhookServer();
      try {
        const owner = await Api.asOwner(server.url);
        first.mode = { kind: 'redirect', location: `${second.url}/moved`, status: 308 };
        const secret = await subscribe(owner, 'moved', `${first.url}/hook`, { headers: { 'X-Api-Key': 'only-for-first' } });
        await pushImage(server.url, 'redirect/app', 'v1');
        const got = await waitFor('the redirected delivery', () => second.received[0]);
        assert.equal(got.method, 'POST');
        assert.equal(got.path, '/moved');
        assert.equal(got.headers['x-api-key'], undefined);
        assert.equal(first.received[0]?.headers['x-api-key'], 'only-for-first');
        assert.equal(verifyDelivery([secret], String(got.headers['berth-signature']), got.body, Date.now()).ok, true);
        await waitFor('delivered', async () => (await deliveries(owner, 'moved'))[0]?.status === 'delivered');
      } finally {
        await server.stop();
      }
    });

    it('into a range the egress policy refuses are not followed, and the attempt says why', async () => {
      // Only the first receiver's host:port is allowed; the redirect points at another loopback port.
      const server = await startWebhookServer({ egress: { allow: [`127.0.0.1:${first.port}`] }, webhooks: { maxAttempts: 1 } });
      try {
        const owner = await Api.asOwner(server.url);
        first.mode = { kind: 'redirect', location: `${second.url}/internal` };
        const before = second.received.length;
        await subscribe(owner, 'probe', `${first.url}/hook`);
        await pushImage(server.url, 'redirect/probe', 'v1');
        const [d] = await waitFor('the refused delivery', async () => {
          const list = await deliveries(owner, 'probe');
          return list[0]?.status === 'failed' ? list : undefined;
        });
        assert.match(d?.lastAttempt?.error ?? '', /^refused by egress policy: .*127\.0\.0\.1.*loopback/);
        assert.equal(second.received.length, before);
      } finally {
        await server.stop();
      }
    });
  });

  describe('two replicas sharing one database', () => {
    let a: TestServer;
    let b: TestServer;
    let receiver: Receiver;
    before(async () => {
      a = await startWebhookServer();
      b = await startTestServer({ auth: true, dataDir: a.dataDir, config: { egress: loopbackEgress, webhooks: quickWebhooks } });
      receiver = await Receiver.start();
    });
    after(async () => {
      await b.stop();
      await a.stop();
      await receiver.close();
    });

    it('deliver every event, each once, whichever replica took the push', async () => {
      await subscribe(await Api.asOwner(a.url), 'shared', `${receiver.url}/hook`);
      const pushed: string[] = [];
      for (let i = 0; i < 10; i++) pushed.push((await pushImage((i % 2 === 0 ? a : b).url, `replicas/app${i}`, 'v1')).digest);
      const owner = await Api.asOwner(b.url);
      await waitFor('all delivered', async () => {
        const list = await deliveries(owner, 'shared');
        return list.length === 10 && list.every((d) => d.status === 'delivered');
      });
      assert.deepEqual(receiver.received.map((r) => r.json.target.digest).sort(), [...pushed].sort());
      assert.equal(new Set(receiver.eventIds()).size, 10);
    });
  });

  describe('retention', () => {
    let server: TestServer;
    let owner: Api;
    let up: Receiver;
    let down: Receiver;
    before(async () => {
      server = await startWebhookServer({ webhooks: { retentionMs: 500, maxAttempts: 100, backoff: { baseMs: 100, maxMs: 400 } } });
      owner = await Api.asOwner(server.url);
      up = await Receiver.start();
      down = await Receiver.start();
      await down.close();
    });
    after(async () => {
      await server.stop();
      await up.close();
    });

    it('prunes events older than retentionMs whose deliveries are finished, never pending ones', async () => {
      await subscribe(owner, 'kept', `${down.url}/hook`, { filters: ['retention/kept'] });
      await subscribe(owner, 'pruned', `${up.url}/hook`, { filters: ['retention/pruned'] });
      await pushImage(server.url, 'retention/kept', 'v1');
      await pushImage(server.url, 'retention/pruned', 'v1');
      await waitFor('the delivery to the live receiver', () => up.received[0]);
      await waitFor('its history pruned', async () => (await deliveries(owner, 'pruned')).length === 0);
      const pending = await deliveries(owner, 'kept');
      assert.equal(pending.length, 1);
      assert.equal(pending[0]?.status, 'pending');
      assert.ok((pending[0]?.attempts ?? 0) >= 1);
    });
  });
});
