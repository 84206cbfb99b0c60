/**
 * Federation binds to this registry: its own audience (advertised in every challenge, the default
 * of presets), GitHub's immutable subjects, and the egress policy on discovery and key fetches.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Api } from '../admin/helpers.js';
import { parseChallenge, postForm } from '../auth/helpers.js';
import { startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.js';
import { startTestServer, type TestServer, type TestServerOptions } from '../support/server.js';

const assertionForm = (token: string, clientId: string) => ({
  grant_type: 'client_credentials',
  client_id: clientId,
  client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
  client_assertion: token,
  service: 'berth',
  scope: 'repository:acme/app:pull',
});

describe('federation binds to this registry', () => {
  let github: OidcIssuer;
  const servers: TestServer[] = [];

  /** A registry trusting `github` for the service principal `ci` (pull acme/*), through the API with a preset. */
  async function registry(options: TestServerOptions = {}, credential: Record<string, unknown> = {}): Promise<TestServer> {
    const server = await startTestServer({ auth: true, federationIssuers: [{ issuer: github.issuer }], ...options });
    servers.push(server);
    const owner = await Api.asOwner(server.url);
    assert.equal((await owner.post('/principals', { kind: 'service', name: 'ci', grants: [{ pattern: 'acme/*', permission: 'pull' }] })).status, 201);
    const made = await owner.post('/principals/ci/federated-credentials', {
      name: 'gha',
      preset: 'github',
      issuer: github.issuer,
      repository: 'acme/app',
      ...credential,
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    return server;
  }
  const advertised = async (server: TestServer): Promise<string> => {
    const res = await fetch(`${server.url}/v2/`);
    await res.body?.cancel();
    const audience = parseChallenge(res.headers.get('www-authenticate'))['audience'];
    assert.ok(audience, 'the challenge names an audience');
    return audience;
  };
  const login = async (server: TestServer, token: string): Promise<{ status: number; description: string | undefined }> => {
    const res = await postForm(server.url, '/oauth2/token', assertionForm(token, 'ci'));
    const body = (await res.json()) as { error_description?: string };
    return { status: res.status, description: body.error_description };
  };

  before(async () => {
    github = await startOidcIssuer();
  });
  after(async () => {
    for (const server of servers) await server.stop();
    await github.stop();
  });

  describe("the registry's own audience", () => {
    it('every registry has its own, advertised in its challenge and given to presets: a token for one is refused by the other', async () => {
      const a = await registry();
      const b = await registry();
      const [audienceA, audienceB] = [await advertised(a), await advertised(b)];
      assert.match(audienceA, /^urn:berth:[0-9a-f-]{36}$/);
      assert.match(audienceB, /^urn:berth:[0-9a-f-]{36}$/);
      assert.notEqual(audienceA, audienceB);
      const owner = await Api.asOwner(a.url);
      assert.deepEqual((await owner.get('/principals/ci/federated-credentials')).body.credentials[0].audiences, [audienceA]);

      const forA = await github.github({ repository: 'acme/app', audience: audienceA });
      assert.equal((await login(a, forA)).status, 200);
      const replayed = await login(b, forA);
      assert.equal(replayed.status, 401, 'B trusts the same repository, but the token was asked for A');
      assert.match(replayed.description ?? '', new RegExp(`^federated login refused: audience: .*${JSON.stringify(audienceB)}`));
      assert.equal((await login(a, await github.github({ repository: 'acme/app', audience: 'berth' }))).status, 401, 'nor the legacy audience');
    });

    it('is auth.publicUrl when set, and federation.audience over it', async () => {
      const byUrl = await registry({ config: { auth: { publicUrl: 'https://registry.example.com/' } } });
      assert.equal(await advertised(byUrl), 'https://registry.example.com');
      const named = await registry({ config: { auth: { publicUrl: 'https://registry.example.com' }, federation: { audience: 'registry-prod' } } });
      assert.equal(await advertised(named), 'registry-prod');
      assert.equal((await login(named, await github.github({ repository: 'acme/app', audience: 'registry-prod' }))).status, 200);
    });

    it('keeps the same generated audience across replicas and restarts', async () => {
      const first = await registry();
      const again = await startTestServer({ auth: true, federationIssuers: [{ issuer: github.issuer }], dataDir: first.dataDir });
      servers.push(again);
      assert.equal(await advertised(again), await advertised(first));
    });
  });

  describe('credentials with the legacy audience berth (made before instance audiences)', () => {
    const legacy = { audiences: ['berth'] };

    it("accept this registry's audience, and berth while federation.acceptLegacyAudience is on (the default)", async () => {
      const logLines: string[] = [];
      const server = await registry({ logLines }, legacy);
      const own = await github.github({ repository: 'acme/app', audience: await advertised(server) });
      assert.equal((await login(server, own)).status, 200);
      assert.ok(!logLines.some((line) => line.includes('legacy audience')));
      assert.equal((await login(server, await github.github({ repository: 'acme/app', audience: 'berth' }))).status, 200);
      assert.ok(
        logLines.some((line) => line.includes('"level":40') && line.includes('legacy audience berth') && line.includes('"principal":"ci"')),
        'a warning says to move off the legacy audience',
      );
      assert.equal((await login(server, await github.github({ repository: 'acme/app', audience: 'urn:berth:someone-else' }))).status, 401);
    });

    it('refuse berth once federation.acceptLegacyAudience is off', async () => {
      const server = await registry({ config: { federation: { acceptLegacyAudience: false } } }, legacy);
      assert.equal((await login(server, await github.github({ repository: 'acme/app', audience: await advertised(server) }))).status, 200);
      const old = await login(server, await github.github({ repository: 'acme/app', audience: 'berth' }));
      assert.equal(old.status, 401);
      const [entry] = await server.app.metadata.auth.audit.list({ limit: 1, event: 'login.failed' });
      assert.match(String((entry?.detail as { reason?: string }).reason), /legacy audience berth is turned off/);
    });
  });

  describe("the github preset: GitHub's immutable subjects, pinned by id", () => {
    const immutable = (ref = 'refs/heads/main') => `repo:acme@1234/app@5678:ref:${ref}`;

    it('accepts the classic and the immutable subject of the repository it names', async () => {
      const server = await registry({}, { ref: 'main' });
      const audience = await advertised(server);
      assert.equal((await login(server, await github.github({ repository: 'acme/app', audience }))).status, 200, 'classic');
      const current = await github.github({ repository: 'acme/app', audience, sub: immutable(), repository_id: '5678' });
      assert.equal((await login(server, current)).status, 200, 'immutable');
      const otherRepo = await github.github({ repository: 'acme/appx', audience, sub: 'repo:acme@1234/appx@9:ref:refs/heads/main' });
      assert.equal((await login(server, otherRepo)).status, 401, 'a repository whose name only starts the same');
    });

    it('with ids, a repository that later took the name (recycled or renamed) inherits nothing', async () => {
      const server = await registry({}, { repository: 'acme@1234/app@5678', ref: 'main' });
      const audience = await advertised(server);
      const owner = await Api.asOwner(server.url);
      const [credential] = (await owner.get('/principals/ci/federated-credentials')).body.credentials;
      assert.deepEqual(credential.conditions, [
        { claim: 'repository', equals: 'acme/app' },
        { claim: 'repository_owner_id', equals: '1234' },
        { claim: 'repository_id', equals: '5678' },
      ]);
      const genuine = await github.github({ repository: 'acme/app', audience, sub: immutable(), repository_id: '5678' });
      assert.equal((await login(server, genuine)).status, 200);
      const recycled = await github.github({ repository: 'acme/app', audience, sub: 'repo:acme@1234/app@9999:ref:refs/heads/main', repository_id: '9999' });
      assert.equal((await login(server, recycled)).status, 401, 'same name, another repository');
      const classicRecycled = await github.github({ repository: 'acme/app', audience, repository_id: '9999' });
      assert.equal((await login(server, classicRecycled)).status, 401, 'same name in the classic form, another repository');
      const otherOwner = await github.github({ repository: 'acme/app', audience, repository_owner_id: '777', repository_id: '5678' });
      assert.equal((await login(server, otherOwner)).status, 401, 'an owner that took the name');
    });

    it('takes a branch glob as ref', async () => {
      const server = await registry({}, { ref: 'release-*' });
      const audience = await advertised(server);
      assert.equal((await login(server, await github.github({ repository: 'acme/app', audience, ref: 'refs/heads/release-1.2' }))).status, 200);
      assert.equal((await login(server, await github.github({ repository: 'acme/app', audience, ref: 'refs/heads/main' }))).status, 401);
    });
  });

  describe('OIDC discovery and key fetches obey the egress policy', () => {
    it('refuses an issuer on a private address unless it is allowed (federation.issuers[].allowPrivateNetwork or egress.allow)', async () => {
      const inside = await startOidcIssuer();
      try {
        const issuer = { issuer: inside.issuer, allowInsecureLoopback: true };
        const issuers = [issuer];
        const trusting = async (config: NonNullable<TestServerOptions['config']>) => {
          const server = await registry({ federationIssuers: [], config }, { issuer: inside.issuer });
          return { server, audience: await advertised(server) };
        };
        const refusing = await trusting({ federation: { issuers } });
        const refused = await login(refusing.server, await inside.github({ repository: 'acme/app', audience: refusing.audience }));
        assert.equal(refused.status, 401);
        assert.match(refused.description ?? '', /issuer's signing keys could not be fetched/);
        assert.equal(inside.jwksFetches, 0, 'nothing was fetched from the issuer');
        const [entry] = await refusing.server.app.metadata.auth.audit.list({ limit: 1, event: 'login.failed' });
        assert.match(String((entry?.detail as { reason?: string }).reason), /loopback addresses are not allowed by the egress policy.*allowPrivateNetwork/);

        const byIssuer = await trusting({ federation: { issuers: [{ ...issuer, allowPrivateNetwork: true }] } });
        assert.equal((await login(byIssuer.server, await inside.github({ repository: 'acme/app', audience: byIssuer.audience }))).status, 200);
        const byEgress = await trusting({ federation: { issuers }, egress: { allow: ['127.0.0.1/32'] } });
        assert.equal((await login(byEgress.server, await inside.github({ repository: 'acme/app', audience: byEgress.audience }))).status, 200);
      } finally {
        await inside.stop();
      }
    });
  });
});
