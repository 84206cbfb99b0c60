import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { refreshTokenUser } from '../../src/auth/token-endpoint.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';
import { basic, bearer, parseChallenge, postForm, tokenFor } from './helpers.js';

const clock = { offset: 0, now: () => Date.now() + clock.offset };
const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

describe('token service', () => {
  let server: TestServer;
  let base = '';
  const puller = { name: 'puller', secret: '' };
  const pusher = { name: 'pusher', secret: '' };

  before(async () => {
    server = await startTestServer({ auth: true, clock });
    base = server.url;
    const { principals } = server.app.auth;
    puller.secret = (await principals.createPrincipal('user', 'puller', { grants: [{ pattern: 'team-a/*', permission: 'pull' }] })).secret ?? '';
    pusher.secret = (await principals.createPrincipal('user', 'pusher', { grants: [{ pattern: 'team-a/*', permission: 'push' }] })).secret ?? '';
  });
  after(async () => server.stop());

  describe('the 401 challenge', () => {
    it('answers an anonymous registry request with 401 UNAUTHORIZED and a Bearer challenge naming realm, service and scope', async () => {
      const res = await fetch(`${base}/v2/team-a/app/tags/list`);
      assert.equal(res.status, 401);
      const challenge = parseChallenge(res.headers.get('www-authenticate'));
      assert.equal(challenge['realm'], `${base}/oauth2/token`);
      assert.equal(challenge['service'], 'berth');
      assert.equal(challenge['scope'], 'repository:team-a/app:pull');
      assert.equal(((await res.json()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'UNAUTHORIZED');
    });

    it('asks for pull,push on an upload and for registry:catalog:* on the catalog', async () => {
      const upload = await fetch(`${base}/v2/team-a/app/blobs/uploads/`, { method: 'POST' });
      assert.equal(parseChallenge(upload.headers.get('www-authenticate'))['scope'], 'repository:team-a/app:pull,push');
      const catalog = await fetch(`${base}/v2/_catalog`);
      assert.equal(parseChallenge(catalog.headers.get('www-authenticate'))['scope'], 'registry:catalog:*');
    });

    it('marks a garbage token with error="invalid_token"', async () => {
      const res = await fetch(`${base}/v2/`, { headers: bearer('not.a.jwt') });
      assert.equal(res.status, 401);
      assert.equal(parseChallenge(res.headers.get('www-authenticate'))['error'], 'invalid_token');
    });
  });

  describe('GET /oauth2/token', () => {
    it('issues {token, access_token, expires_in, issued_at} holding what was asked and allowed', async () => {
      const body = await tokenFor(base, puller.name, puller.secret, ['repository:team-a/app:pull,push']);
      assert.equal(body['token'], body['access_token']);
      assert.equal(body['expires_in'], 300);
      assert.match(String(body['issued_at']), /^\d{4}-\d\d-\d\dT/);
      assert.equal(body['scope'], 'repository:team-a/app:pull');
      const res = await fetch(`${base}/v2/team-a/app/tags/list`, { headers: bearer(body['token']) });
      assert.equal(res.status, 404); // allowed; the repository simply does not exist yet
    });

    it("grants nothing (but still a token) outside the principal's patterns, and the registry answers 403 DENIED", async () => {
      const body = await tokenFor(base, puller.name, puller.secret, ['repository:team-b/app:pull']);
      assert.equal(body['scope'], undefined);
      const res = await fetch(`${base}/v2/team-b/app/tags/list`, { headers: bearer(body['token']) });
      assert.equal(res.status, 403);
      assert.equal(((await res.json()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'DENIED');
    });

    it('answers 401 insufficient_scope when the principal could have the right but the token lacks it', async () => {
      const body = await tokenFor(base, pusher.name, pusher.secret, ['repository:team-a/app:pull']);
      const res = await fetch(`${base}/v2/team-a/app/blobs/uploads/`, { method: 'POST', headers: bearer(body['token']) });
      assert.equal(res.status, 401);
      const challenge = parseChallenge(res.headers.get('www-authenticate'));
      assert.equal(challenge['error'], 'insufficient_scope');
      assert.equal(challenge['scope'], 'repository:team-a/app:pull,push');
    });

    it('refuses wrong credentials with 401 invalid_grant and the same message for unknown users', async () => {
      const wrong = await fetch(`${base}/oauth2/token?service=berth`, { headers: { Authorization: basic(puller.name, 'nope') } });
      const unknown = await fetch(`${base}/oauth2/token?service=berth`, { headers: { Authorization: basic('ghost', 'nope') } });
      assert.equal(wrong.status, 401);
      assert.equal(unknown.status, 401);
      assert.deepEqual(await wrong.json(), await unknown.json());
    });

    it('refuses an unknown service with 400 invalid_request', async () => {
      const res = await fetch(`${base}/oauth2/token?service=elsewhere`, { headers: { Authorization: basic(puller.name, puller.secret) } });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_request');
    });

    it('handles scope names with host:port and several scopes', async () => {
      const body = await tokenFor(base, ownerName, ownerPassword, ['repository:localhost:5000/x:pull', 'repository:team-a/app:pull,push']);
      assert.equal(body['scope'], 'repository:localhost:5000/x:pull repository:team-a/app:pull,push');
    });
  });

  describe('refresh tokens', () => {
    it('offline_token=true adds a refresh token that POST grant_type=refresh_token and the 0000… user both redeem', async () => {
      const first = await tokenFor(base, pusher.name, pusher.secret, [], true);
      const refresh = String(first['refresh_token']);
      assert.ok(refresh.length > 20);
      const viaGrant = await postForm(base, '/oauth2/token', {
        grant_type: 'refresh_token',
        refresh_token: refresh,
        service: 'berth',
        scope: 'repository:team-a/app:pull,push repository:team-a/other:pull',
      });
      assert.equal(viaGrant.status, 200);
      assert.equal(((await viaGrant.json()) as { scope: string }).scope, 'repository:team-a/app:pull,push repository:team-a/other:pull');
      const viaBasic = await tokenFor(base, refreshTokenUser, refresh, ['repository:team-a/app:pull']);
      assert.equal(viaBasic['scope'], 'repository:team-a/app:pull');
    });

    it('POST grant_type=password with access_type=offline returns both tokens', async () => {
      const res = await postForm(base, '/oauth2/token', {
        grant_type: 'password',
        username: puller.name,
        password: puller.secret,
        service: 'berth',
        scope: 'repository:team-a/app:pull',
        access_type: 'offline',
        client_id: 'test',
      });
      assert.equal(res.status, 200);
      const body = (await res.json()) as Record<string, unknown>;
      assert.ok(body['access_token'] && body['refresh_token']);
    });

    it('stops working when its principal is disabled, and when its credential is rotated', async () => {
      const { principals } = server.app.auth;
      const created = await principals.createPrincipal('user', 'temp', { grants: [{ pattern: 'team-a/*', permission: 'pull' }] });
      const refresh = String((await tokenFor(base, 'temp', created.secret ?? '', [], true))['refresh_token']);
      await principals.setDisabled(created.principal.id, true);
      const afterDisable = await postForm(base, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: refresh, service: 'berth' });
      assert.equal(afterDisable.status, 401);
      await principals.setDisabled(created.principal.id, false);

      const fresh = String((await tokenFor(base, 'temp', created.secret ?? '', [], true))['refresh_token']);
      await principals.setSecret(created.principal.id, 'password');
      const afterRotate = await postForm(base, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: fresh, service: 'berth' });
      assert.equal(afterRotate.status, 401);
    });

    it('a refresh token is not accepted as an access token, nor an access token as a refresh token', async () => {
      const body = await tokenFor(base, ownerName, ownerPassword, ['repository:team-a/app:pull'], true);
      const asAccess = await fetch(`${base}/v2/team-a/app/tags/list`, { headers: bearer(body['refresh_token']) });
      assert.equal(asAccess.status, 401);
      const asRefresh = await postForm(base, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: String(body['token']), service: 'berth' });
      assert.equal(asRefresh.status, 401);
    });
  });

  describe('POST /oauth2/exchange', () => {
    it('exchanges a Berth access token for a refresh token (ACR shape) holding no more than that token', async () => {
      const access = await tokenFor(base, pusher.name, pusher.secret, ['repository:team-a/app:push']);
      const res = await postForm(base, '/oauth2/exchange', { grant_type: 'access_token', service: 'berth', access_token: String(access['token']) });
      assert.equal(res.status, 200);
      const { refresh_token } = (await res.json()) as { refresh_token: string };
      const redeemed = await tokenFor(base, refreshTokenUser, refresh_token, ['repository:team-a/app:push']);
      assert.equal(redeemed['scope'], 'repository:team-a/app:push');
      const elsewhere = await tokenFor(base, refreshTokenUser, refresh_token, ['repository:team-a/other:push']);
      assert.equal(elsewhere['scope'], undefined, 'the access token held team-a/app only');
    });

    it('refuses a forged access token with 401 invalid_grant', async () => {
      const res = await postForm(base, '/oauth2/exchange', { grant_type: 'access_token', service: 'berth', access_token: 'x.y.z' });
      assert.equal(res.status, 401);
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_grant');
    });
  });

  describe('tokens the registry refuses', () => {
    async function forged(header: Record<string, unknown>, claims: Record<string, unknown>, key: Parameters<SignJWT['sign']>[0]): Promise<string> {
      return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key);
    }
    const now = () => Math.floor(clock.now() / 1000);
    const goodClaims = () => ({
      iss: 'berth',
      aud: 'berth',
      sub: 'someone',
      iat: now(),
      nbf: now(),
      exp: now() + 300,
      access: [{ type: 'repository', name: 'team-a/app', actions: ['pull'] }],
    });
    async function refused(token: string): Promise<void> {
      const res = await fetch(`${base}/v2/team-a/app/tags/list`, { headers: bearer(token) });
      assert.equal(res.status, 401, `expected 401 for ${token.slice(0, 40)}…`);
      assert.equal(parseChallenge(res.headers.get('www-authenticate'))['error'], 'invalid_token');
    }
    async function realKid(): Promise<string> {
      const { keys } = (await (await fetch(`${base}/oauth2/jwks`)).json()) as { keys: Array<{ kid: string; x: string; y: string }> };
      return keys[0]?.kid ?? '';
    }

    it('a tampered signature', async () => {
      const token = String((await tokenFor(base, ownerName, ownerPassword, ['repository:team-a/app:pull']))['token']);
      const [h, p, s] = token.split('.');
      const payload = JSON.parse(Buffer.from(p ?? '', 'base64url').toString()) as { access: Array<{ name: string }> };
      payload.access[0] = { ...payload.access[0], name: 'team-b/app' } as { name: string };
      await refused(`${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`);
    });

    it('alg: none', async () => {
      const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url');
      await refused(`${header}.${Buffer.from(JSON.stringify(goodClaims())).toString('base64url')}.`);
    });

    it('HS256 signed with the public key as the secret', async () => {
      const kid = await realKid();
      const { keys } = (await (await fetch(`${base}/oauth2/jwks`)).json()) as { keys: unknown[] };
      const secret = Buffer.from(JSON.stringify(keys[0]));
      const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid })).toString('base64url');
      const payload = Buffer.from(JSON.stringify(goodClaims())).toString('base64url');
      const signature = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
      await refused(`${header}.${payload}.${signature}`);
    });

    it('an unknown kid, and a known kid with a foreign key', async () => {
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      await refused(await forged({ alg: 'ES256', typ: 'at+jwt', kid: 'nope' }, goodClaims(), privateKey));
      await refused(await forged({ alg: 'ES256', typ: 'at+jwt', kid: await realKid() }, goodClaims(), privateKey));
      assert.ok(await exportJWK(publicKey));
    });

    it('wrong aud, wrong iss, expired, not yet valid', async () => {
      // Sign with Berth's own key through the token service, then bend one claim at a time.
      const keys = server.app.auth.keys;
      const key = await keys.signingKey();
      const sign = (claims: Record<string, unknown>) => forged({ alg: 'ES256', typ: 'at+jwt', kid: key.kid }, claims, key.privateKey);
      const ok = await sign(goodClaims());
      assert.equal((await fetch(`${base}/v2/team-a/app/tags/list`, { headers: bearer(ok) })).status, 404, 'the control token works');
      await refused(await sign({ ...goodClaims(), aud: 'other' }));
      await refused(await sign({ ...goodClaims(), iss: 'other' }));
      await refused(await sign({ ...goodClaims(), exp: now() - 120, iat: now() - 600, nbf: now() - 600 }));
      await refused(await sign({ ...goodClaims(), nbf: now() + 600, iat: now() + 600, exp: now() + 900 }));
    });
  });

  describe('scopes on the wire', () => {
    it('a token for repository A cannot read or write repository B; pull-only cannot push', async () => {
      const layer = randomBytes(64);
      const owner = await tokenFor(base, ownerName, ownerPassword, ['repository:team-a/app:pull,push', 'repository:team-a/other:pull,push']);
      const push = await fetch(`${base}/v2/team-a/app/blobs/uploads/?digest=${sha256(layer)}`, {
        method: 'POST',
        headers: bearer(owner['token']),
        body: layer,
      });
      assert.equal(push.status, 201);

      const onlyA = await tokenFor(base, pusher.name, pusher.secret, ['repository:team-a/app:pull,push']);
      const readB = await fetch(`${base}/v2/team-a/other/blobs/${sha256(layer)}`, { headers: bearer(onlyA['token']) });
      assert.equal(readB.status, 401);
      const pullOnly = await tokenFor(base, puller.name, puller.secret, ['repository:team-a/app:pull,push']);
      const denied = await fetch(`${base}/v2/team-a/app/blobs/uploads/`, { method: 'POST', headers: bearer(pullOnly['token']) });
      assert.equal(denied.status, 403);
      const read = await fetch(`${base}/v2/team-a/app/blobs/${sha256(layer)}`, { headers: bearer(pullOnly['token']) });
      assert.equal(read.status, 200);
    });

    it('cancelling an upload needs push on the repository, not delete', async () => {
      const { principals } = server.app.auth;
      const deleter =
        (await principals.createPrincipal('user', 'upload-deleter', { grants: [{ pattern: 'team-a/*', permission: 'content/delete' }] })).secret ?? '';
      const push = await tokenFor(base, pusher.name, pusher.secret, ['repository:team-a/app:pull,push']);
      const open = async () => {
        const res = await fetch(`${base}/v2/team-a/app/blobs/uploads/`, { method: 'POST', headers: bearer(push['token']) });
        assert.equal(res.status, 202);
        return new URL(res.headers.get('location') ?? '', base).toString();
      };
      const session = await open();
      // A principal who may delete content but not push cannot abort someone's push.
      const deleteOnly = await tokenFor(base, 'upload-deleter', deleter, ['repository:team-a/app:delete,pull,push']);
      assert.equal(deleteOnly['scope'], 'repository:team-a/app:delete');
      const refused = await fetch(session, { method: 'DELETE', headers: bearer(deleteOnly['token']) });
      assert.equal(refused.status, 403);
      assert.equal((await fetch(session, { headers: bearer(push['token']) })).status, 204, 'the upload is still there');
      // The pusher cancels with the token it pushes with.
      const cancelled = await fetch(session, { method: 'DELETE', headers: bearer(push['token']) });
      assert.equal(cancelled.status, 204);
      assert.equal((await fetch(session, { headers: bearer(push['token']) })).status, 404);
    });

    it('a mount needs pull on the source repository too', async () => {
      const layer = randomBytes(32);
      const owner = await tokenFor(base, ownerName, ownerPassword, ['repository:secret/app:pull,push']);
      await fetch(`${base}/v2/secret/app/blobs/uploads/?digest=${sha256(layer)}`, { method: 'POST', headers: bearer(owner['token']), body: layer });
      const token = await tokenFor(base, pusher.name, pusher.secret, ['repository:team-a/app:pull,push', 'repository:secret/app:pull']);
      const mount = await fetch(`${base}/v2/team-a/app/blobs/uploads/?mount=${sha256(layer)}&from=secret/app`, {
        method: 'POST',
        headers: bearer(token['token']),
      });
      assert.equal(mount.status, 403);
    });
  });

  describe('the catalog lists what the caller may read', () => {
    let readerSecret = '';
    const emptyIndex = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] });
    const catalog = async (token: unknown, query = ''): Promise<{ status: number; repositories: string[]; link: string | null }> => {
      const res = await fetch(`${base}/v2/_catalog${query}`, { headers: bearer(token) });
      const body = (await res.json()) as { repositories?: string[] };
      return { status: res.status, repositories: body.repositories ?? [], link: res.headers.get('link') };
    };

    before(async () => {
      const repos = ['cat-a/app', 'cat-a/lib', 'cat-b/app'];
      const owner = await tokenFor(
        base,
        ownerName,
        ownerPassword,
        repos.map((r) => `repository:${r}:pull,push`),
      );
      for (const repo of repos) {
        const res = await fetch(`${base}/v2/${repo}/manifests/v1`, {
          method: 'PUT',
          headers: { ...bearer(owner['token']), 'Content-Type': 'application/vnd.oci.image.index.v1+json' },
          body: emptyIndex,
        });
        assert.equal(res.status, 201);
      }
      readerSecret =
        (await server.app.auth.principals.createPrincipal('user', 'cat-reader', { grants: [{ pattern: 'cat-a/*', permission: 'pull' }] })).secret ?? '';
    });

    it('a registry-wide reader (the owner) gets registry:catalog:* and every repository', async () => {
      const owner = await tokenFor(base, ownerName, ownerPassword, ['registry:catalog:*']);
      assert.equal(owner['scope'], 'registry:catalog:*');
      const listed = await catalog(owner['token']);
      for (const repo of ['cat-a/app', 'cat-a/lib', 'cat-b/app']) assert.ok(listed.repositories.includes(repo), repo);
    });

    it('a principal granted some repositories sees only those, page by page', async () => {
      const token = await tokenFor(base, 'cat-reader', readerSecret, ['registry:catalog:*']);
      assert.equal(token['scope'], 'registry:catalog:metadata_read');
      assert.deepEqual((await catalog(token['token'])).repositories, ['cat-a/app', 'cat-a/lib']);
      const first = await catalog(token['token'], '?n=1');
      assert.deepEqual(first.repositories, ['cat-a/app']);
      assert.match(first.link ?? '', /<\/v2\/_catalog\?n=1&last=cat-a%2Fapp>; rel="next"/);
      const second = await catalog(token['token'], '?n=1&last=cat-a%2Fapp');
      assert.deepEqual(second.repositories, ['cat-a/lib']);
      assert.equal(second.link, null);
    });

    it('a principal that reads nothing is denied the catalog', async () => {
      const { secret } = await server.app.auth.principals.createPrincipal('user', 'cat-deleter', { grants: [{ pattern: 'cat-a/*', permission: 'delete' }] });
      const token = await tokenFor(base, 'cat-deleter', secret ?? '', ['registry:catalog:*']);
      assert.equal(token['scope'], undefined);
      assert.equal((await catalog(token['token'])).status, 403);
    });
  });

  describe('anonymous pull (opt-in per repository pattern)', () => {
    it('is refused by default and allowed once a pattern is opted in', async () => {
      assert.equal((await fetch(`${base}/v2/public/app/tags/list`)).status, 401);
      await server.app.metadata.auth.anonymousPull.replace(['public/*'], clock.now());
      clock.offset += 10_000; // past the policy cache
      assert.equal((await fetch(`${base}/v2/public/app/tags/list`)).status, 404);
      const anon = await fetch(`${base}/oauth2/token?service=berth&scope=repository:public/app:pull,push`);
      assert.equal(((await anon.json()) as { scope?: string }).scope, 'repository:public/app:pull');
      assert.equal((await fetch(`${base}/v2/public/app/blobs/uploads/`, { method: 'POST' })).status, 401);
      // An anonymous token's catalog lists the opted-in repositories only (cat-* from above are hidden).
      const anonCatalog = (await (await fetch(`${base}/oauth2/token?service=berth&scope=registry:catalog:*`)).json()) as { token: string; scope?: string };
      assert.equal(anonCatalog.scope, 'registry:catalog:metadata_read');
      const listed = (await (await fetch(`${base}/v2/_catalog`, { headers: bearer(anonCatalog.token) })).json()) as { repositories: string[] };
      assert.ok(
        listed.repositories.every((r) => r.startsWith('public/')),
        JSON.stringify(listed),
      );
      clock.offset -= 10_000;
    });
  });

  describe('security', () => {
    it('throttles failed logins per principal with 429 and Retry-After', async () => {
      const { principals } = server.app.auth;
      const victim = await principals.createPrincipal('user', 'victim', {});
      let last: Response | undefined;
      for (let i = 0; i < 6; i++) last = await fetch(`${base}/oauth2/token?service=berth`, { headers: { Authorization: basic('victim', `wrong${i}`) } });
      assert.equal(last?.status, 429);
      assert.ok(Number(last?.headers.get('retry-after')) > 0);
      const evenRight = await fetch(`${base}/oauth2/token?service=berth`, { headers: { Authorization: basic('victim', victim.secret ?? '') } });
      assert.equal(evenRight.status, 429);
      clock.offset += 16 * 60_000; // let the window pass for the tests that follow
    });

    it('lets parallel right logins of one name from one address all in (CI jobs behind one NAT), and parallel wrong ones are still refused', async () => {
      const { principals } = server.app.auth;
      const ci = await principals.createPrincipal('user', 'parallel-ci', {});
      const right = await Promise.all(
        Array.from({ length: 12 }, () => fetch(`${base}/oauth2/token?service=berth`, { headers: { Authorization: basic('parallel-ci', ci.secret ?? '') } })),
      );
      assert.deepEqual(
        right.map((r) => r.status),
        Array.from({ length: 12 }, () => 200),
      );
      await principals.createPrincipal('user', 'parallel-victim', {});
      const wrong = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          fetch(`${base}/oauth2/token?service=berth`, { headers: { Authorization: basic('parallel-victim', `wrong-${i}`) } }),
        ),
      );
      const statuses = wrong.map((r) => r.status);
      assert.equal(statuses.filter((s) => s === 401).length, 5, `maxFailures verifications, then 429: ${statuses.join(' ')}`);
      assert.equal(statuses.filter((s) => s === 429).length, 7);
      clock.offset += 16 * 60_000; // let the window pass for the tests that follow
    });

    it('writes every issued token to the audit log with principal, scopes and client address', async () => {
      await tokenFor(base, puller.name, puller.secret, ['repository:team-a/audit:pull']);
      const entries = await server.app.metadata.auth.audit.list({ limit: 5 });
      const entry = entries.find((e) => e.event === 'token.issued' && e.principalName === 'puller');
      assert.ok(entry);
      assert.equal(entry.clientAddress?.includes('127.0.0.1'), true);
      assert.deepEqual((entry.detail as { granted: string[] }).granted, ['repository:team-a/audit:pull']);
    });

    it('stores no secret in clear', async () => {
      const rows = await server.app.metadata.auth.credentials.list((await server.app.metadata.auth.principals.findByName('puller'))?.id ?? '');
      assert.ok(rows.every((row) => !row.hash.includes(puller.secret) && row.hash.startsWith('scrypt$')));
    });
  });
});
