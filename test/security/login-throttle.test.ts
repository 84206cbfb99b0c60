// Failed-login throttling against a real server, with real parallel requests. Client addresses are
// simulated through X-Forwarded-For from a trusted proxy (the loopback peer is configured as one).
// - 40 parallel wrong passwords for one user from one address: at most maxFailures are verified
//   (401 and an audit entry each); the rest are refused at once (429 with Retry-After).
// - That attack does not lock the user out: the right password from another address works.
// - An attack on one name from many addresses slows the name (one attempt per interval) but never
//   locks it: a real user at a new address gets in after the Retry-After it is told, and at an
//   address it logged in from before, at once.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { urls } from '../../src/api/urls.js';
import { startTestServer, type TestServer } from '../support/server.js';

const slowedIntervalMs = 300;

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

async function login(server: TestServer, user: string, password: string, from?: string): Promise<Response> {
  const headers: Record<string, string> = { Authorization: basic(user, password) };
  if (from !== undefined) headers['X-Forwarded-For'] = from;
  const res = await fetch(`${server.url}${urls.token()}?service=berth`, { headers });
  await res.arrayBuffer();
  return res;
}

describe('failed-login throttling', () => {
  let server: TestServer;
  const secrets = new Map<string, string>();

  before(async () => {
    server = await startTestServer({
      auth: true,
      config: {
        http: { trustedProxies: ['127.0.0.1', '::1'] },
        auth: { throttle: { maxFailures: 5, addressMaxFailures: 20, principalMaxFailures: 20, slowedIntervalMs } },
      },
    });
    for (const name of ['victim', 'victim2']) {
      const created = await server.app.auth.principals.createPrincipal('user', name, {});
      secrets.set(name, created.secret ?? '');
    }
  });
  after(() => server.stop());

  it('counts attempts in flight: 40 parallel wrong passwords run at most maxFailures verifications', async () => {
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => login(server, 'victim', `wrong-${i}`)));
    const statuses = answers.map((r) => r.status);
    const verified = statuses.filter((s) => s === 401).length;
    assert.ok(verified <= 5, `${verified} wrong passwords were verified`);
    assert.equal(statuses.filter((s) => s === 429).length, 40 - verified);
    assert.ok(answers.filter((r) => r.status === 429).every((r) => Number(r.headers.get('retry-after')) >= 1));
    const failed = (await server.app.metadata.auth.audit.list({ limit: 200 })).filter(
      (e) => e.event === 'login.failed' && (e.detail as { username?: string }).username === 'victim',
    );
    assert.equal(failed.length, verified);
  });

  it('does not lock the user out from another address', async () => {
    assert.equal((await login(server, 'victim', secrets.get('victim') ?? '', '203.0.113.5')).status, 200);
  });

  it('slows a name attacked from many addresses, never locks it, and does not slow an address it used before', async () => {
    const secret = secrets.get('victim2') ?? '';
    assert.equal((await login(server, 'victim2', secret, '198.51.100.77')).status, 200);
    for (let i = 0; i < 20; i++) assert.equal((await login(server, 'victim2', 'guess', `192.0.2.${i + 1}`)).status, 401);
    // Slowed: of a burst from fresh addresses, at most one is verified.
    const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => login(server, 'victim2', 'guess', `192.0.2.${100 + i}`)));
    assert.ok(burst.filter((r) => r.status === 401).length <= 1);
    assert.ok(burst.filter((r) => r.status === 429).length >= 9);
    // The address it logged in from before is not slowed, even in parallel.
    const home = await Promise.all([1, 2, 3].map(() => login(server, 'victim2', secret, '198.51.100.77')));
    assert.deepEqual(
      home.map((r) => r.status),
      [200, 200, 200],
    );
    // A real user at a new address: told to retry, and in after waiting that long.
    let answer = await login(server, 'victim2', secret, '203.0.113.9');
    for (let tries = 0; answer.status === 429 && tries < 5; tries++) {
      await new Promise((ok) => setTimeout(ok, Number(answer.headers.get('retry-after')) * 1000));
      answer = await login(server, 'victim2', secret, '203.0.113.9');
    }
    assert.equal(answer.status, 200);
  });
});
