/**
 * "No token buys more than it was given": every way one token derives from another (the exchange of
 * an access token, a refresh token's renewal, named and unreadable scopes, a refresh token's
 * redemption) is held to the scope and the end of what bought it (auth/token-bounds.ts).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { refreshTokenUser } from '../../src/auth/token-endpoint.js';
import { startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';
import { basic, bearer, postForm, tokenFor } from './helpers.js';

const clock = { offset: 0, now: () => Date.now() + clock.offset };
/** The registry's default refresh-token lifetime (3 hours): what a derived token must not get for free. */
const refreshLifetimeS = 3 * 3600;

function claims(token: string): { exp: number; iat: number; lim?: string } {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp: number; iat: number; lim?: string };
}

describe('tokens never widen', () => {
  let server: TestServer;
  let github: OidcIssuer;
  let base = '';
  let dev = { id: '', secret: '' };

  /** What a refresh token buys when asked for `scope`: the granted scope, or undefined for nothing. */
  const grantedBy = async (refreshToken: string, scope: string): Promise<string | undefined> => {
    const res = await postForm(base, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: refreshToken, service: 'berth', scope });
    assert.equal(res.status, 200, await res.clone().text());
    return ((await res.json()) as { scope?: string }).scope;
  };
  const exchange = async (form: Record<string, string>): Promise<Response> => postForm(base, '/oauth2/exchange', { service: 'berth', ...form });
  const refreshTokenFrom = async (res: Response): Promise<string> => {
    assert.equal(res.status, 200, await res.clone().text());
    return ((await res.json()) as { refresh_token: string }).refresh_token;
  };
  const offlineLogin = async (user: string, password: string): Promise<string> => String((await tokenFor(base, user, password, [], true))['refresh_token']);

  before(async () => {
    github = await startOidcIssuer();
    // A cap longer than any OIDC token here: it must only ever shorten a federated login.
    server = await startTestServer({ auth: true, clock, federationIssuers: [{ issuer: github.issuer }], federationLifetimeCapMs: 3600_000 });
    base = server.url;
    const created = await server.app.auth.principals.createPrincipal('user', 'dev', { grants: [{ pattern: 'team/*', permission: 'push' }] });
    dev = { id: created.principal.id, secret: created.secret ?? '' };
  });
  after(async () => {
    clock.offset = 0;
    await server.stop();
    await github.stop();
  });

  describe('/oauth2/exchange with a Berth access token', () => {
    it('a leaked pull token for one repository buys a refresh token for that pull only, ending when the pull token does', async () => {
      const access = await tokenFor(base, 'dev', dev.secret, ['repository:team/x:pull']);
      const accessExp = claims(String(access['token'])).exp;
      const refresh = await refreshTokenFrom(await exchange({ grant_type: 'access_token', access_token: String(access['token']) }));
      assert.equal(await grantedBy(refresh, 'repository:team/x:pull,push'), 'repository:team/x:pull');
      assert.equal(await grantedBy(refresh, 'repository:team/y:pull,push'), undefined);
      assert.ok(claims(refresh).exp <= accessExp, `the refresh token ends ${claims(refresh).exp - accessExp}s after the access token`);
      // Renewing it buys no more time: the session ends with the access token.
      const renewed = await refreshTokenFrom(await exchange({ grant_type: 'refresh_token', refresh_token: refresh }));
      assert.ok(claims(renewed).exp <= accessExp, `a renewal ends ${claims(renewed).exp - accessExp}s after the access token`);
      assert.equal(await grantedBy(renewed, 'repository:team/y:push'), undefined);
    });

    it('refuses an access token that grants nothing, pointing at grant_type=refresh_token', async () => {
      const empty = await tokenFor(base, 'dev', dev.secret, []);
      const res = await exchange({ grant_type: 'access_token', access_token: String(empty['token']) });
      assert.equal(res.status, 400);
      const body = (await res.json()) as { error: string; error_description: string };
      assert.equal(body.error, 'invalid_grant');
      assert.match(body.error_description, /grant_type=refresh_token/);
    });
  });

  describe('renewal: /oauth2/exchange grant_type=refresh_token', () => {
    it('keeps the ceiling of a bound token and gives a password login a fresh lifetime', async () => {
      const login = await offlineLogin('dev', dev.secret);
      const bound = await refreshTokenFrom(await exchange({ grant_type: 'refresh_token', refresh_token: login, scope: 'repository:team/x:pull' }));
      const renewed = await refreshTokenFrom(await exchange({ grant_type: 'refresh_token', refresh_token: bound }));
      assert.equal(claims(renewed).lim, 'repository:team/x:pull');
      assert.equal(await grantedBy(renewed, 'repository:team/x:pull,push'), 'repository:team/x:pull');
      assert.equal(await grantedBy(renewed, 'repository:team/y:pull'), undefined);
      const { exp, iat } = claims(renewed);
      assert.ok(exp - iat > refreshLifetimeS - 60, 'a full lifetime: nothing bounds a password login but its secret and principal');
      // Asking for more scope than the bound narrows to nothing new.
      const widened = await refreshTokenFrom(await exchange({ grant_type: 'refresh_token', refresh_token: bound, scope: 'repository:team/y:push' }));
      assert.equal(await grantedBy(widened, 'repository:team/y:push'), undefined);
    });
  });

  describe('scopes that do not parse narrow to nothing', () => {
    it('on the exchange and on an RFC 8693 request for a refresh token', async () => {
      const login = await offlineLogin('dev', dev.secret);
      const garbled = await refreshTokenFrom(await exchange({ grant_type: 'refresh_token', refresh_token: login, scope: 'repository::pull team/x' }));
      assert.equal(claims(garbled).lim, '', 'an empty ceiling, not none');
      assert.equal(await grantedBy(garbled, 'repository:team/x:pull'), undefined);
      const byPassword = await refreshTokenFrom(await exchange({ grant_type: 'password', username: 'dev', password: dev.secret, scope: 'nonsense' }));
      assert.equal(await grantedBy(byPassword, 'repository:team/x:push'), undefined);

      const credential = await trustGithub('rfc8693', 'team/*');
      try {
        const res = await postForm(base, '/oauth2/token', {
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: await githubToken(),
          subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
          requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token',
          service: 'berth',
          scope: ':::',
        });
        assert.equal(res.status, 200, await res.clone().text());
        const refresh = ((await res.json()) as { access_token: string }).access_token;
        assert.equal(await grantedBy(refresh, 'repository:team/x:pull'), undefined);
      } finally {
        await credential.remove();
      }
    });
  });

  describe('a refresh token never outlives what bought it', () => {
    it("the secret's expiresAt: it ends then, and is refused after it however it was renewed", async () => {
      const { principals } = server.app.auth;
      const user = await principals.createPrincipal('user', 'short-secret', { grants: [{ pattern: 'team/*', permission: 'pull' }] });
      const secretEnds = clock.now() + 10 * 60_000;
      const secret = await principals.setSecret(user.principal.id, 'password', { expiresAt: secretEnds });
      const refresh = await offlineLogin('short-secret', secret);
      assert.ok(claims(refresh).exp * 1000 <= secretEnds, 'ends with the secret');
      const renewed = await refreshTokenFrom(await exchange({ grant_type: 'refresh_token', refresh_token: refresh }));
      assert.ok(claims(renewed).exp * 1000 <= secretEnds, 'a renewal ends with the secret too');
      clock.offset = 11 * 60_000;
      try {
        const res = await postForm(base, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: renewed, service: 'berth' });
        assert.equal(res.status, 401);
      } finally {
        clock.offset = 0;
      }
    });

    it("the principal's expiresAt", async () => {
      const principalEnds = clock.now() + 10 * 60_000;
      const user = await server.app.auth.principals.createPrincipal('user', 'short-lived', {
        grants: [{ pattern: 'team/*', permission: 'pull' }],
        expiresAt: principalEnds,
      });
      const refresh = await offlineLogin('short-lived', user.secret ?? '');
      assert.ok(claims(refresh).exp * 1000 <= principalEnds, `ends ${claims(refresh).exp - principalEnds / 1000}s after the principal`);
    });

    it('its secret, even when the secret went away without revoking it (a race with the removal)', async () => {
      const { principals } = server.app.auth;
      const user = await principals.createPrincipal('user', 'racer', { grants: [{ pattern: 'team/*', permission: 'pull' }] });
      const refresh = await offlineLogin('racer', user.secret ?? '');
      assert.equal(await grantedBy(refresh, 'repository:team/x:pull'), 'repository:team/x:pull');
      // The store alone: what a token issued between an admin's removal and its revocation sees.
      await server.app.metadata.auth.credentials.remove(user.principal.id, 'password');
      const res = await postForm(base, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: refresh, service: 'berth' });
      assert.equal(res.status, 401);
      assert.match(((await res.json()) as { error_description: string }).error_description, /rotated, replaced or removed/);
      assert.equal((await exchange({ grant_type: 'refresh_token', refresh_token: refresh })).status, 401, 'nor renewed');
    });

    it('its federated credential, replaced or removed', async () => {
      const credential = await trustGithub('gone', 'team/*');
      const refresh = await refreshTokenFrom(await exchange({ grant_type: 'access_token', access_token: await githubToken(), client_id: credential.client }));
      assert.equal(await grantedBy(refresh, 'repository:team/x:pull'), 'repository:team/x:pull');
      await server.app.metadata.auth.federatedCredentials.remove(credential.principalId, 'gha');
      const res = await postForm(base, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: refresh, service: 'berth' });
      assert.equal(res.status, 401);
      await credential.remove();
    });

    it('the OIDC token, whatever federation.lifetimeCapMs says', async () => {
      const credential = await trustGithub('oidc-end', 'team/*');
      try {
        const oidc = await githubToken(120);
        const oidcExp = claims(oidc).exp;
        const refresh = await refreshTokenFrom(await exchange({ grant_type: 'access_token', access_token: oidc, client_id: credential.client }));
        assert.ok(claims(refresh).exp <= oidcExp, `outlives the OIDC token by ${claims(refresh).exp - oidcExp}s`);
        const renewed = await refreshTokenFrom(await exchange({ grant_type: 'refresh_token', refresh_token: refresh }));
        assert.ok(claims(renewed).exp <= oidcExp, `a renewal outlives the OIDC token by ${claims(renewed).exp - oidcExp}s`);
      } finally {
        await credential.remove();
      }
    });
  });

  describe('the catalog honours the ceiling of the token', () => {
    it('a token bound to one repository lists that one, though its principal reads the whole registry', async () => {
      const owner = await tokenFor(base, ownerName, ownerPassword, ['repository:cat/a:pull,push', 'repository:cat/b:pull,push']);
      for (const repository of ['cat/a', 'cat/b']) {
        const put = await fetch(`${base}/v2/${repository}/manifests/v1`, {
          method: 'PUT',
          headers: { ...bearer(owner['token']), 'Content-Type': 'application/vnd.oci.image.index.v1+json' },
          body: JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] }),
        });
        assert.equal(put.status, 201);
      }
      const reader = await server.app.auth.principals.createPrincipal('user', 'reads-all', { grants: [{ pattern: '**', permission: 'pull' }] });
      const login = await offlineLogin('reads-all', reader.secret ?? '');
      const bound = await refreshTokenFrom(
        await exchange({ grant_type: 'refresh_token', refresh_token: login, scope: 'registry:catalog:* repository:cat/a:pull' }),
      );
      const catalogToken = await fetch(`${base}/oauth2/token?service=berth&scope=registry:catalog:*`, {
        headers: { Authorization: basic(refreshTokenUser, bound) },
      });
      const { token } = (await catalogToken.json()) as { token: string };
      const listed = await fetch(`${base}/v2/_catalog`, { headers: bearer(token) });
      assert.equal(listed.status, 200);
      const { repositories } = (await listed.json()) as { repositories: string[] };
      assert.deepEqual(repositories, ['cat/a']);
    });
  });

  /** A service principal with pull on `pattern`, trusting this test's GitHub issuer for acme/app. */
  async function trustGithub(name: string, pattern: string): Promise<{ client: string; principalId: string; remove(): Promise<void> }> {
    const created = await server.app.auth.principals.createPrincipal('service', name, { grants: [{ pattern, permission: 'pull' }], withoutSecret: true });
    await server.app.metadata.auth.federatedCredentials.put({
      id: randomUUID(),
      principalId: created.principal.id,
      name: 'gha',
      issuer: github.issuer,
      audiences: [await server.app.auth.audience.get()],
      subject: 'repo:acme/app:*',
      conditions: [],
      createdAt: clock.now(),
    });
    return {
      client: name,
      principalId: created.principal.id,
      remove: async () => void (await server.app.metadata.auth.principals.delete(created.principal.id)),
    };
  }

  async function githubToken(expiresIn = 300): Promise<string> {
    return github.github({ repository: 'acme/app', audience: await server.app.auth.audience.get() }, { expiresIn });
  }
});
