// The token service's records do not grow without bound:
// - an anonymous token request with a huge scope list is audited as a bounded summary, not verbatim;
// - audit entries and expired refresh tokens older than the configured retention are pruned by the
//   background job (one replica at a time: jobs/scheduled.ts), on a real server with a moved clock.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { urls } from '../../src/api/urls.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';

const clock = { offset: 0, now: () => Date.now() + clock.offset };
const hour = 3600 * 1000;

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

describe('retention and bounded audit entries', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({
      auth: true,
      clock,
      config: { retention: { auditLogMs: 24 * hour, expiredRefreshTokensMs: hour, everyMs: 1000 } },
    });
  });
  after(() => server.stop());

  it('stores a bounded summary of an anonymous token request, not its scopes verbatim', async () => {
    const lastDetail = async () => {
      const [entry] = await server.app.metadata.auth.audit.list({ limit: 1, event: 'token.issued' });
      assert.equal(entry?.event, 'token.issued');
      assert.equal(entry?.principalName, 'anonymous');
      return entry?.detail as { requested: string[]; requestedCount?: number };
    };
    const huge = new URLSearchParams({ service: 'berth', scope: `repository:${'a'.repeat(12 * 1024)}:pull` });
    assert.equal((await fetch(`${server.url}${urls.token()}?${huge.toString()}`)).status, 200);
    const hugeDetail = await lastDetail();
    assert.deepEqual(hugeDetail.requested, []);
    assert.ok(JSON.stringify(hugeDetail).length < 1024, `audit detail is ${JSON.stringify(hugeDetail).length} bytes`);

    const many = new URLSearchParams({ service: 'berth', scope: Array.from({ length: 300 }, (_, i) => `repository:t/a${i}:pull`).join(' ') });
    assert.equal((await fetch(`${server.url}${urls.token()}?${many.toString()}`)).status, 200);
    const manyDetail = await lastDetail();
    assert.equal(manyDetail.requested.length, 10);
    assert.equal(manyDetail.requestedCount, 300);
    assert.ok(JSON.stringify(manyDetail).length < 1024, `audit detail is ${JSON.stringify(manyDetail).length} bytes`);
  });

  it('prunes audit entries past retention and expired refresh tokens, and keeps the rest', async () => {
    const res = await fetch(`${server.url}${urls.token()}?service=berth&offline_token=true`, { headers: { Authorization: basic(ownerName, ownerPassword) } });
    const refresh = ((await res.json()) as { refresh_token: string }).refresh_token;
    const jti = (JSON.parse(Buffer.from(refresh.split('.')[1] ?? '', 'base64url').toString()) as { jti: string }).jti;
    assert.ok(await server.app.metadata.auth.refreshTokens.get(jti));
    const before = await server.app.metadata.auth.audit.list({ limit: 1000 });
    assert.ok(before.length >= 2);

    // Two days on: the entries so far are past retention; the refresh token (3 h) expired long ago.
    clock.offset += 48 * hour;
    const fresh = await fetch(`${server.url}${urls.token()}?service=berth`);
    assert.equal(fresh.status, 200);
    await waitFor(async () => (await server.app.metadata.auth.audit.list({ limit: 1000 })).length === 1, 'the old audit entries to be pruned');
    const [kept] = await server.app.metadata.auth.audit.list({ limit: 10 });
    assert.ok(kept && kept.at >= clock.now() - hour, 'the recent entry is kept');
    await waitFor(async () => (await server.app.metadata.auth.refreshTokens.get(jti)) === undefined, 'the expired refresh token to be pruned');
  });
});
