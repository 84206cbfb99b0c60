/**
 * `berth keys revoke KID` (`POST /api/v1/keys/{kid}/revoke`): after a leak, every token the key
 * signed is refused, by the replica that revoked it at once (its verified-token cache included) and
 * by the other replicas within `auth.keyRevocationCheckMs`. Two app instances on one database, one
 * clock the test moves.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { storeIdentityToken } from '../../src/client/docker-config.js';
import { Api, ok, runCli } from '../admin/helpers.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';
import { bearer, parseChallenge, postForm, tokenFor } from './helpers.js';

const clock = { offset: 0, now: () => Date.now() + clock.offset };
const revocationCheckMs = 2000;

function kidOf(token: string): string {
  return (JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as { kid: string }).kid;
}

describe('revoking a signing key', () => {
  let first: TestServer;
  let second: TestServer;

  before(async () => {
    const config = { auth: { keyRevocationCheckMs: revocationCheckMs } };
    first = await startTestServer({ auth: true, clock, config });
    second = await startTestServer({ auth: true, clock, config, dataDir: first.dataDir });
  });
  after(async () => {
    clock.offset = 0;
    await second.stop();
    await first.stop();
  });

  /** The status of a registry request with this access token on one replica. */
  const status = async (replica: TestServer, token: string): Promise<number> => {
    const res = await fetch(`${replica.url}/v2/`, { headers: bearer(token) });
    await res.body?.cancel();
    return res.status;
  };
  const redeem = async (replica: TestServer, refreshToken: string): Promise<number> =>
    (await postForm(replica.url, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: refreshToken, service: 'berth' })).status;

  it('refuses every token the key signed: at once where it was revoked, within the check interval on the other replica', async () => {
    const issued = await tokenFor(first.url, ownerName, ownerPassword, ['repository:team/app:pull'], true);
    const access = String(issued['token']);
    const refresh = String(issued['refresh_token']);
    const kid = kidOf(access);
    // Both replicas accept them, and have both tokens in their verified-token caches.
    assert.equal(await status(first, access), 200);
    assert.equal(await status(second, access), 200);
    // The other replica derives the same MAC key from the shared signing key: the token's MAC alone
    // (its signature replaced) carries it there too (shared/jwt.ts, `claimsMac`).
    const [header, claims] = access.split('.');
    const macOnly = `${header}.${claims}.${Buffer.alloc(64, 7).toString('base64url')}`;
    assert.equal(await status(second, macOnly), 200);
    assert.equal(await redeem(first, refresh), 200);
    assert.equal(await redeem(second, refresh), 200);

    const owner = await Api.asOwner(first.url);
    const listed = await owner.get('/keys');
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.body.keys.map((k: { kid: string; state: string }) => [k.kid, k.state]),
      [[kid, 'active']],
    );
    const revoked = await owner.post(`/keys/${kid}/revoke`, {});
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal(revoked.body.kid, kid);
    assert.notEqual(revoked.body.signingKid, kid, 'a new key signs from now on');

    // The replica that revoked it: at once, the cached verification included.
    const refused = await fetch(`${first.url}/v2/`, { headers: bearer(access) });
    assert.equal(refused.status, 401);
    assert.equal(parseChallenge(refused.headers.get('www-authenticate'))['error'], 'invalid_token');
    assert.equal(await redeem(first, refresh), 401);

    // The other replica: once its knowledge of revoked keys is older than the check interval.
    clock.offset += revocationCheckMs + 1;
    assert.equal(await status(second, access), 401);
    assert.equal(await status(second, macOnly), 401);
    assert.equal(await redeem(second, refresh), 401);
    assert.equal(
      ((await fetch(`${second.url}/oauth2/jwks`).then((r) => r.json())) as { keys: Array<{ kid: string }> }).keys.some((k) => k.kid === kid),
      false,
    );

    // Both sign with another key now, and accept each other's new tokens.
    const fresh = String((await tokenFor(second.url, ownerName, ownerPassword, ['repository:team/app:pull']))['token']);
    assert.notEqual(kidOf(fresh), kid);
    assert.equal(await status(first, fresh), 200);

    const { entries } = (await (await Api.asOwner(first.url)).get('/audit?limit=20')).body;
    const entry = entries.find((e: { event: string }) => e.event === 'admin.keys.revoked');
    assert.equal(entry?.principalName, ownerName);
    assert.equal(entry?.detail.kid, kid);
    const states = (await (await Api.asOwner(second.url)).get('/keys')).body.keys as Array<{ kid: string; state: string; revokedAt: string | null }>;
    assert.equal(states.find((k) => k.kid === kid)?.state, 'revoked');
  });

  it('answers 404 KEY_UNKNOWN for a kid that names no key', async () => {
    const res = await (await Api.asOwner(first.url)).post('/keys/no-such-kid/revoke', {});
    assert.equal(res.status, 404);
    assert.equal(res.body.errors?.[0]?.code, 'NAME_UNKNOWN');
    assert.match(res.body.errors?.[0]?.message, /no signing key "no-such-kid"/);
  });

  /** Runs `work` with the environment of a `berth` CLI logged in to the first replica as the owner. */
  async function asOwnerCli(work: (env: NodeJS.ProcessEnv) => Promise<void>): Promise<void> {
    const home = await mkdtemp(join(tmpdir(), 'berth-keys-'));
    try {
      const host = new URL(first.url).host;
      const refresh = String((await tokenFor(first.url, ownerName, ownerPassword, [], true))['refresh_token']);
      await storeIdentityToken(host, refresh, join(home, 'config.json'));
      await work({ DOCKER_CONFIG: home, BERTH_REGISTRY: host });
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  }

  it("a KID that starts with '-' is revoked after '--' (the argument reaches the registry)", async () => {
    await asOwnerCli(async (env) => {
      const result = await runCli(['keys', 'revoke', '--', '-no-such-key'], { env });
      assert.notEqual(result.code, 0);
      assert.doesNotMatch(result.stderr, /unknown option/);
      assert.match(result.stderr, /-no-such-key/);
    });
  });

  it('berth keys list and berth keys revoke KID', async () => {
    clock.offset = 0;
    await asOwnerCli(async (env) => {
      const active = String((await tokenFor(first.url, ownerName, ownerPassword, ['repository:team/app:pull']))['token']);
      const kid = kidOf(active);
      const table = ok(await runCli(['keys', 'list'], { env })).stdout;
      assert.match(table, /^KID\s+ALG\s+STATE\s+CREATED\s+RETIRED\s+REVOKED$/m);
      assert.match(table, new RegExp(`^${kid}\\s+ES256\\s+active\\s+`, 'm'));
      // A kid is a base64url thumbprint: one in 64 starts with '-', which the CLI takes after '--'.
      const result = ok(await runCli(['keys', 'revoke', ...(kid.startsWith('-') ? ['--'] : []), kid], { env }));
      assert.match(result.stdout, new RegExp(`^revoked signing key ${kid}: every token it signed is refused`));
      assert.equal(await status(first, active), 401);
    });
  });
});
