import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { refreshTokenUser } from '../../src/auth/token-endpoint.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';
import { basic, bearer, parseChallenge, postForm, tokenFor } from '../auth/helpers.js';
import { adminScope, Api, assertError } from './helpers.js';

const clock = { offset: 0, now: () => Date.now() + clock.offset };

/** The refresh-token grant, as `docker` uses it; returns the HTTP status. */
async function refresh(base: string, token: string): Promise<number> {
  const res = await postForm(base, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: token, service: 'berth' });
  await res.body?.cancel();
  return res.status;
}

async function refreshTokenFor(base: string, user: string, password: string): Promise<string> {
  return String((await tokenFor(base, user, password, [], true))['refresh_token']);
}

async function passwordWorks(base: string, user: string, password: string): Promise<boolean> {
  const res = await fetch(`${base}/oauth2/token?service=berth`, { headers: { Authorization: basic(user, password) } });
  await res.body?.cancel();
  return res.status === 200;
}

describe('management API /api/v1', () => {
  let server: TestServer;
  let base = '';
  let owner: Api;

  before(async () => {
    server = await startTestServer({ auth: true, clock });
    base = server.url;
    owner = await Api.asOwner(base);
  });
  after(async () => server.stop());

  describe('the owner guard', () => {
    it('answers a request without a token with 401 UNAUTHORIZED and a challenge for registry:admin:*', async () => {
      const res = await new Api(base, undefined).get('/principals');
      assertError(res, 401, 'UNAUTHORIZED');
      const challenge = parseChallenge(res.headers.get('www-authenticate'));
      assert.equal(challenge['scope'], adminScope);
      assert.equal(challenge['realm'], `${base}/oauth2/token`);
    });

    it("answers a non-owner principal's token with 403 DENIED on every endpoint", async () => {
      const created = await owner.post('/principals', { kind: 'user', name: 'guard-pusher', grants: [{ pattern: '**', permission: 'push' }] });
      const pusher = await Api.as(base, 'guard-pusher', created.body.secret.value);
      for (const [method, path] of [
        ['GET', '/principals'],
        ['POST', '/principals'],
        ['GET', '/principals/owner'],
        ['PATCH', '/principals/owner'],
        ['DELETE', '/principals/owner'],
        ['PUT', '/principals/owner/grants'],
        ['POST', '/principals/owner/secrets'],
        ['DELETE', '/principals/owner/secrets/password'],
        ['GET', '/settings/anonymous-pull'],
        ['PUT', '/settings/anonymous-pull'],
        ['POST', '/keys/rotate'],
        ['GET', '/audit'],
      ] as const) {
        assertError(await pusher.call(method, path, method === 'GET' ? undefined : {}), 403, 'DENIED');
      }
    });

    it("answers an owner's token that lacks the admin scope with 401 insufficient_scope", async () => {
      const narrow = new Api(base, String((await tokenFor(base, ownerName, ownerPassword, ['repository:x/y:pull']))['token']));
      const res = await narrow.get('/principals');
      assertError(res, 401, 'UNAUTHORIZED');
      assert.equal(parseChallenge(res.headers.get('www-authenticate'))['error'], 'insufficient_scope');
    });

    it('answers an unknown method on a known path with 405 and Allow', async () => {
      const res = await owner.call('PUT', '/principals');
      assert.equal(res.status, 405);
      assert.equal(res.headers.get('allow'), 'GET, POST, HEAD');
    });
  });

  describe('POST /api/v1/principals', () => {
    it('creates a user (201) whose password works at /oauth2/token and whose grants apply', async () => {
      const res = await owner.post('/principals', {
        kind: 'user',
        name: 'alice',
        description: 'Alice, team X',
        grants: [{ pattern: 'team-x/**', permission: 'push' }],
      });
      assert.equal(res.status, 201);
      const { principal, secret } = res.body;
      assert.deepEqual(Object.keys(principal).sort(), [
        'createdAt',
        'description',
        'disabled',
        'expiresAt',
        'federatedCredentials',
        'grants',
        'id',
        'kind',
        'name',
        'secrets',
      ]);
      assert.equal(principal.kind, 'user');
      assert.equal(principal.name, 'alice');
      assert.equal(principal.description, 'Alice, team X');
      assert.equal(principal.disabled, false);
      assert.equal(principal.expiresAt, null);
      assert.match(principal.createdAt, /^\d{4}-\d\d-\d\dT/);
      assert.deepEqual(principal.grants, [{ pattern: 'team-x/**', permission: 'push' }]);
      assert.deepEqual(
        principal.secrets.map((s: { name: string }) => s.name),
        ['password'],
      );
      assert.equal(secret.name, 'password');
      assert.ok(secret.value.length >= 20);
      assert.ok(!JSON.stringify(res.body).includes('scrypt'), 'no hash in the response');

      const granted = await tokenFor(base, 'alice', secret.value, ['repository:team-x/app:pull,push', 'repository:team-y/app:pull']);
      assert.equal(granted['scope'], 'repository:team-x/app:pull,push');
      const layer = randomBytes(16);
      const digest = `sha256:${createHash('sha256').update(layer).digest('hex')}`;
      const push = await fetch(`${base}/v2/team-x/app/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: bearer(granted['token']), body: layer });
      assert.equal(push.status, 201);
      const elsewhere = await fetch(`${base}/v2/team-y/app/tags/list`, { headers: bearer(granted['token']) });
      assert.equal(elsewhere.status, 403);
    });

    it('creates a repository-scoped token with scope-map actions and password1', async () => {
      const res = await owner.post('/principals', {
        kind: 'token',
        name: 'ci-reader',
        grants: [
          { pattern: 'vendor/**', permission: 'content/read' },
          { pattern: 'vendor/**', permission: 'metadata/read' },
        ],
        expiresAt: new Date(clock.now() + 86_400_000).toISOString(),
      });
      assert.equal(res.status, 201);
      assert.equal(res.body.secret.name, 'password1');
      assert.ok(res.body.principal.expiresAt);
      const granted = await tokenFor(base, 'ci-reader', res.body.secret.value, ['repository:vendor/lib:pull,push']);
      assert.equal(granted['scope'], 'repository:vendor/lib:pull');
    });

    it('names a service principal by a generated client id and gives it secret1', async () => {
      const res = await owner.post('/principals', { kind: 'service', grants: [{ pattern: 'deploy/*', permission: 'pull' }] });
      assert.equal(res.status, 201);
      assert.match(res.body.principal.name, /^[0-9a-f-]{36}$/);
      assert.equal(res.body.secret.name, 'secret1');
      assert.ok(await passwordWorks(base, res.body.principal.name, res.body.secret.value));
    });

    it('refuses a taken name with 409 (wire code NAME_INVALID)', async () => {
      await owner.post('/principals', { kind: 'user', name: 'taken', grants: [] });
      assertError(await owner.post('/principals', { kind: 'token', name: 'taken', grants: [] }), 409, 'NAME_INVALID', /already exists/);
    });

    it('refuses bad input with 400 (wire code UNSUPPORTED) and says what is wrong', async () => {
      const cases: Array<[unknown, RegExp]> = [
        [{ kind: 'user', grants: [] }, /needs a name/],
        [{ kind: 'admin', name: 'x', grants: [] }, /kind/],
        [{ kind: 'robot', name: 'x', grants: [] }, /kind/],
        [{ kind: 'user', name: 'x', grants: [], extra: 1 }, /Unrecognized key/],
        [{ kind: 'user', name: '-bad', grants: [] }, /name: a name is/],
        [{ kind: 'user', name: refreshTokenUser, grants: [] }, /reserved/],
        [{ kind: 'service', name: refreshTokenUser, grants: [] }, /reserved/],
        [{ kind: 'user', name: 'x', grants: [{ pattern: 'Team/**', permission: 'pull' }] }, /grants\.0\.pattern: invalid repository pattern/],
        [{ kind: 'user', name: 'x', grants: [{ pattern: 'team/**', permission: 'admin' }] }, /grants\.0\.permission: unknown role or action/],
        [{ kind: 'user', name: 'x', grants: [{ pattern: 'team/**' }] }, /permission/],
        [{ kind: 'user', name: 'x', grants: [], expiresAt: 'tomorrow' }, /expiresAt/],
        [{ kind: 'user', name: 'x', grants: [], expiresAt: 1000 }, /in the past/],
        ['{"kind":', /not valid JSON/],
        [[1, 2], /object/],
      ];
      for (const [body, message] of cases) assertError(await owner.post('/principals', body), 400, 'UNSUPPORTED', message);
      assertError(await owner.get('/principals/x'), 404, 'NAME_UNKNOWN');
    });

    it('refuses a body over 64 KiB with 413 SIZE_INVALID', async () => {
      const res = await owner.post('/principals', { kind: 'user', name: 'big', description: 'x'.repeat(70 * 1024), grants: [] });
      assertError(res, 413, 'SIZE_INVALID');
    });
  });

  describe('GET /api/v1/principals', () => {
    it('lists every principal, sorted by name, without secret hashes', async () => {
      const res = await owner.get('/principals');
      assert.equal(res.status, 200);
      const names: string[] = res.body.principals.map((p: { name: string }) => p.name);
      assert.ok(names.includes('owner') && names.includes('alice'));
      assert.deepEqual(names, [...names].sort());
      assert.ok(!JSON.stringify(res.body).includes('scrypt'));
      const ownerView = res.body.principals.find((p: { name: string }) => p.name === 'owner');
      assert.deepEqual(ownerView.grants, [{ pattern: '**', permission: 'owner' }]);
    });

    it('filters by ?kind= and refuses an unknown kind with 400', async () => {
      const tokens = await owner.get('/principals?kind=token');
      assert.ok(tokens.body.principals.length > 0);
      assert.ok(tokens.body.principals.every((p: { kind: string }) => p.kind === 'token'));
      assertError(await owner.get('/principals?kind=robot'), 400, 'UNSUPPORTED', /kind/);
    });
  });

  describe('GET, PATCH, DELETE /api/v1/principals/{idOrName}', () => {
    it('finds a principal by name and by id, and answers 404 NAME_UNKNOWN for an unknown one', async () => {
      const byName = await owner.get('/principals/alice');
      assert.equal(byName.status, 200);
      const byId = await owner.get(`/principals/${byName.body.id}`);
      assert.deepEqual(byId.body, byName.body);
      assertError(await owner.get('/principals/nobody'), 404, 'NAME_UNKNOWN', /nobody/);
      assertError(await owner.patch('/principals/nobody', { disabled: true }), 404, 'NAME_UNKNOWN');
      assertError(await owner.delete('/principals/nobody'), 404, 'NAME_UNKNOWN');
    });

    it('disabling stops password logins and refresh tokens at once; enabling restores password logins', async () => {
      const created = await owner.post('/principals', { kind: 'user', name: 'dave', grants: [{ pattern: 'd/*', permission: 'pull' }] });
      const password = created.body.secret.value as string;
      const token = await refreshTokenFor(base, 'dave', password);
      assert.equal(await refresh(base, token), 200);

      const disabled = await owner.patch('/principals/dave', { disabled: true });
      assert.equal(disabled.status, 200);
      assert.equal(disabled.body.disabled, true);
      assert.equal(await refresh(base, token), 401);
      assert.equal(await passwordWorks(base, 'dave', password), false);

      const enabled = await owner.patch('/principals/dave', { disabled: false });
      assert.equal(enabled.body.disabled, false);
      assert.equal(await passwordWorks(base, 'dave', password), true);
      assert.equal(await refresh(base, token), 401, 'refresh tokens revoked by disabling stay revoked');
    });

    it('sets and clears the description and expiry (null clears)', async () => {
      const expiresAt = clock.now() + 3_600_000;
      const set = await owner.patch('/principals/dave', { description: 'Dave', expiresAt });
      assert.equal(set.body.description, 'Dave');
      assert.equal(set.body.expiresAt, new Date(expiresAt).toISOString());
      const cleared = await owner.patch('/principals/dave', { description: null, expiresAt: null });
      assert.equal(cleared.body.description, null);
      assert.equal(cleared.body.expiresAt, null);
      const unchanged = await owner.patch('/principals/dave', {});
      assert.equal(unchanged.status, 200);
    });

    it('refuses bad PATCH bodies with 400', async () => {
      assertError(await owner.patch('/principals/dave', { disabled: 'yes' }), 400, 'UNSUPPORTED', /disabled/);
      assertError(await owner.patch('/principals/dave', { name: 'other' }), 400, 'UNSUPPORTED', /Unrecognized key/);
    });

    it('refuses to let the acting owner disable or delete itself', async () => {
      assertError(await owner.patch('/principals/owner', { disabled: true }), 400, 'UNSUPPORTED', /acting as/);
      assertError(await owner.delete('/principals/owner'), 400, 'UNSUPPORTED', /acting as/);
      assert.equal((await owner.get('/principals/owner')).body.disabled, false);
    });

    it('deletes a principal (204) with its secrets and refresh tokens', async () => {
      const created = await owner.post('/principals', { kind: 'user', name: 'erin', grants: [] });
      const token = await refreshTokenFor(base, 'erin', created.body.secret.value);
      const res = await owner.delete('/principals/erin');
      assert.equal(res.status, 204);
      assert.equal(res.body, undefined);
      assertError(await owner.get('/principals/erin'), 404, 'NAME_UNKNOWN');
      assert.equal(await refresh(base, token), 401);
      assert.equal(await passwordWorks(base, 'erin', created.body.secret.value), false);
    });
  });

  describe('PUT /api/v1/principals/{idOrName}/grants', () => {
    it('replaces the grants exactly, and new tokens follow them', async () => {
      const created = await owner.post('/principals', { kind: 'user', name: 'frank', grants: [{ pattern: 'a/*', permission: 'pull' }] });
      const res = await owner.put('/principals/frank/grants', {
        grants: [
          { pattern: 'b/**', permission: 'push' },
          { pattern: 'b/**', permission: 'push' },
        ],
      });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.grants, [{ pattern: 'b/**', permission: 'push' }]);
      const granted = await tokenFor(base, 'frank', created.body.secret.value, ['repository:a/x:pull', 'repository:b/c/d:push']);
      assert.equal(granted['scope'], 'repository:b/c/d:push');
    });

    it("refuses bad grants with 400, an unknown principal with 404, and dropping the acting owner's own owner grant", async () => {
      assertError(await owner.put('/principals/frank/grants', { grants: [{ pattern: 'b/**', permission: 'writer' }] }), 400, 'UNSUPPORTED', /writer/);
      // An inherited object key is no permission (it used to pass, and then broke every token request of the principal).
      assertError(await owner.put('/principals/frank/grants', { grants: [{ pattern: 'b/**', permission: 'constructor' }] }), 400, 'UNSUPPORTED', /constructor/);
      assertError(await owner.put('/principals/frank/grants', { grants: [{ pattern: 'b//c', permission: 'pull' }] }), 400, 'UNSUPPORTED', /pattern/);
      assertError(await owner.put('/principals/frank/grants', {}), 400, 'UNSUPPORTED', /grants/);
      assertError(await owner.put('/principals/ghost/grants', { grants: [] }), 404, 'NAME_UNKNOWN');
      assertError(await owner.put('/principals/owner/grants', { grants: [{ pattern: '**', permission: 'pull' }] }), 400, 'UNSUPPORTED', /own owner grant/);
    });
  });

  describe('POST and DELETE /api/v1/principals/{idOrName}/secrets', () => {
    it("rotates a user's password: the old one and the refresh tokens it bought stop working", async () => {
      const created = await owner.post('/principals', { kind: 'user', name: 'gina', grants: [] });
      const oldPassword = created.body.secret.value as string;
      const oldRefresh = await refreshTokenFor(base, 'gina', oldPassword);
      const res = await owner.post('/principals/gina/secrets');
      assert.equal(res.status, 201);
      assert.equal(res.body.name, 'password');
      assert.notEqual(res.body.value, oldPassword);
      assert.equal(await refresh(base, oldRefresh), 401);
      assert.equal(await passwordWorks(base, 'gina', oldPassword), false);
      assert.equal(await passwordWorks(base, 'gina', res.body.value), true);
    });

    it('gives a service principal the next free secretN, each working on its own', async () => {
      const created = await owner.post('/principals', { kind: 'service', name: 'svc-deploy', grants: [] });
      const second = await owner.post('/principals/svc-deploy/secrets', {});
      assert.equal(second.body.name, 'secret2');
      const named = await owner.post('/principals/svc-deploy/secrets', { name: 'ci', expiresAt: new Date(clock.now() + 60_000).toISOString() });
      assert.equal(named.body.name, 'ci');
      assert.ok(await passwordWorks(base, 'svc-deploy', created.body.secret.value));
      assert.ok(await passwordWorks(base, 'svc-deploy', second.body.value));
      const view = await owner.get('/principals/svc-deploy');
      assert.deepEqual(
        view.body.secrets.map((s: { name: string }) => s.name),
        ['ci', 'secret1', 'secret2'],
      );
      assert.ok(view.body.secrets.find((s: { name: string }) => s.name === 'ci').expiresAt);
    });

    it('lets a token hold password1 and password2 only', async () => {
      await owner.post('/principals', { kind: 'token', name: 'tok', grants: [] });
      assert.equal((await owner.post('/principals/tok/secrets', { name: 'password2' })).status, 201);
      assertError(await owner.post('/principals/tok/secrets', { name: 'password3' }), 400, 'UNSUPPORTED', /password1 and password2/);
      assertError(await owner.post('/principals/tok/secrets', { name: 'Bad Name' }), 400, 'UNSUPPORTED');
      assertError(await owner.post('/principals/tok/secrets', { value: 'chosen' }), 400, 'UNSUPPORTED', /Unrecognized key/);
      assertError(await owner.post('/principals/ghost/secrets', {}), 404, 'NAME_UNKNOWN');
    });

    it('deletes a secret (204) and revokes the refresh tokens it bought; an unknown secret is 404', async () => {
      const second = await owner.post('/principals/gina/secrets', { name: 'app' });
      const token = await refreshTokenFor(base, 'gina', second.body.value);
      assert.equal((await owner.delete('/principals/gina/secrets/app')).status, 204);
      assert.equal(await refresh(base, token), 401);
      assert.equal(await passwordWorks(base, 'gina', second.body.value), false);
      assertError(await owner.delete('/principals/gina/secrets/app'), 404, 'NAME_UNKNOWN', /no secret named/);
      assertError(await owner.delete('/principals/ghost/secrets/password'), 404, 'NAME_UNKNOWN');
    });
  });

  describe('GET and PUT /api/v1/settings/anonymous-pull', () => {
    it('starts empty, replaces the patterns, and anonymous pulls follow them', async () => {
      assert.deepEqual((await owner.get('/settings/anonymous-pull')).body, { patterns: [] });
      const res = await owner.put('/settings/anonymous-pull', { patterns: ['public/**', 'public/**', 'demo/*'] });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { patterns: ['demo/*', 'public/**'] });
      clock.offset += 10_000; // past the registry's anonymous-policy cache
      assert.equal((await fetch(`${base}/v2/public/a/b/tags/list`)).status, 404, 'allowed; the repository does not exist');
      assert.equal((await fetch(`${base}/v2/private/a/tags/list`)).status, 401);
      await owner.put('/settings/anonymous-pull', { patterns: [] });
      clock.offset += 10_000;
      assert.equal((await fetch(`${base}/v2/public/a/b/tags/list`)).status, 401);
    });

    it('refuses invalid patterns and bodies with 400', async () => {
      assertError(await owner.put('/settings/anonymous-pull', { patterns: ['Public/**'] }), 400, 'UNSUPPORTED', /patterns\.0: invalid repository pattern/);
      assertError(await owner.put('/settings/anonymous-pull', { patterns: 'public/**' }), 400, 'UNSUPPORTED', /patterns/);
      assertError(await owner.put('/settings/anonymous-pull', {}), 400, 'UNSUPPORTED', /patterns/);
    });
  });

  describe('POST /api/v1/keys/rotate', () => {
    it('signs new tokens with a new key and keeps accepting tokens signed with the old one', async () => {
      const before = (await (await fetch(`${base}/oauth2/jwks`)).json()) as { keys: Array<{ kid: string }> };
      const res = await owner.post('/keys/rotate');
      assert.equal(res.status, 200);
      assert.match(res.body.kid, /^[A-Za-z0-9_-]{20,}$/);
      const afterKeys = (await (await fetch(`${base}/oauth2/jwks`)).json()) as { keys: Array<{ kid: string }> };
      assert.ok(afterKeys.keys.some((k) => k.kid === res.body.kid));
      for (const k of before.keys)
        assert.ok(
          afterKeys.keys.some((a) => a.kid === k.kid),
          'old keys stay published',
        );
      assert.equal((await owner.get('/principals/owner')).status, 200, 'a token signed before rotation still works');
      const fresh = await Api.asOwner(base);
      const header = JSON.parse(Buffer.from(String(fresh.token).split('.')[0] ?? '', 'base64url').toString()) as { kid: string };
      assert.equal(header.kid, res.body.kid);
      assertError(await owner.post('/keys/rotate', { force: true }), 400, 'UNSUPPORTED');
    });
  });

  describe('GET /api/v1/audit', () => {
    it('records every change with the owner who made it, newest first', async () => {
      await owner.post('/principals', { kind: 'user', name: 'audited', grants: [] });
      await owner.patch('/principals/audited', { disabled: true });
      const res = await owner.get('/audit?limit=50');
      assert.equal(res.status, 200);
      const mine = res.body.entries.filter((e: { event: string }) => e.event.startsWith('admin.'));
      const [updated, created] = mine;
      assert.equal(updated.event, 'admin.principal.updated');
      assert.equal(updated.principalName, 'owner');
      assert.equal(updated.detail.target.name, 'audited');
      assert.deepEqual(updated.detail.changes, { disabled: true });
      assert.equal(created.event, 'admin.principal.created');
      assert.ok(res.body.entries[0].id > res.body.entries[1].id);
      const events = new Set(res.body.entries.map((e: { event: string }) => e.event));
      for (const event of ['admin.secret.rotated', 'admin.secret.deleted', 'admin.grants.replaced', 'admin.anonymous_pull.replaced', 'admin.keys.rotated']) {
        assert.ok(events.has(event), `${event} is audited`);
      }
      assert.ok(!JSON.stringify(res.body).includes('scrypt'));
    });

    it('filters by principal (name or id), limits, and refuses bad parameters', async () => {
      const alice = await owner.get('/audit?principal=alice&limit=5');
      assert.ok(alice.body.entries.length > 0 && alice.body.entries.length <= 5);
      assert.ok(alice.body.entries.every((e: { principalName: string }) => e.principalName === 'alice'));
      assert.equal((await owner.get('/audit?limit=1')).body.entries.length, 1);
      assertError(await owner.get('/audit?limit=0'), 400, 'UNSUPPORTED', /limit/);
      assertError(await owner.get('/audit?limit=abc'), 400, 'UNSUPPORTED', /limit/);
      assertError(await owner.get('/audit?principal=nobody'), 404, 'NAME_UNKNOWN');
    });
  });
});

describe('the admin user (auth.adminUser)', () => {
  let server: TestServer;
  let base = '';
  let owner: Api;

  before(async () => {
    server = await startTestServer({ auth: true, adminUser: 'admin' });
    base = server.url;
    owner = await Api.asOwner(base);
  });
  after(async () => server.stop());

  it('exists from the start with owner rights and no secret', async () => {
    const res = await owner.get('/principals?kind=admin');
    assert.equal(res.body.principals.length, 1);
    const admin = res.body.principals[0];
    assert.equal(admin.name, 'admin');
    assert.deepEqual(admin.grants, [{ pattern: '**', permission: 'owner' }]);
    assert.deepEqual(admin.secrets, []);
  });

  it('gets its two passwords from an owner, logs in with either, and may use the management API', async () => {
    const first = await owner.post('/principals/admin/secrets');
    assert.equal(first.status, 201);
    assert.equal(first.body.name, 'password1');
    const second = await owner.post('/principals/admin/secrets', { name: 'password2' });
    assert.equal(second.body.name, 'password2');
    for (const password of [first.body.value, second.body.value]) {
      const admin = await Api.as(base, 'admin', password);
      assert.equal((await admin.get('/principals')).status, 200);
    }
    assertError(await owner.post('/principals/admin/secrets', { name: 'password3' }), 400, 'UNSUPPORTED', /admin user has at most two secrets/);
  });

  it('rotating password1 revokes only the refresh tokens password1 bought', async () => {
    const p1 = (await owner.post('/principals/admin/secrets', { name: 'password1' })).body.value as string;
    const p2 = (await owner.post('/principals/admin/secrets', { name: 'password2' })).body.value as string;
    const via1 = await refreshTokenFor(base, 'admin', p1);
    const via2 = await refreshTokenFor(base, 'admin', p2);
    await owner.post('/principals/admin/secrets', { name: 'password1' });
    assert.equal(await refresh(base, via1), 401);
    assert.equal(await refresh(base, via2), 200);
  });

  it('keeps its fixed grants and cannot be deleted through the API, but can be disabled', async () => {
    assertError(await owner.put('/principals/admin/grants', { grants: [] }), 400, 'UNSUPPORTED', /always holds owner/);
    assertError(await owner.delete('/principals/admin'), 400, 'UNSUPPORTED', /configuration/);
    const p2 = (await owner.post('/principals/admin/secrets', { name: 'password2' })).body.value as string;
    assert.equal((await owner.patch('/principals/admin', { disabled: true })).body.disabled, true);
    assert.equal(await passwordWorks(base, 'admin', p2), false);
  });
});

describe('the management API with auth off', () => {
  it('does not exist (404): with auth off nobody could be told apart', async () => {
    const server = await startTestServer();
    try {
      assertError(await new Api(server.url, undefined).get('/principals'), 404, 'UNSUPPORTED', /auth\.enabled/);
    } finally {
      await server.stop();
    }
  });
});
