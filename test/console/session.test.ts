/**
 * The console's server side, one request at a time: the page and its headers, password and
 * single-sign-on sessions (against a real OpenID provider on loopback), CSRF and same-origin
 * rules, the authorizer deciding session requests like token requests, sign-out on the server,
 * and the browsing endpoints of /api/v1.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tokenFor } from '../auth/helpers.js';
import { Api } from '../admin/helpers.js';
import { listenOidcProvider, type OidcProvider } from '../support/oidc-provider.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';
import { ConsoleClient } from './helpers.js';
import { pushImage, pushIndex, pushReferrer } from './images.js';

describe('console sessions and single sign-on', () => {
  let server: TestServer;
  let provider: OidcProvider;
  let owner: Api;
  let base = '';
  let dir = '';
  let readerSecret = '';
  const clock = { offset: 0, now: () => Date.now() + clock.offset };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-console-'));
    const secretFile = join(dir, 'client-secret');
    const pending = await listenOidcProvider();
    await writeFile(secretFile, 'console-client-secret-0123456789\n');
    server = await startTestServer({
      auth: true,
      clock,
      config: {
        console: {
          sessionLifetimeMs: 3600_000,
          idleTimeoutMs: 600_000,
          sso: [
            {
              name: 'corp',
              displayName: 'Corp SSO',
              issuer: pending.issuer,
              clientId: 'berth-console',
              clientSecretFile: secretFile,
              allowInsecureLoopback: true,
              rules: [
                { claims: [{ claim: 'groups', equals: 'platform' }], grants: [{ pattern: '**', permission: 'owner' }] },
                {
                  claims: [
                    { claim: 'email', glob: '*@example.com' },
                    { claim: 'groups', oneOf: ['dev', 'qa'] },
                  ],
                  grants: [{ pattern: 'team/*', permission: 'push' }],
                },
              ],
            },
          ],
        },
      },
    });
    base = server.url;
    provider = await pending.start(`${base}/console/sso/corp/callback`, [
      { email: 'ada@example.com', groups: ['dev'] },
      { email: 'lin@example.com', groups: ['platform'] },
      { email: 'eve@example.com', groups: ['sales'] },
      { email: 'owner', groups: ['platform'] },
      { email: 'unverified@example.com', groups: ['dev'], emailVerified: false },
    ]);
    owner = await Api.asOwner(base);
    const reader = await owner.post('/principals', { kind: 'user', name: 'reader', grants: [{ pattern: 'team/*', permission: 'pull' }] });
    readerSecret = reader.body.secret.value;
    const token = String(
      (
        await tokenFor(base, ownerName, ownerPassword, [
          'repository:team/app:pull,push',
          'repository:other/secret:pull,push',
          'repository:team/multi:pull,push',
        ])
      )['token'],
    );
    const image = await pushImage(base, token, 'team/app', 'v1', { annotations: { 'org.opencontainers.image.title': 'app' } });
    await pushReferrer(base, token, 'team/app', image, 'application/vnd.dev.cosign.signature', { 'dev.example.note': 'signed' });
    await pushImage(base, token, 'other/secret', 'v1');
    await pushIndex(base, token, 'team/multi', 'latest');
  });

  after(async () => {
    await server.stop();
    await provider.stop();
    await rm(dir, { recursive: true, force: true });
  });

  describe('the page', () => {
    it('serves the console at / with a strict CSP, no framing, and revalidation; hashed assets are immutable', async () => {
      const res = await fetch(`${base}/`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
      const csp = res.headers.get('content-security-policy') ?? '';
      for (const directive of ["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"])
        assert.ok(csp.includes(directive), csp);
      assert.ok(!csp.includes('unsafe-inline') && !csp.includes('unsafe-eval'), csp);
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('cache-control'), 'no-cache');
      const html = await res.text();
      assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
      assert.doesNotMatch(html, /https?:\/\//, 'nothing from elsewhere');
      const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
      assert.ok(script, html);
      const asset = await fetch(`${base}${script}`);
      assert.equal(asset.status, 200);
      assert.equal(asset.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.match(asset.headers.get('content-type') ?? '', /^text\/javascript/);
      const again = await fetch(`${base}${script}`, { headers: { 'If-None-Match': asset.headers.get('etag') ?? '' } });
      assert.equal(again.status, 304);
      assert.equal((await fetch(`${base}/assets/nope.js`)).status, 404);
      assert.equal((await fetch(`${base}/assets/..%2fpackage.json`)).status, 404);
    });
  });

  describe('password sign-in', () => {
    it('refuses a wrong password with a sentence, and signs in through the token service with an HttpOnly, SameSite=Strict cookie', async () => {
      const client = new ConsoleClient(base);
      const wrong = await client.signIn('reader', 'not-the-password');
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.errors[0].message, 'The name or password is wrong. Check both and try again.');
      const ok = await client.signIn('reader', readerSecret);
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.body.signedIn, true);
      assert.equal(ok.body.user.name, 'reader');
      assert.equal(ok.body.user.owner, false);
      assert.equal(ok.body.user.method, 'password');
      assert.match(ok.body.csrfToken, /^[A-Za-z0-9_-]{43}$/);
      const cookie = client.jar.raw.get('berth_session') ?? '';
      assert.match(cookie, /; HttpOnly/);
      assert.match(cookie, /; SameSite=Strict/);
      assert.match(cookie, /; Path=\//);
      assert.doesNotMatch(cookie, /Secure/, 'plain HTTP on loopback: no Secure flag');
      assert.doesNotMatch(ok.text, new RegExp(client.jar.values.get('berth_session') ?? 'x'), 'the session id is never in a body');
      const entries = (await owner.get('/audit?limit=5')).body.entries.map((e: { event: string }) => e.event);
      assert.ok(entries.includes('console.signed_in') && entries.includes('token.issued'), entries.join());
    });

    it('refuses sign-in from another site, and as a form post (only JSON)', async () => {
      const client = new ConsoleClient(base);
      const cross = await client.call('POST', '/console/session', { body: { username: 'reader', password: readerSecret }, origin: 'http://evil.example' });
      assert.equal(cross.status, 403);
      assert.match(cross.body.errors[0].message, /another origin/);
      const form = await client.call('POST', '/console/session', {
        body: `username=reader&password=${encodeURIComponent(readerSecret)}`,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      });
      assert.equal(form.status, 400);
      assert.equal(client.jar.values.size, 0);
    });

    it('does not let a service principal or a refresh token sign in', async () => {
      const service = await owner.post('/principals', { kind: 'service', name: 'ci-bot', grants: [] });
      const client = new ConsoleClient(base);
      const reply = await client.signIn('ci-bot', service.body.secret.value);
      assert.equal(reply.status, 401);
      assert.match(reply.body.errors[0].message, /service principal or a repository token/);
      const refresh = String((await tokenFor(base, 'reader', readerSecret, [], true))['refresh_token']);
      assert.equal((await client.signIn('00000000-0000-0000-0000-000000000000', refresh)).status, 401);
    });

    it('throttles repeated failures like docker login, and says how long to wait', async () => {
      await owner.post('/principals', { kind: 'user', name: 'victim', grants: [] });
      const client = new ConsoleClient(base);
      let last = await client.signIn('victim', 'wrong-0');
      for (let i = 1; i < 6 && last.status !== 429; i++) last = await client.signIn('victim', `wrong-${i}`);
      assert.equal(last.status, 429);
      assert.match(last.body.errors[0].message, /^Too many failed sign-ins\. Wait \d+ minute\(s\), then try again\.$/);
    });
  });

  describe('requests made with a session', () => {
    it('are decided by the authorizer from the principal’s grants, on /api/v1 and /v2 alike', async () => {
      const reader = new ConsoleClient(base);
      assert.equal((await reader.signIn('reader', readerSecret)).status, 200);
      const list = await reader.call('GET', '/api/v1/repositories');
      assert.equal(list.status, 200, list.text);
      assert.deepEqual(
        list.body.repositories.map((r: { name: string }) => r.name),
        ['team/app', 'team/multi'],
      );
      assert.equal((await reader.call('GET', '/v2/team/app/tags/list')).status, 200);
      const denied = await reader.call('GET', '/v2/other/secret/tags/list');
      assert.equal(denied.status, 403);
      assert.equal(denied.body.errors[0].code, 'DENIED');
      assert.equal((await reader.call('GET', '/api/v1/principals')).status, 403, 'not an owner');
      const tags = await reader.call('GET', '/api/v1/repositories/team/app/tags');
      assert.deepEqual(tags.body.allowed, { push: false, deleteTag: false, deleteManifest: false });
    });

    it('need the CSRF token and a same-origin request to change anything', async () => {
      const admin = new ConsoleClient(base);
      assert.equal((await admin.signIn(ownerName, ownerPassword)).status, 200);
      const body = { kind: 'user', name: 'made-in-console', grants: [] };
      const without = await admin.call('POST', '/api/v1/principals', { body, csrf: false });
      assert.equal(without.status, 403);
      assert.match(without.body.errors[0].message, /CSRF token/);
      const wrong = await admin.call('POST', '/api/v1/principals', { body, csrf: false, headers: { 'X-Berth-CSRF': 'x'.repeat(43) } });
      assert.equal(wrong.status, 403);
      const crossSite = await admin.call('POST', '/api/v1/principals', { body, origin: 'http://evil.example' });
      assert.equal(crossSite.status, 403);
      const fetchMeta = await admin.call('POST', '/api/v1/principals', { body, headers: { 'Sec-Fetch-Site': 'cross-site' } });
      assert.equal(fetchMeta.status, 403);
      assert.equal((await owner.get('/principals/made-in-console')).status, 404, 'nothing was created');
      const ok = await admin.call('POST', '/api/v1/principals', { body, origin: base });
      assert.equal(ok.status, 201, ok.text);
      const audit = (await owner.get('/audit?limit=1')).body.entries[0];
      assert.equal(audit.event, 'admin.principal.created');
      assert.equal(audit.principalName, ownerName, 'the session’s principal is the actor');
      // A bearer token ignores the cookie (and needs no CSRF token).
      assert.equal((await owner.delete('/principals/made-in-console')).status, 204);
    });

    it('deletes a tag through /v2 with the session when the grants allow it', async () => {
      const admin = new ConsoleClient(base);
      await admin.signIn(ownerName, ownerPassword);
      const token = String((await tokenFor(base, ownerName, ownerPassword, ['repository:team/app:pull,push']))['token']);
      await pushImage(base, token, 'team/app', 'doomed');
      const tags = await admin.call('GET', '/api/v1/repositories/team/app/tags');
      assert.deepEqual(tags.body.allowed, { push: true, deleteTag: true, deleteManifest: true });
      assert.equal((await admin.call('DELETE', '/v2/team/app/manifests/doomed', { csrf: false })).status, 403);
      assert.equal((await admin.call('DELETE', '/v2/team/app/manifests/doomed')).status, 202);
      assert.equal((await admin.call('GET', '/v2/team/app/manifests/doomed')).status, 404);
    });

    it('end when the principal is disabled, and sign-out ends the session on the server', async () => {
      const user = await owner.post('/principals', { kind: 'user', name: 'temp', grants: [{ pattern: 'team/*', permission: 'pull' }] });
      const client = new ConsoleClient(base);
      await client.signIn('temp', user.body.secret.value);
      const stolen = client.jar.header();
      assert.equal((await client.call('GET', '/api/v1/repositories')).status, 200);
      assert.equal((await client.call('DELETE', '/console/session', { csrf: false })).status, 403, 'sign-out needs the CSRF token too');
      const out = await client.call('DELETE', '/console/session');
      assert.equal(out.status, 204);
      assert.match(client.jar.raw.get('berth_session') ?? '', /Max-Age=0/);
      // The old cookie, replayed, signs nobody in.
      const replay = await fetch(`${base}/api/v1/repositories`, { headers: { Cookie: stolen } });
      assert.equal(replay.status, 401);
      const session = await fetch(`${base}/console/session`, { headers: { Cookie: stolen } });
      assert.equal(((await session.json()) as { signedIn: boolean }).signedIn, false);

      const again = new ConsoleClient(base);
      await again.signIn('temp', user.body.secret.value);
      assert.equal((await owner.patch('/principals/temp', { disabled: true })).status, 200);
      assert.equal((await again.call('GET', '/api/v1/repositories')).status, 401);
    });

    it('end after the idle timeout', async () => {
      const client = new ConsoleClient(base);
      await client.signIn('reader', readerSecret);
      assert.equal((await client.session()).body.signedIn, true);
      const idle = new ConsoleClient(base);
      await idle.signIn('reader', readerSecret);
      const idleHash = createHash('sha256')
        .update(idle.jar.values.get('berth_session') ?? '')
        .digest('base64url');
      assert.ok(await server.app.metadata.console.sessions.get(idleHash), 'stored by its hash');
      clock.offset += 601_000;
      try {
        assert.equal((await client.session()).body.signedIn, false);
        // A later sign-in deletes the rows of sessions that ended and were never seen again.
        await new ConsoleClient(base).signIn('reader', readerSecret);
        assert.equal(await server.app.metadata.console.sessions.get(idleHash), undefined);
      } finally {
        clock.offset -= 601_000;
      }
    });
  });

  describe('single sign-on', () => {
    it('signs a person in with the provider (PKCE, state, nonce), creating a user principal without any secret, with grants from the rules', async () => {
      const client = new ConsoleClient(base);
      const landed = await client.ssoSignIn('corp', 'ada@example.com', '#/repo/team/app');
      assert.equal(landed, '/#/repo/team/app');
      const session = await client.session();
      assert.equal(session.body.user.name, 'ada@example.com');
      assert.equal(session.body.user.method, 'sso');
      assert.equal(session.body.user.provider, 'corp');
      assert.deepEqual(session.body.user.grants, [{ pattern: 'team/*', permission: 'push' }]);
      const principal = (await owner.get('/principals/ada@example.com')).body;
      assert.equal(principal.kind, 'user');
      assert.deepEqual(principal.secrets, [], 'no Berth secret at all');
      assert.equal((await client.call('GET', '/api/v1/repositories/team/app/tags')).body.allowed.push, true);
      assert.equal((await client.call('GET', '/api/v1/principals')).status, 403);
      // The provider's cookie is gone once the round trip is over.
      assert.equal(client.jar.values.has('berth_sso'), false);
    });

    it('recomputes the grants at every sign-in from the claims', async () => {
      const client = new ConsoleClient(base);
      provider.accounts.set('ada@example.com', { email: 'ada@example.com', groups: ['dev', 'platform'] });
      await client.ssoSignIn('corp', 'ada@example.com');
      assert.equal((await client.session()).body.user.owner, true);
      assert.equal((await client.call('GET', '/api/v1/principals')).status, 200);
      provider.accounts.set('ada@example.com', { email: 'ada@example.com', groups: ['dev'] });
      const second = new ConsoleClient(base);
      await second.ssoSignIn('corp', 'ada@example.com');
      assert.equal((await second.session()).body.user.owner, false);
      // The earlier session follows the principal's grants as they are now.
      assert.equal((await client.call('GET', '/api/v1/principals')).status, 403);
      const events = (await owner.get('/audit?principal=ada@example.com&limit=20')).body.entries.map((e: { event: string }) => e.event);
      assert.ok(events.includes('console.sso.grants_replaced'), events.join());
    });

    it('refuses a person no rule matches, an unverified email, and a name that belongs to a password login; with the reason shown once', async () => {
      for (const [login, reason] of [
        ['eve@example.com', /no access rule of this registry matches your account/],
        ['unverified@example.com', /is not verified/],
        ['owner', /A Berth login named owner already exists and is not linked to Corp SSO/],
      ] as const) {
        const client = new ConsoleClient(base);
        const landed = await client.ssoSignIn('corp', login);
        assert.equal(landed, '/#/sign-in?sso=failed');
        const session = await client.call('GET', '/console/session');
        assert.equal(session.body.signedIn, false);
        assert.match(session.body.ssoError, reason);
        assert.equal((await client.call('GET', '/console/session')).body.ssoError, undefined, 'shown once');
      }
      assert.equal((await owner.get('/principals/eve@example.com')).status, 404);
    });

    it('refuses a callback this browser did not start (state), and an unknown provider', async () => {
      const client = new ConsoleClient(base);
      const forged = await client.call('GET', '/console/sso/corp/callback?code=abc&state=xyz');
      assert.equal(forged.status, 302);
      assert.equal(forged.headers.get('location'), '/#/sign-in?sso=failed');
      assert.match((await client.call('GET', '/console/session')).body.ssoError, /could not be matched to one this browser started/);
      assert.equal((await client.call('GET', '/console/sso/nope/start')).status, 404);
      const open = await client.call('GET', `/console/sso/corp/start?return=${encodeURIComponent('https://evil.example/')}`);
      assert.equal(open.status, 302);
      const pending = JSON.parse(Buffer.from(client.jar.values.get('berth_sso') ?? '', 'base64url').toString());
      assert.equal(pending.returnTo, '#/', 'never an absolute URL');
      assert.match(client.jar.raw.get('berth_sso') ?? '', /SameSite=Lax/);
    });
  });

  describe('browsing through /api/v1', () => {
    it('searches repository names in the database, and pages', async () => {
      const admin = new ConsoleClient(base);
      await admin.signIn(ownerName, ownerPassword);
      const found = await admin.call('GET', '/api/v1/repositories?q=MUL');
      assert.deepEqual(found.body, { repositories: [{ name: 'team/multi' }], next: null });
      const first = await admin.call('GET', '/api/v1/repositories?n=1');
      assert.equal(first.body.repositories.length, 1);
      assert.equal(first.body.next, 'other/secret');
      const bad = await admin.call('GET', '/api/v1/repositories?n=0');
      assert.equal(bad.status, 400);
      assert.match(bad.body.errors[0].message, /^n: /);
    });

    it('lists tags with sizes per platform and in total, and takes an image apart with its referrers', async () => {
      const admin = new ConsoleClient(base);
      await admin.signIn(ownerName, ownerPassword);
      const multi = (await admin.call('GET', '/api/v1/repositories/team/multi/tags')).body;
      const latest = multi.tags[0];
      assert.equal(latest.tag, 'latest');
      assert.deepEqual(
        latest.platforms.map((p: { platform: string }) => p.platform),
        ['linux/amd64', 'linux/arm64'],
      );
      assert.equal(latest.size, latest.manifestSize + latest.platforms.reduce((a: number, p: { size: number }) => a + p.size, 0) - 0, 'blobs counted once');
      assert.equal(latest.pushedBy.name, ownerName);
      const app = (await admin.call('GET', '/api/v1/repositories/team/app/tags')).body.tags.find((t: { tag: string }) => t.tag === 'v1');
      assert.equal(app.platforms[0].platform, 'linux/amd64');
      const image = (await admin.call('GET', `/api/v1/repositories/team/app/images/${app.digest}`)).body;
      assert.equal(image.kind, 'image');
      assert.equal(image.config.image.architecture, 'amd64');
      assert.deepEqual(image.config.image.entrypoint, ['/app']);
      assert.equal(image.annotations['org.opencontainers.image.title'], 'app');
      assert.equal(image.layers.length, 1);
      assert.equal(image.referrers.length, 1);
      assert.equal(image.referrers[0].artifactType, 'application/vnd.dev.cosign.signature');
      assert.equal(image.referrers[0].annotations['dev.example.note'], 'signed');
      assert.deepEqual(image.tags, ['v1']);
      const access = (await admin.call('GET', '/api/v1/repositories/team/app/access')).body;
      const names = access.principals.map((p: { name: string }) => p.name);
      assert.ok(names.includes(ownerName) && names.includes('reader'), names.join());
      assert.equal(access.principals.find((p: { name: string }) => p.name === 'reader').mayPush, false);
    });
  });
});
