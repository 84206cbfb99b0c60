import assert from 'node:assert/strict';
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { refreshTokenUser } from '../../src/auth/token-endpoint.js';
import { basic, bearer, postForm } from '../auth/helpers.js';
import { startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.js';
import { startTestServer, type TestServer } from '../support/server.js';

const clock = { offset: 0, now: () => Date.now() + clock.offset };
const jwtBearer = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const tokenExchange = 'urn:ietf:params:oauth:grant-type:token-exchange';
const jwtType = 'urn:ietf:params:oauth:token-type:jwt';

describe('workload identity federation', () => {
  let github: OidcIssuer;
  let cluster: OidcIssuer;
  let server: TestServer;
  let base = '';
  let pusherId = '';
  let pullerId = '';

  async function addCredential(
    principalId: string,
    issuer: string,
    subject: string,
    conditions: Array<Record<string, unknown>> = [],
    audiences = ['berth'],
  ): Promise<string> {
    const id = randomUUID();
    await server.app.metadata.auth.federatedCredentials.put({
      id,
      principalId,
      name: `c-${id.slice(0, 8)}`,
      issuer,
      audiences,
      subject,
      conditions: conditions as never,
      createdAt: clock.now(),
    });
    return id;
  }

  /**
   * The caller is told which check failed in general terms (`told`), never the configured subject,
   * audiences or conditions; the audit log keeps the full reason (`audited`).
   */
  async function refused(form: Record<string, string>, told: RegExp, audited: RegExp = told): Promise<void> {
    const res = await postForm(base, '/oauth2/token', form);
    const body = (await res.json()) as { error?: string; error_description?: string };
    assert.equal(res.status, 401, JSON.stringify(body));
    assert.equal(body.error, 'invalid_grant');
    const description = body.error_description ?? '';
    assert.match(description, told);
    for (const secret of ['repo:acme/app:*', 'system:serviceaccount:prod:*', 'repository_owner_id', '1234', 'refs/heads/*']) {
      assert.ok(!description.includes(secret), `${JSON.stringify(description)} reveals ${secret}`);
    }
    const [entry] = await server.app.metadata.auth.audit.list({ limit: 1, event: 'login.failed' });
    assert.equal(entry?.event, 'login.failed');
    assert.match(String((entry?.detail as { reason?: unknown } | undefined)?.reason), audited);
  }

  const assertion = (token: string, clientId: string) => ({
    grant_type: 'client_credentials',
    client_id: clientId,
    client_assertion_type: jwtBearer,
    client_assertion: token,
    service: 'berth',
    scope: 'repository:acme/app:pull,push',
  });

  before(async () => {
    github = await startOidcIssuer();
    cluster = await startOidcIssuer({ alg: 'ES256' });
    server = await startTestServer({
      auth: true,
      clock,
      federationIssuers: [{ issuer: github.issuer }, { issuer: cluster.issuer }],
    });
    base = server.url;
    const { principals } = server.app.auth;
    const pusher = await principals.createPrincipal('service', 'ci-pusher', { grants: [{ pattern: 'acme/*', permission: 'push' }], withoutSecret: true });
    const puller = await principals.createPrincipal('service', 'k8s-puller', { grants: [{ pattern: 'acme/*', permission: 'pull' }], withoutSecret: true });
    pusherId = pusher.principal.id;
    pullerId = puller.principal.id;
    await addCredential(pusherId, github.issuer, 'repo:acme/app:*', [
      { claim: 'repository_owner_id', equals: '1234' },
      { claim: 'ref', glob: 'refs/heads/*' },
    ]);
    await addCredential(pullerId, cluster.issuer, 'system:serviceaccount:prod:*');
  });
  after(async () => {
    await server.stop();
    await github.stop();
    await cluster.stop();
  });

  describe('the four exchanges', () => {
    it('1. client_credentials with a client assertion yields a scoped Berth access token', async () => {
      const res = await postForm(base, '/oauth2/token', assertion(await github.github({ repository: 'acme/app' }), 'ci-pusher'));
      assert.equal(res.status, 200);
      const body = (await res.json()) as Record<string, unknown>;
      assert.equal(body['token_type'], 'Bearer');
      assert.equal(body['scope'], 'repository:acme/app:pull,push');
      const push = await fetch(`${base}/v2/acme/app/blobs/uploads/`, { method: 'POST', headers: bearer(body['access_token']) });
      assert.equal(push.status, 202);
    });

    it('2. /oauth2/exchange takes that identity token, or the OIDC token directly, and returns a refresh token', async () => {
      const oidc = await github.github({ repository: 'acme/app' });
      const identity = (await (await postForm(base, '/oauth2/token', assertion(oidc, 'ci-pusher'))).json()) as { access_token: string };
      for (const accessToken of [identity.access_token, oidc]) {
        const res = await postForm(base, '/oauth2/exchange', { grant_type: 'access_token', service: 'berth', access_token: accessToken });
        assert.equal(res.status, 200, await res.clone().text());
        const { refresh_token } = (await res.json()) as { refresh_token: string };
        const redeemed = await postForm(base, '/oauth2/token', {
          grant_type: 'refresh_token',
          refresh_token,
          service: 'berth',
          scope: 'repository:acme/app:push',
        });
        assert.equal(((await redeemed.json()) as { scope: string }).scope, 'repository:acme/app:push');
      }
    });

    it('3. RFC 8693 token exchange', async () => {
      const res = await postForm(base, '/oauth2/token', {
        grant_type: tokenExchange,
        subject_token: await cluster.kubernetes({ namespace: 'prod', serviceAccount: 'web' }),
        subject_token_type: jwtType,
        service: 'berth',
        scope: 'repository:acme/app:pull',
      });
      assert.equal(res.status, 200, await res.clone().text());
      const body = (await res.json()) as Record<string, unknown>;
      assert.equal(body['issued_token_type'], 'urn:ietf:params:oauth:token-type:access_token');
      assert.equal(body['scope'], 'repository:acme/app:pull');
    });

    it('4. docker login: user name = client id, password = the OIDC token', async () => {
      const oidc = await github.github({ repository: 'acme/app' });
      const res = await fetch(`${base}/oauth2/token?service=berth&scope=repository:acme/app:pull,push&offline_token=true`, {
        headers: { Authorization: basic('ci-pusher', oidc) },
      });
      assert.equal(res.status, 200, await res.clone().text());
      const body = (await res.json()) as Record<string, string>;
      assert.equal(body['scope'], 'repository:acme/app:pull,push');
      const again = await fetch(`${base}/oauth2/token?service=berth&scope=repository:acme/app:pull`, {
        headers: { Authorization: basic(refreshTokenUser, body['refresh_token'] ?? '') },
      });
      assert.equal(again.status, 200);
    });
  });

  describe('refresh tokens bound to named scopes', () => {
    const grantedScope = async (refreshToken: string, scope: string): Promise<string | undefined> => {
      const res = await postForm(base, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: refreshToken, service: 'berth', scope });
      assert.equal(res.status, 200, await res.clone().text());
      return ((await res.json()) as { scope?: string }).scope;
    };
    const exchange = async (accessToken: string, scope?: string): Promise<string> => {
      const res = await postForm(base, '/oauth2/exchange', {
        grant_type: 'access_token',
        service: 'berth',
        access_token: accessToken,
        ...(scope ? { scope } : {}),
      });
      assert.equal(res.status, 200, await res.clone().text());
      return ((await res.json()) as { refresh_token: string }).refresh_token;
    };

    it('/oauth2/exchange with scope: derived tokens grant those scopes and nothing else the principal has', async () => {
      const oidc = await cluster.kubernetes({ namespace: 'prod', serviceAccount: 'web' });
      const bound = await exchange(oidc, 'repository:acme/app:pull');
      assert.equal(await grantedScope(bound, 'repository:acme/app:pull'), 'repository:acme/app:pull');
      // k8s-puller may pull all of acme/*, but this token only acme/app.
      assert.equal(await grantedScope(bound, 'repository:acme/other:pull'), undefined);
      const docker = await fetch(`${base}/oauth2/token?service=berth&scope=repository:acme/other:pull`, {
        headers: { Authorization: basic(refreshTokenUser, bound) },
      });
      assert.equal(((await docker.json()) as { scope?: string }).scope, undefined);
      const unbound = await exchange(oidc);
      assert.equal(await grantedScope(unbound, 'repository:acme/other:pull'), 'repository:acme/other:pull');
    });

    it('a bound token can only be narrowed: its access tokens carry the bound into later exchanges', async () => {
      const oidc = await cluster.kubernetes({ namespace: 'prod', serviceAccount: 'web' });
      const bound = await exchange(oidc, 'repository:acme/app:pull repository:acme/lib:pull');
      const access = await postForm(base, '/oauth2/token', {
        grant_type: 'refresh_token',
        refresh_token: bound,
        service: 'berth',
        scope: 'repository:acme/app:pull',
      });
      const accessToken = ((await access.json()) as { access_token: string }).access_token;
      // The access token's own access (acme/app) is the ceiling of what it is exchanged for: the
      // rest of the refresh token's bound (acme/lib) does not come back through it.
      const again = await exchange(accessToken);
      assert.equal(await grantedScope(again, 'repository:acme/app:pull'), 'repository:acme/app:pull');
      assert.equal(await grantedScope(again, 'repository:acme/lib:pull'), undefined);
      assert.equal(await grantedScope(again, 'repository:acme/other:pull'), undefined);
      const widened = await exchange(accessToken, 'repository:acme/other:pull');
      assert.equal(await grantedScope(widened, 'repository:acme/other:pull'), undefined);
    });

    it('RFC 8693 asking for a refresh token with scope binds it the same way', async () => {
      const res = await postForm(base, '/oauth2/token', {
        grant_type: tokenExchange,
        subject_token: await cluster.kubernetes({ namespace: 'prod', serviceAccount: 'web' }),
        subject_token_type: jwtType,
        requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token',
        service: 'berth',
        scope: 'repository:acme/app:pull',
      });
      assert.equal(res.status, 200, await res.clone().text());
      const refresh = ((await res.json()) as { access_token: string }).access_token;
      assert.equal(await grantedScope(refresh, 'repository:acme/app:pull'), 'repository:acme/app:pull');
      assert.equal(await grantedScope(refresh, 'repository:acme/other:pull'), undefined);
    });
  });

  describe('refused, each naming the failing check', () => {
    it('an untrusted issuer (and an unknown client id gets the same answer)', async () => {
      const stranger = await startOidcIssuer();
      try {
        await refused(
          assertion(await stranger.github({ repository: 'acme/app' }), 'ci-pusher'),
          /^federated login refused: issuer: .*not for this client$/,
          /issuer .* is not trusted for client ci-pusher/,
        );
        await refused(
          assertion(await github.github({ repository: 'acme/app' }), 'no-such-client'),
          /^federated login refused: issuer: .*not for this client$/,
          /issuer .* is not trusted for client no-such-client/,
        );
      } finally {
        await stranger.stop();
      }
    });

    it('a disabled principal, found by its client id or by the issuer alone', async () => {
      await server.app.auth.principals.setDisabled(pusherId, true);
      try {
        const byClient = await postForm(base, '/oauth2/token', assertion(await github.github({ repository: 'acme/app' }), 'ci-pusher'));
        assert.equal(byClient.status, 401);
        assert.deepEqual(await byClient.json(), { error: 'invalid_grant', error_description: 'principal is disabled' });
        const byIssuer = await postForm(base, '/oauth2/exchange', {
          grant_type: 'access_token',
          service: 'berth',
          access_token: await github.github({ repository: 'acme/app' }),
        });
        assert.equal(byIssuer.status, 401);
        assert.equal(((await byIssuer.json()) as { error: string }).error, 'invalid_grant');
      } finally {
        await server.app.auth.principals.setDisabled(pusherId, false);
      }
      const again = await postForm(base, '/oauth2/token', assertion(await github.github({ repository: 'acme/app' }), 'ci-pusher'));
      assert.equal(again.status, 200, 'enabled again, it logs in again');
    });

    it('a wrong audience', async () => {
      await refused(
        assertion(await github.github({ repository: 'acme/app', audience: 'sts.amazonaws.com' }), 'ci-pusher'),
        /^federated login refused: audience: .*ask for this registry's audience/,
        /audience \["sts\.amazonaws\.com"\] is not accepted by credential c-\w+ \(it accepts \["berth"\]\)/,
      );
    });

    it('a subject outside the pattern', async () => {
      await refused(
        assertion(await github.github({ repository: 'acme/other' }), 'ci-pusher'),
        /^federated login refused: subject: no federated credential trusts the token's subject$/,
        /subject "repo:acme\/other:ref:refs\/heads\/main" does not match "repo:acme\/app:\*"/,
      );
    });

    it('a failed claim condition', async () => {
      await refused(
        assertion(await github.github({ repository: 'acme/app', repository_owner_id: '999' }), 'ci-pusher'),
        /^federated login refused: condition: /,
        /claim repository_owner_id \("999"\) does not meet its condition/,
      );
      await refused(assertion(await github.github({ repository: 'acme/app', ref: 'refs/tags/v1' }), 'ci-pusher'), /condition/, /claim ref /);
    });

    it('an expired token, and one older than the maximum age', async () => {
      const now = Math.floor(clock.now() / 1000);
      await refused(assertion(await github.github({ repository: 'acme/app' }, { issuedAt: now - 900, expiresIn: 600 }), 'ci-pusher'), /expired/);
      await refused(
        assertion(await github.github({ repository: 'acme/app' }, { issuedAt: now - 7200, expiresIn: 86400 }), 'ci-pusher'),
        /expired: .*too long ago/,
        /too old/,
      );
    });

    it('alg: none', async () => {
      const real = await github.github({ repository: 'acme/app' });
      const [, payload] = real.split('.');
      const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
      await refused(assertion(`${header}.${payload}.`, 'ci-pusher'), /signature|malformed/, /algorithm is not allowed|invalid/);
    });

    it("HS256 keyed with the issuer's public key", async () => {
      const real = await github.github({ repository: 'acme/app' });
      const [, payload] = real.split('.');
      const jwk = github.jwks().keys[0];
      const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: jwk?.kid })).toString('base64url');
      const signature = createHmac('sha256', JSON.stringify(jwk)).update(`${header}.${payload}`).digest('base64url');
      await refused(assertion(`${header}.${payload}.${signature}`, 'ci-pusher'), /signature/, /algorithm is not allowed/);
    });

    it('a kid missing from the JWKS, and a forged signature under a published kid', async () => {
      await refused(assertion(await github.github({ repository: 'acme/app' }, { kid: 'missing' }), 'ci-pusher'), /signature/, /no key of the issuer matches/);
      await refused(assertion(await github.github({ repository: 'acme/app' }, { foreignKey: true }), 'ci-pusher'), /signature/, /signature does not verify/);
    });

    it('a token from another issuer reusing a known kid', async () => {
      const knownKid = cluster.jwks().keys[0]?.kid ?? '';
      // github signs a token claiming to come from the cluster issuer, under the cluster's kid.
      const forged = await github.kubernetes({ namespace: 'prod', serviceAccount: 'web' }, { issuer: cluster.issuer, kid: knownKid });
      await refused(
        { grant_type: tokenExchange, subject_token: forged, subject_token_type: jwtType, service: 'berth' },
        /signature|algorithm|no key of the issuer/,
      );
    });

    it('a pull-only identity cannot push', async () => {
      const res = await postForm(base, '/oauth2/token', {
        grant_type: tokenExchange,
        subject_token: await cluster.kubernetes({ namespace: 'prod', serviceAccount: 'web' }),
        subject_token_type: jwtType,
        service: 'berth',
        scope: 'repository:acme/app:pull,push',
      });
      const body = (await res.json()) as { access_token: string; scope: string };
      assert.equal(body.scope, 'repository:acme/app:pull');
      const push = await fetch(`${base}/v2/acme/app/blobs/uploads/`, { method: 'POST', headers: bearer(body.access_token) });
      assert.equal(push.status, 403);
    });
  });

  describe('issuers', () => {
    it('picks up a rotated issuer key (refetch on an unknown kid)', async () => {
      await github.rotateKey();
      const res = await postForm(base, '/oauth2/token', assertion(await github.github({ repository: 'acme/app' }), 'ci-pusher'));
      assert.equal(res.status, 200, await res.clone().text());
    });

    it('an issuer that is down fails only its own logins, and recovers', async () => {
      const late = await startOidcIssuer();
      const trusting = await startTestServer({ auth: true, clock, federationIssuers: [{ issuer: late.issuer }] });
      try {
        const sp = await trusting.app.auth.principals.createPrincipal('service', 'late-ci', {
          grants: [{ pattern: '**', permission: 'pull' }],
          withoutSecret: true,
        });
        await trusting.app.metadata.auth.federatedCredentials.put({
          id: randomUUID(),
          principalId: sp.principal.id,
          name: 'late',
          issuer: late.issuer,
          audiences: ['berth'],
          subject: '*',
          conditions: [],
          createdAt: clock.now(),
        });
        late.setDown(true);
        const token = await late.github({ repository: 'x/y' });
        const down = await postForm(trusting.url, '/oauth2/token', assertion(token, 'late-ci'));
        assert.equal(down.status, 401);
        assert.match(((await down.json()) as { error_description: string }).error_description, /issuer's signing keys could not be fetched/);
        assert.equal((await fetch(`${trusting.url}/v2/`)).status, 401, 'the registry itself is unaffected');
        late.setDown(false);
        clock.offset += 10_000; // past the discovery retry delay
        const up = await postForm(trusting.url, '/oauth2/token', assertion(token, 'late-ci'));
        assert.equal(up.status, 200, await up.clone().text());
      } finally {
        clock.offset = 0;
        await trusting.stop();
        await late.stop();
      }
    });

    it('works with a static JWKS and no reachable issuer', async () => {
      const offline = await startOidcIssuer({ alg: 'ES256' });
      const jwks = offline.jwks();
      const token = await offline.kubernetes({ namespace: 'prod', serviceAccount: 'web' });
      offline.setDown(true);
      const trusting = await startTestServer({ auth: true, clock, federationIssuers: [{ issuer: offline.issuer, jwks }] });
      try {
        const sp = await trusting.app.auth.principals.createPrincipal('service', 'private-cluster', {
          grants: [{ pattern: '**', permission: 'pull' }],
          withoutSecret: true,
        });
        await trusting.app.metadata.auth.federatedCredentials.put({
          id: randomUUID(),
          principalId: sp.principal.id,
          name: 'k8s',
          issuer: offline.issuer,
          audiences: ['berth'],
          subject: 'system:serviceaccount:prod:*',
          conditions: [],
          createdAt: clock.now(),
        });
        const res = await postForm(trusting.url, '/oauth2/token', {
          grant_type: tokenExchange,
          subject_token: token,
          subject_token_type: jwtType,
          service: 'berth',
        });
        assert.equal(res.status, 200, await res.clone().text());
        assert.equal(offline.jwksFetches, 0);
      } finally {
        await trusting.stop();
        await offline.stop();
      }
    });
  });

  describe('lifetimes and provenance', () => {
    it('a refresh token never outlives the OIDC token that bought it', async () => {
      const oidc = await github.github({ repository: 'acme/app' }, { expiresIn: 120 });
      const res = await postForm(base, '/oauth2/exchange', { grant_type: 'access_token', service: 'berth', access_token: oidc, client_id: 'ci-pusher' });
      const { refresh_token } = (await res.json()) as { refresh_token: string };
      const payload = JSON.parse(Buffer.from(refresh_token.split('.')[1] ?? '', 'base64url').toString()) as { exp: number; iat: number };
      assert.ok(payload.exp - payload.iat <= 121, `refresh token lives ${payload.exp - payload.iat}s`);
    });

    it('no exchange or refresh stretches a federated login past the OIDC token', async () => {
      const lifetime = (token: string) => {
        const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { exp: number };
        return payload.exp - Math.floor(clock.now() / 1000);
      };
      const oidc = await github.github({ repository: 'acme/app' }, { expiresIn: 120 });
      const identity = (await (await postForm(base, '/oauth2/token', assertion(oidc, 'ci-pusher'))).json()) as { access_token: string };
      const exchanged = await postForm(base, '/oauth2/exchange', { grant_type: 'access_token', service: 'berth', access_token: identity.access_token });
      assert.equal(exchanged.status, 200, await exchanged.clone().text());
      const { refresh_token } = (await exchanged.json()) as { refresh_token: string };
      assert.ok(lifetime(refresh_token) <= 121, `exchanged refresh token lives ${lifetime(refresh_token)}s`);
      const refreshed = (await (
        await postForm(base, '/oauth2/token', { grant_type: 'refresh_token', refresh_token, service: 'berth', scope: 'repository:acme/app:push' })
      ).json()) as { access_token: string };
      const again = await postForm(base, '/oauth2/exchange', { grant_type: 'access_token', service: 'berth', access_token: refreshed.access_token });
      const second = ((await again.json()) as { refresh_token: string }).refresh_token;
      assert.ok(lifetime(second) <= 121, `a second exchange lives ${lifetime(second)}s`);
      const renewed = await postForm(base, '/oauth2/exchange', { grant_type: 'refresh_token', service: 'berth', refresh_token });
      assert.equal(renewed.status, 200, await renewed.clone().text());
      const third = ((await renewed.json()) as { refresh_token: string }).refresh_token;
      assert.ok(lifetime(third) <= 121, `a renewal lives ${lifetime(third)}s`);
    });

    it('records who pushed, with the workflow run that did it', async () => {
      const oidc = await github.github({ repository: 'acme/app', sha: 'feedface', run_id: '777' });
      const { access_token } = (await (await postForm(base, '/oauth2/token', assertion(oidc, 'ci-pusher'))).json()) as { access_token: string };
      const config = Buffer.from('{}');
      const digest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
      await fetch(`${base}/v2/acme/app/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: bearer(access_token), body: config });
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest, size: 2 },
        layers: [],
      });
      const put = await fetch(`${base}/v2/acme/app/manifests/v1`, {
        method: 'PUT',
        headers: { ...bearer(access_token), 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
        body: manifest,
      });
      assert.equal(put.status, 201);
      const [latest] = await server.app.metadata.manifests.history('acme/app', { tag: 'v1', limit: 1 });
      assert.equal(latest?.principalName, 'ci-pusher');
      assert.equal(latest?.provenance?.['iss'], github.issuer);
      assert.equal(latest?.provenance?.['sha'], 'feedface');
      assert.equal(latest?.provenance?.['run_id'], '777');
      assert.equal(latest?.provenance?.['repository'], 'acme/app');
    });
  });
});
