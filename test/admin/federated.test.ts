import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { postForm } from '../auth/helpers.js';
import { startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { Api, assertError } from './helpers.js';

/** The refresh-token grant, as `docker` uses it; returns the HTTP status. */
async function refresh(base: string, token: string): Promise<number> {
  const res = await postForm(base, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: token, service: 'berth' });
  await res.body?.cancel();
  return res.status;
}

describe('/api/v1/principals/{idOrName}/federated-credentials', () => {
  let github: OidcIssuer;
  let cluster: OidcIssuer;
  let server: TestServer;
  let base = '';
  let owner: Api;

  /** ACR's exchange with the OIDC token itself: a registry refresh token bought with a federated credential. */
  async function buyRefreshToken(oidc: string, clientId: string): Promise<string> {
    const res = await postForm(base, '/oauth2/exchange', { grant_type: 'access_token', service: 'berth', access_token: oidc, client_id: clientId });
    const body = (await res.json()) as { refresh_token?: string; error_description?: string };
    assert.equal(res.status, 200, JSON.stringify(body));
    return body.refresh_token ?? '';
  }

  const path = (principal: string) => `/principals/${principal}/federated-credentials`;

  before(async () => {
    github = await startOidcIssuer();
    cluster = await startOidcIssuer({ alg: 'ES256' });
    server = await startTestServer({ auth: true, federationIssuers: [{ issuer: github.issuer }, { issuer: cluster.issuer }] });
    base = server.url;
    owner = await Api.asOwner(base);
    for (const name of ['ci-pusher', 'presets', 'full']) {
      assert.equal((await owner.post('/principals', { kind: 'service', name, grants: [{ pattern: 'acme/*', permission: 'push' }] })).status, 201);
    }
    assert.equal((await owner.post('/principals', { kind: 'user', name: 'alice' })).status, 201);
    assert.equal((await owner.post('/principals', { kind: 'token', name: 'reader-token' })).status, 201);
  });
  after(async () => {
    await server.stop();
    await github.stop();
    await cluster.stop();
  });

  describe('POST with a preset', () => {
    it("github: repository + ref becomes GitHub's subject (both forms, pinned by name), issuer and this registry's audience (201)", async () => {
      const res = await owner.post(path('presets'), { name: 'github-main', preset: 'github', repository: 'acme/app', ref: 'main' });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.replaced, false);
      const { credential } = res.body;
      assert.deepEqual(Object.keys(credential).sort(), ['audiences', 'conditions', 'createdAt', 'issuer', 'name', 'subject']);
      assert.deepEqual(
        { ...credential, createdAt: undefined },
        {
          name: 'github-main',
          issuer: 'https://token.actions.githubusercontent.com',
          audiences: [await server.app.auth.audience.get()],
          subject: 'repo:acme*/app*:ref:refs/heads/main',
          conditions: [{ claim: 'repository', equals: 'acme/app' }],
          createdAt: undefined,
        },
      );
      assert.match(credential.createdAt, /^\d{4}-\d\d-\d\dT/);
    });

    it('github: an environment instead of a ref, with conditions and own audiences', async () => {
      const res = await owner.post(path('presets'), {
        name: 'github-prod',
        preset: 'github',
        repository: 'acme/app',
        environment: 'production',
        audiences: ['https://registry.example.com'],
        conditions: [{ claim: 'repository_owner_id', equals: '1234' }],
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.credential.subject, 'repo:acme*/app*:environment:production');
      assert.deepEqual(res.body.credential.audiences, ['https://registry.example.com']);
      assert.deepEqual(res.body.credential.conditions, [
        { claim: 'repository', equals: 'acme/app' },
        { claim: 'repository_owner_id', equals: '1234' },
      ]);
    });

    it('kubernetes: the cluster issuer, namespace and service account', async () => {
      const res = await owner.post(path('presets'), {
        name: 'prod-web',
        preset: 'kubernetes',
        issuer: 'https://oidc.prod.example.com',
        namespace: 'prod',
        serviceAccount: 'web',
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.credential.issuer, 'https://oidc.prod.example.com');
      assert.equal(res.body.credential.subject, 'system:serviceaccount:prod:web');
      const anyAccount = await owner.post(path('presets'), { name: 'prod-any', preset: 'kubernetes', issuer: cluster.issuer, namespace: 'prod' });
      assert.equal(anyAccount.status, 201, 'a plain-http loopback issuer configured with allowInsecureLoopback is accepted');
      assert.equal(anyAccount.body.credential.subject, 'system:serviceaccount:prod:*');
    });

    it('gitlab: project path and ref', async () => {
      const res = await owner.post(path('presets'), { name: 'gitlab-tags', preset: 'gitlab', repository: 'group/project', ref: 'refs/tags/v1' });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.credential.issuer, 'https://gitlab.com');
      assert.equal(res.body.credential.subject, 'project_path:group/project:ref_type:tag:ref:v1');
    });

    it('GET lists them sorted by name, and the principal view includes them', async () => {
      const listed = await owner.get(path('presets'));
      assert.equal(listed.status, 200);
      assert.deepEqual(
        listed.body.credentials.map((c: { name: string }) => c.name),
        ['github-main', 'github-prod', 'gitlab-tags', 'prod-any', 'prod-web'],
      );
      const principal = await owner.get('/principals/presets');
      assert.deepEqual(principal.body.federatedCredentials, listed.body.credentials);
      assert.deepEqual((await owner.get('/principals/alice')).body.federatedCredentials, []);
    });
  });

  describe('POST in the explicit form', () => {
    it('stores issuer, audiences, subject and each kind of condition exactly', async () => {
      const body = {
        name: 'custom',
        issuer: 'https://issuer.example.com/tenant',
        audiences: ['a', 'b'],
        subject: 'workload:*',
        conditions: [
          { claim: 'ref', equals: 'refs/heads/main' },
          { claim: 'workflow', glob: 'build*' },
          { claim: 'actor', oneOf: ['alice', 'bob'] },
        ],
      };
      const res = await owner.post(path('full'), body);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const { createdAt, ...stored } = res.body.credential;
      assert.deepEqual(stored, body);
      assert.ok(createdAt);
    });

    it('refuses every invalid body with 400 naming the field', async () => {
      const explicit = { name: 'x', issuer: 'https://issuer.example.com', audiences: ['berth'], subject: 's' };
      const cases: Array<[unknown, RegExp]> = [
        [{ name: 'x', audiences: ['berth'], subject: 's' }, /^issuer: required without a preset/],
        [{ name: 'x', issuer: 'https://i.example.com', subject: 's' }, /^audiences: required without a preset/],
        [{ name: 'x', issuer: 'https://i.example.com', audiences: ['berth'] }, /^subject: required without a preset/],
        [{ ...explicit, audiences: [] }, /^audiences: give at least one audience/],
        [{ ...explicit, audiences: ['berth', ''] }, /^audiences\.1: an audience is a non-empty string/],
        [{ ...explicit, audiences: 'berth' }, /^audiences: Expected array/],
        [{ ...explicit, subject: '' }, /^subject: the subject is a non-empty string/],
        [{ ...explicit, issuer: 'issuer.example.com' }, /^issuer: the issuer is not a URL/],
        [{ ...explicit, issuer: 'http://issuer.example.com' }, /^issuer: the issuer must be an https URL/],
        [{ ...explicit, issuer: 'ftp://issuer.example.com' }, /^issuer: the issuer must be an https URL/],
        [{ ...explicit, issuer: 'https://issuer.example.com?x=1' }, /^issuer: the issuer URL has no query/],
        [{ ...explicit, issuer: 'http://127.0.0.1:1' }, /^issuer: http:\/\/127\.0\.0\.1:1 is plain http; .*allowInsecureLoopback/],
        [{ ...explicit, conditions: [{ claim: 'ref' }] }, /^conditions\.0: a condition has exactly one of equals, glob or oneOf \(this one has none\)/],
        [{ ...explicit, conditions: [{ claim: 'ref', equals: 'a', glob: 'b*' }] }, /this one has equals and glob/],
        [{ ...explicit, conditions: [{ claim: '', equals: 'a' }] }, /^conditions\.0\.claim: a condition names a claim/],
        [{ ...explicit, conditions: [{ claim: 'actor', oneOf: [] }] }, /^conditions\.0\.oneOf: oneOf lists at least one value/],
        [{ ...explicit, conditions: [{ claim: 'ref', regex: '.*' }] }, /Unrecognized key.*regex/],
        [{ ...explicit, extra: true }, /Unrecognized key.*extra/],
        [{ ...explicit, name: '-x' }, /^name: a federated credential name is/],
        [{ ...explicit, ref: 'main' }, /^ref: only with a preset/],
        [{ name: 'x', preset: 'bitbucket', repository: 'a/b' }, /^preset: Invalid enum value/],
        [{ name: 'x', preset: 'github' }, /^repository: the github preset needs repository/],
        [{ name: 'x', preset: 'github', repository: 'a/b', subject: 'repo:a/b:*' }, /^subject: the github preset builds the subject/],
        [{ name: 'x', preset: 'github', repository: 'a/b', namespace: 'prod' }, /^namespace: not used by the github preset/],
        [{ name: 'x', preset: 'github', repository: 'a/b', ref: 'main', environment: 'prod' }, /^environment: give ref or environment, not both/],
        [{ name: 'x', preset: 'kubernetes', namespace: 'prod' }, /^issuer: the kubernetes preset needs issuer/],
        [{ name: 'x', preset: 'kubernetes', issuer: 'https://k.example.com' }, /^namespace: the kubernetes preset needs namespace/],
        [{ name: 'x', preset: 'gitlab', repository: 'g/p', environment: 'prod' }, /^environment: not used by the gitlab preset/],
        [{ name: 'x', preset: 'github', repository: 'a/b', audiences: [] }, /^audiences: give at least one audience/],
        ['{not json', /not valid JSON/],
      ];
      for (const [body, message] of cases) {
        const res = await owner.post(path('full'), body);
        assertError(res, 400, 'UNSUPPORTED', message);
      }
      assert.deepEqual(
        (await owner.get(path('full'))).body.credentials.map((c: { name: string }) => c.name),
        ['custom'],
        'nothing was stored',
      );
    });

    it('refuses principals that are not service principals, saying so', async () => {
      for (const [name, kind] of [
        ['alice', 'a user'],
        ['reader-token', 'a token'],
      ] as const) {
        const res = await owner.post(path(name), { name: 'x', preset: 'github', repository: 'a/b' });
        assertError(res, 400, 'UNSUPPORTED', new RegExp(`^only service principals may have federated credentials; ${name} is ${kind}`));
      }
      assertError(await owner.post(path('nobody'), { name: 'x', preset: 'github', repository: 'a/b' }), 404, 'NAME_UNKNOWN');
    });

    it(`allows at most 20 per principal (replacing one still works at the limit)`, async () => {
      assert.equal((await owner.post('/principals', { kind: 'service', name: 'crowded' })).status, 201);
      for (let i = 0; i < 20; i++) {
        assert.equal((await owner.post(path('crowded'), { name: `c${i}`, preset: 'github', repository: `acme/app${i}` })).status, 201);
      }
      assertError(
        await owner.post(path('crowded'), { name: 'c20', preset: 'github', repository: 'acme/x' }),
        400,
        'UNSUPPORTED',
        /already has 20 federated credentials/,
      );
      assert.equal((await owner.post(path('crowded'), { name: 'c0', preset: 'github', repository: 'acme/y' })).status, 201);
    });
  });

  describe('replacing and deleting', () => {
    it('replacing a credential (same name) revokes the refresh tokens bought with it, and only those', async () => {
      const trust = { issuer: github.issuer, subject: 'repo:acme/app:*' };
      assert.equal((await owner.post(path('ci-pusher'), { name: 'gh', audiences: ['berth'], ...trust })).status, 201);
      assert.equal((await owner.post(path('ci-pusher'), { name: 'gh-other', audiences: ['other'], ...trust })).status, 201);
      const viaGh = await buyRefreshToken(await github.github({ repository: 'acme/app' }), 'ci-pusher');
      const viaOther = await buyRefreshToken(await github.github({ repository: 'acme/app', audience: 'other' }), 'ci-pusher');
      assert.equal(await refresh(base, viaGh), 200);
      assert.equal(await refresh(base, viaOther), 200);

      const replaced = await owner.post(path('ci-pusher'), { name: 'gh', preset: 'github', repository: 'acme/app', ref: 'main', issuer: github.issuer });
      assert.equal(replaced.status, 201, JSON.stringify(replaced.body));
      assert.equal(replaced.body.replaced, true);
      assert.equal(replaced.body.credential.subject, 'repo:acme*/app*:ref:refs/heads/main');
      assert.equal(await refresh(base, viaGh), 401, 'bought with the replaced credential');
      assert.equal(await refresh(base, viaOther), 200, 'bought with another credential');

      // The new trust works (for tokens asked for this registry's audience, the preset's default), for the ref it names only.
      const audience = await server.app.auth.audience.get();
      assert.equal(await refresh(base, await buyRefreshToken(await github.github({ repository: 'acme/app', audience }), 'ci-pusher')), 200);
      const other = await postForm(base, '/oauth2/exchange', {
        grant_type: 'access_token',
        service: 'berth',
        access_token: await github.github({ repository: 'acme/app', ref: 'refs/heads/dev', audience }),
        client_id: 'ci-pusher',
      });
      assert.equal(other.status, 401);

      const { entries } = (await owner.get('/audit?limit=20')).body;
      const entry = entries.find((e: { event: string }) => e.event === 'admin.federated_credential.replaced');
      assert.equal(entry?.principalName, 'owner');
      assert.equal(entry?.detail.target.name, 'ci-pusher');
      assert.equal(entry?.detail.credential.name, 'gh');
      assert.equal(entry?.detail.preset, 'github');
      assert.equal(entry?.detail.revokedRefreshTokens, 1);
      assert.ok(
        entries.some(
          (e: { event: string; detail: { credential: { name: string } } }) =>
            e.event === 'admin.federated_credential.created' && e.detail.credential.name === 'gh-other',
        ),
      );
    });

    it('DELETE …/{name} answers 204 and revokes the refresh tokens bought with it; a second DELETE is 404', async () => {
      const bought = await buyRefreshToken(await github.github({ repository: 'acme/app', audience: 'other' }), 'ci-pusher');
      assert.equal(await refresh(base, bought), 200);
      const res = await owner.delete(`${path('ci-pusher')}/gh-other`);
      assert.equal(res.status, 204);
      assert.equal(await refresh(base, bought), 401);
      assert.deepEqual(
        (await owner.get(path('ci-pusher'))).body.credentials.map((c: { name: string }) => c.name),
        ['gh'],
      );
      assertError(await owner.delete(`${path('ci-pusher')}/gh-other`), 404, 'NAME_UNKNOWN', /ci-pusher has no federated credential named "gh-other"/);
      const { entries } = (await owner.get('/audit?limit=5')).body;
      const entry = entries.find((e: { event: string }) => e.event === 'admin.federated_credential.deleted');
      // This one and the one bought in the previous test.
      assert.deepEqual(entry?.detail, { target: entry?.detail.target, credential: 'gh-other', revokedRefreshTokens: 2 });
    });
  });

  describe('the owner guard', () => {
    it('answers a non-owner with 403 DENIED, and no token with 401', async () => {
      const created = await owner.post('/principals', { kind: 'user', name: 'not-owner', grants: [{ pattern: '**', permission: 'push' }] });
      const pusher = await Api.as(base, 'not-owner', created.body.secret.value);
      assertError(await pusher.get(path('ci-pusher')), 403, 'DENIED');
      assertError(await pusher.post(path('ci-pusher'), { name: 'x', preset: 'github', repository: 'a/b' }), 403, 'DENIED');
      assertError(await pusher.delete(`${path('ci-pusher')}/gh`), 403, 'DENIED');
      assertError(await new Api(base, undefined).get(path('ci-pusher')), 401, 'UNAUTHORIZED');
      assert.deepEqual(
        (await owner.get(path('ci-pusher'))).body.credentials.map((c: { name: string }) => c.name),
        ['gh'],
      );
    });
  });
});
