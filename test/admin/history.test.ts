import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { storeIdentityToken } from '../../src/client/docker-config.js';
import { bearer, parseChallenge, postForm, tokenFor } from '../auth/helpers.js';
import { startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';
import { Api, type CliResult, assertError, failsWith, ok, runCli } from './helpers.js';

const clock = { offset: 0, now: () => Date.now() + clock.offset };
const jwtBearer = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

interface Fetched {
  status: number;
  headers: Headers;
  // `any` for test convenience: shapes are asserted field by field
  body: any;
}

describe('GET /api/v1/repositories/{name}/history and berth history', () => {
  let github: OidcIssuer;
  let server: TestServer;
  let base = '';
  let host = '';
  let home = '';
  let owner: Api;
  const secrets: Record<string, string> = {};
  let federatedDigest = '';
  let ownerDigest = '';

  /** A registry access token of a user for the given scopes. */
  const tokenOf = async (user: string, scopes: string[]) => String((await tokenFor(base, user, secrets[user] ?? ownerPassword, scopes))['token']);

  async function getHistory(repository: string, token: string | undefined, query = ''): Promise<Fetched> {
    const res = await fetch(`${base}/api/v1/repositories/${repository}/history${query}`, { headers: token ? bearer(token) : {} });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  }

  /** Pushes a config blob and a manifest tagged `tag` to `repository` with an access token; returns the manifest digest. */
  async function push(token: string, repository: string, tag: string): Promise<string> {
    const config = Buffer.from(JSON.stringify({ tag }));
    const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
    const blob = await fetch(`${base}/v2/${repository}/blobs/uploads/?digest=${configDigest}`, { method: 'POST', headers: bearer(token), body: config });
    assert.equal(blob.status, 201, await blob.text());
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [],
    });
    const put = await fetch(`${base}/v2/${repository}/manifests/${tag}`, {
      method: 'PUT',
      headers: { ...bearer(token), 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest,
    });
    assert.equal(put.status, 201, await put.text());
    return `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
  }

  /** The CLI as `user`, with the refresh token `berth login` would have saved. */
  async function cliAs(user: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    const refresh = String((await tokenFor(base, user, secrets[user] ?? ownerPassword, [], true))['refresh_token']);
    const dir = join(home, user);
    await storeIdentityToken(host, refresh, join(dir, 'config.json'));
    return runCli(args, { env: { DOCKER_CONFIG: dir, BERTH_REGISTRY: host, ...env } });
  }

  before(async () => {
    github = await startOidcIssuer();
    server = await startTestServer({ auth: true, clock, federationIssuers: [{ issuer: github.issuer }] });
    base = server.url;
    host = new URL(base).host;
    home = await mkdtemp(join(tmpdir(), 'berth-history-'));
    owner = await Api.asOwner(base);
    const created = await owner.post('/principals', { kind: 'service', name: 'ci-pusher', grants: [{ pattern: 'acme/*', permission: 'push' }] });
    assert.equal(created.status, 201);
    const credential = await owner.post('/principals/ci-pusher/federated-credentials', {
      name: 'github',
      preset: 'github',
      repository: 'acme/app',
      issuer: github.issuer,
      conditions: [{ claim: 'repository_owner_id', equals: '1234' }],
    });
    assert.equal(credential.status, 201, JSON.stringify(credential.body));
    for (const [name, pattern] of [
      ['reader', 'acme/*'],
      ['outsider', 'other/*'],
    ] as const) {
      const user = await owner.post('/principals', { kind: 'user', name, grants: [{ pattern, permission: 'pull' }] });
      secrets[name] = user.body.secret.value;
    }

    // A push from a GitHub Actions run, with a federated login, then one by the owner's password.
    const oidc = await github.github({
      repository: 'acme/app',
      sha: 'feedfacecafebeef0123456789abcdef01234567',
      run_id: '777',
      workflow: 'release',
      // The preset trusts tokens for this registry's own audience.
      audience: await server.app.auth.audience.get(),
    });
    const exchanged = await postForm(base, '/oauth2/token', {
      grant_type: 'client_credentials',
      client_id: 'ci-pusher',
      client_assertion_type: jwtBearer,
      client_assertion: oidc,
      service: 'berth',
      scope: 'repository:acme/app:pull,push',
    });
    const { access_token } = (await exchanged.json()) as { access_token: string };
    federatedDigest = await push(access_token, 'acme/app', 'v1');
    ownerDigest = await push(await tokenOf(ownerName, ['repository:acme/app:pull,push']), 'acme/app', 'v2');
  });
  after(async () => {
    await server.stop();
    await github.stop();
    await rm(home, { recursive: true, force: true });
  });

  describe('the API', () => {
    it('answers anyone with pull on the repository, newest first, with who pushed and the federated provenance', async () => {
      const res = await getHistory('acme/app', await tokenOf('reader', ['repository:acme/app:pull']));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.repository, 'acme/app');
      const [latest, first] = res.body.pushes;
      assert.equal(res.body.pushes.length, 2);
      assert.deepEqual(Object.keys(first).sort(), ['at', 'digest', 'principal', 'provenance', 'tag']);
      assert.equal(latest.tag, 'v2');
      assert.equal(latest.digest, ownerDigest);
      assert.equal(latest.principal.name, 'owner');
      assert.equal(latest.provenance, null, 'a password login has no provenance');
      assert.equal(first.tag, 'v1');
      assert.equal(first.digest, federatedDigest);
      assert.match(first.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(first.principal.name, 'ci-pusher');
      assert.deepEqual(first.principal, { id: (await owner.get('/principals/ci-pusher')).body.id, name: 'ci-pusher' });
      assert.equal(first.provenance.iss, github.issuer);
      assert.equal(first.provenance.sub, 'repo:acme/app:ref:refs/heads/main');
      assert.equal(first.provenance.repository, 'acme/app');
      assert.equal(first.provenance.sha, 'feedfacecafebeef0123456789abcdef01234567');
      assert.equal(first.provenance.workflow, 'release');
      assert.equal(first.provenance.run_id, '777');
    });

    it('narrows to one tag, one digest, or the latest N', async () => {
      const token = await tokenOf('reader', ['repository:acme/app:pull']);
      const byTag = await getHistory('acme/app', token, '?tag=v1');
      assert.deepEqual(
        byTag.body.pushes.map((p: { digest: string }) => p.digest),
        [federatedDigest],
      );
      const byDigest = await getHistory('acme/app', token, `?digest=${ownerDigest}`);
      assert.deepEqual(
        byDigest.body.pushes.map((p: { tag: string }) => p.tag),
        ['v2'],
      );
      const latest = await getHistory('acme/app', token, '?limit=1');
      assert.deepEqual(
        latest.body.pushes.map((p: { tag: string }) => p.tag),
        ['v2'],
      );
    });

    it('refuses a principal without pull on the repository with 403 DENIED', async () => {
      const outsider = await tokenFor(base, 'outsider', secrets['outsider'] ?? '', ['repository:acme/app:pull']);
      assert.equal(outsider['scope'], undefined, 'the token service grants nothing on acme/app');
      assertError(await getHistory('acme/app', String(outsider['token'])), 403, 'DENIED');
    });

    it("challenges a request without a token for the repository's pull scope", async () => {
      const res = await getHistory('acme/app', undefined);
      assertError(res, 401, 'UNAUTHORIZED');
      const challenge = parseChallenge(res.headers.get('www-authenticate'));
      assert.equal(challenge['scope'], 'repository:acme/app:pull');
      assert.equal(challenge['realm'], `${base}/oauth2/token`);
    });

    it('an owner token for registry:admin:* alone is not enough (it is a repository read)', async () => {
      const res = await getHistory('acme/app', owner.token);
      assertError(res, 401, 'UNAUTHORIZED');
      assert.equal(parseChallenge(res.headers.get('www-authenticate'))['error'], 'insufficient_scope');
    });

    it('answers 404 NAME_UNKNOWN for a repository never pushed to, and 400 for bad parameters', async () => {
      const token = await tokenOf(ownerName, ['repository:acme/none:pull', 'repository:acme/app:pull']);
      assertError(await getHistory('acme/none', token), 404, 'NAME_UNKNOWN');
      assertError(await getHistory('acme/app', token, '?limit=0'), 400, 'UNSUPPORTED', /limit must be an integer from 1 to 1000/);
      assertError(await getHistory('acme/app', token, '?limit=abc'), 400, 'UNSUPPORTED', /limit/);
      assertError(await getHistory('acme/app', token, '?tag=-bad'), 400, 'UNSUPPORTED', /tag: "-bad" is not a valid tag/);
      assertError(await getHistory('acme/app', token, '?digest=sha256:1234'), 400, 'DIGEST_INVALID');
    });

    it('follows anonymous pull: a repository anyone may pull has a history anyone may read', async () => {
      assert.equal((await owner.put('/settings/anonymous-pull', { patterns: ['acme/**'] })).status, 200);
      clock.offset += 10_000; // past the registry's 5-second cache of the anonymous-pull list
      try {
        const res = await getHistory('acme/app', undefined, '?tag=v1');
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.equal(res.body.pushes[0]?.principal.name, 'ci-pusher');
      } finally {
        assert.equal((await owner.put('/settings/anonymous-pull', { patterns: [] })).status, 200);
        clock.offset += 10_000;
      }
    });
  });

  describe('berth history', () => {
    it('prints a table: when, tag, short digest, who, and for a GitHub push repository@sha, workflow and run', async () => {
      const result = ok(await cliAs('reader', ['history', 'acme/app']));
      const lines = result.stdout.trim().split('\n');
      assert.match(lines[0] ?? '', /^WHEN\s+TAG\s+DIGEST\s+ATTESTED\s+PUSHED BY\s+SOURCE$/);
      assert.equal(lines.length, 3, result.stdout);
      assert.match(lines[1] ?? '', new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\s+v2\\s+${ownerDigest.slice(0, 19)}\\s+none\\s+owner\\s+-$`));
      assert.match(
        lines[2] ?? '',
        new RegExp(`^\\S+\\s+v1\\s+${federatedDigest.slice(0, 19)}\\s+verified\\s+ci-pusher\\s+acme/app@feedfac workflow release run 777$`),
      );
    });

    it("takes REPO:TAG, REPO@DIGEST and a HOST:PORT/ prefix; --json prints the API's answer", async () => {
      const json = JSON.parse(ok(await cliAs('reader', ['history', 'acme/app:v1', '--json'])).stdout) as {
        repository: string;
        pushes: Array<{ digest: string; provenance: { run_id: string } }>;
      };
      assert.equal(json.repository, 'acme/app');
      assert.deepEqual(
        json.pushes.map((p) => p.digest),
        [federatedDigest],
      );
      assert.equal(json.pushes[0]?.provenance.run_id, '777');
      const byDigest = ok(await cliAs('reader', ['history', `acme/app@${ownerDigest}`]));
      assert.match(byDigest.stdout, /\bv2\b/);
      assert.doesNotMatch(byDigest.stdout, /\bv1\b/);
      const prefixed = ok(await cliAs('reader', ['history', `${host}/acme/app:v1`], { BERTH_REGISTRY: '' }));
      assert.match(prefixed.stdout, /ci-pusher/);
    });

    it('logs in with --username and --password-stdin, and says so in one line when pull is not granted', async () => {
      const asOutsider = await runCli(['history', 'acme/app', '--username', 'outsider', '--password-stdin'], {
        env: { DOCKER_CONFIG: join(home, 'nobody'), BERTH_REGISTRY: host },
        stdin: `${secrets['outsider'] ?? ''}\n`,
      });
      failsWith(asOutsider, new RegExp(`^berth: outsider may not pull acme/app on ${host}: ask an owner for pull on it$`, 'm'));
      const anonymous = await runCli(['history', 'acme/app'], { env: { DOCKER_CONFIG: join(home, 'nobody'), BERTH_REGISTRY: host } });
      failsWith(anonymous, new RegExp(`^berth: acme/app on ${host} needs a login: run \`berth login ${host}\``));
      failsWith(await cliAs('reader', ['history', 'acme/none']), /^berth: no repository acme\/none on .*nothing was ever pushed/);
      failsWith(await cliAs('reader', ['history', 'Acme/App']), /^berth: invalid repository name "Acme\/App"/);
    });
  });
});
