import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { storeIdentityToken } from '../../src/client/docker-config.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';
import { tokenFor } from '../auth/helpers.js';
import { Api, failsWith, ok, runCli } from './helpers.js';

/** `berth admin federated …` and `federatedCredentials:` in `berth apply`, as real processes. */
describe('berth admin federated, berth apply with federatedCredentials', () => {
  let server: TestServer;
  let owner: Api;
  let host = '';
  let home = '';
  let loggedIn: NodeJS.ProcessEnv;

  const saved = (args: string[]) => runCli(args, { env: loggedIn });
  const credentials = async (principal: string) =>
    (await owner.get(`/principals/${principal}/federated-credentials`)).body.credentials as Array<Record<string, unknown>>;

  before(async () => {
    // A configured audience (federation.audience): presets default to it, and the challenge advertises it to `berth apply`.
    server = await startTestServer({ auth: true, config: { federation: { audience: 'https://registry.example.com' } } });
    owner = await Api.asOwner(server.url);
    host = new URL(server.url).host;
    home = await mkdtemp(join(tmpdir(), 'berth-federated-cli-'));
    const refresh = String((await tokenFor(server.url, ownerName, ownerPassword, [], true))['refresh_token']);
    await storeIdentityToken(host, refresh, join(home, 'in', 'config.json'));
    loggedIn = { DOCKER_CONFIG: join(home, 'in'), BERTH_REGISTRY: host };
    assert.equal((await owner.post('/principals', { kind: 'service', name: 'ci-pusher', grants: [{ pattern: 'acme/*', permission: 'push' }] })).status, 201);
    assert.equal((await owner.post('/principals', { kind: 'user', name: 'alice' })).status, 201);
  });
  after(async () => {
    await server.stop();
    await rm(home, { recursive: true, force: true });
  });

  describe('berth admin federated', () => {
    it('add --preset github --repository --ref', async () => {
      const result = ok(
        await saved(['admin', 'federated', 'add', 'ci-pusher', 'github-main', '--preset', 'github', '--repository', 'acme/app', '--ref', 'main']),
      );
      assert.equal(
        result.stdout,
        'added federated credential github-main of ci-pusher\n' +
          '  trusts repo:acme*/app*:ref:refs/heads/main from https://token.actions.githubusercontent.com (audiences https://registry.example.com; if repository=acme/app)\n',
      );
      const [stored] = await credentials('ci-pusher');
      assert.equal(stored?.['subject'], 'repo:acme*/app*:ref:refs/heads/main');
    });

    it('add --preset kubernetes --issuer --namespace --service-account', async () => {
      ok(
        await saved([
          'admin',
          'federated',
          'add',
          'ci-pusher',
          'prod-web',
          '--preset',
          'kubernetes',
          '--issuer',
          'https://oidc.prod.example.com',
          '--namespace',
          'prod',
          '--service-account',
          'web',
        ]),
      );
      const stored = (await credentials('ci-pusher')).find((c) => c['name'] === 'prod-web');
      assert.equal(stored?.['issuer'], 'https://oidc.prod.example.com');
      assert.equal(stored?.['subject'], 'system:serviceaccount:prod:web');
    });

    it('add --issuer --audience (repeated) --subject --condition (each form)', async () => {
      ok(
        await saved([
          'admin',
          'federated',
          'add',
          'ci-pusher',
          'custom',
          '--issuer',
          'https://issuer.example.com',
          '--audience',
          'a',
          '--audience',
          'b',
          '--subject',
          'workload:*',
          '--condition',
          'ref=refs/heads/main',
          '--condition',
          'workflow~build*',
          '--condition',
          'actor:alice,bob',
        ]),
      );
      const stored = (await credentials('ci-pusher')).find((c) => c['name'] === 'custom');
      assert.deepEqual(stored?.['audiences'], ['a', 'b']);
      assert.equal(stored?.['subject'], 'workload:*');
      assert.deepEqual(stored?.['conditions'], [
        { claim: 'ref', equals: 'refs/heads/main' },
        { claim: 'workflow', glob: 'build*' },
        { claim: 'actor', oneOf: ['alice', 'bob'] },
      ]);
    });

    it('list prints a table, or JSON with --json; principal show lists them too', async () => {
      const table = ok(await saved(['admin', 'federated', 'list', 'ci-pusher']));
      const lines = table.stdout.trim().split('\n');
      assert.match(lines[0] ?? '', /^NAME\s+ISSUER\s+SUBJECT\s+AUDIENCES\s+CONDITIONS\s+CREATED$/);
      assert.match(
        lines[1] ?? '',
        /^custom\s+https:\/\/issuer\.example\.com\s+workload:\*\s+a, b\s+ref=refs\/heads\/main, workflow~build\*, actor:alice,bob\s+\d{4}-/,
      );
      assert.match(
        lines[2] ?? '',
        /^github-main\s+https:\/\/token\.actions\.githubusercontent\.com\s+repo:acme\*\/app\*:ref:refs\/heads\/main\s+https:\/\/registry\.example\.com\s+repository=acme\/app\s+/,
      );
      assert.match(lines[3] ?? '', /^prod-web\s+/);
      const json = JSON.parse(ok(await saved(['admin', 'federated', 'list', 'ci-pusher', '--json'])).stdout) as { credentials: Array<{ name: string }> };
      assert.deepEqual(
        json.credentials.map((c) => c.name),
        ['custom', 'github-main', 'prod-web'],
      );
      const shown = ok(await saved(['admin', 'principal', 'show', 'ci-pusher'])).stdout;
      assert.match(shown, /^federated:$/m);
      assert.match(
        shown,
        /^ {2}github-main: repo:acme\*\/app\*:ref:refs\/heads\/main from https:\/\/token\.actions\.githubusercontent\.com \(audiences https:\/\/registry\.example\.com; if repository=acme\/app\)$/m,
      );
    });

    it("add with a name that exists replaces it, and says the old one's refresh tokens are revoked", async () => {
      const result = ok(
        await saved(['admin', 'federated', 'add', 'ci-pusher', 'github-main', '--preset', 'github', '--repository', 'acme/app', '--environment', 'prod']),
      );
      assert.match(result.stdout, /^replaced federated credential github-main of ci-pusher; refresh tokens bought with the old one are revoked$/m);
      assert.equal((await credentials('ci-pusher')).find((c) => c['name'] === 'github-main')?.['subject'], 'repo:acme*/app*:environment:prod');
    });

    it('remove deletes it', async () => {
      const result = ok(await saved(['admin', 'federated', 'remove', 'ci-pusher', 'custom']));
      assert.equal(result.stdout, 'removed federated credential custom of ci-pusher; refresh tokens bought with it are revoked\n');
      assert.deepEqual(
        (await credentials('ci-pusher')).map((c) => c['name']),
        ['github-main', 'prod-web'],
      );
    });

    it('fails with one line that says what is wrong', async () => {
      failsWith(
        await saved(['admin', 'federated', 'add', 'alice', 'x', '--preset', 'github', '--repository', 'a/b']),
        /^berth: only service principals may have federated credentials; alice is a user/,
      );
      failsWith(await saved(['admin', 'federated', 'add', 'ci-pusher', 'x', '--repository', 'a/b']), /^berth: --repository need --preset/);
      failsWith(
        await saved(['admin', 'federated', 'add', 'ci-pusher', 'x', '--issuer', 'https://i.example.com']),
        /^berth: without --preset, give --issuer URL, --subject SUB and --audience AUD/,
      );
      failsWith(
        await saved(['admin', 'federated', 'add', 'ci-pusher', 'x', '--preset', 'bitbucket']),
        /^berth: --preset must be one of github, kubernetes, gitlab/,
      );
      failsWith(
        await saved(['admin', 'federated', 'add', 'ci-pusher', 'x', '--preset', 'github', '--repository', 'a/b', '--condition', 'nothing']),
        /^berth: invalid condition "nothing"/,
      );
      failsWith(
        await saved(['admin', 'federated', 'add', 'ci-pusher', 'x', '--preset', 'kubernetes', '--namespace', 'prod']),
        /^berth: issuer: the kubernetes preset needs issuer/,
      );
      failsWith(
        await saved(['admin', 'federated', 'add', 'ci-pusher', 'x', '--preset', 'kubernetes', '--issuer', 'http://k8s.example.com', '--namespace', 'p']),
        /^berth: issuer: the issuer must be an https URL/,
      );
      failsWith(
        await saved(['admin', 'federated', 'remove', 'ci-pusher', 'nope']),
        /^berth: ci-pusher has no federated credential named "nope" \(HTTP 404 NAME_UNKNOWN\)/,
      );
    });
  });

  describe('berth apply', () => {
    const file = () => join(home, 'berth.yaml');
    const desired = `
services:
  - name: deployer
    grants:
      acme/**: push
    federatedCredentials:
      - name: github-main
        preset: github
        repository: acme/app
        ref: main
      - name: prod-cluster
        preset: kubernetes
        issuer: https://oidc.prod.example.com
        namespace: prod
        serviceAccount: web
      - name: custom
        issuer: https://issuer.example.com
        audiences: [b, a]
        subject: "workload:*"
        conditions:
          - { claim: actor, oneOf: [alice, bob] }
          - { claim: ref, glob: "refs/heads/*" }
`;

    it('creates the service principal with its federated credentials', async () => {
      await writeFile(file(), desired);
      const result = ok(await saved(['apply', '-f', file()]));
      assert.deepEqual(result.stdout.trim().split('\n').slice(0, 4), [
        '+ create service deployer: push on acme/**',
        '+ federated credential github-main of service deployer: repo:acme*/app*:ref:refs/heads/main from https://token.actions.githubusercontent.com (audiences https://registry.example.com; if repository=acme/app)',
        '+ federated credential prod-cluster of service deployer: system:serviceaccount:prod:web from https://oidc.prod.example.com (audiences https://registry.example.com)',
        '+ federated credential custom of service deployer: workload:* from https://issuer.example.com (audiences a, b; if actor:alice,bob, ref~refs/heads/*)',
      ]);
      assert.match(result.stdout, /^applied 4 change\(s\) to /m);
      const stored = await credentials('deployer');
      assert.deepEqual(
        stored.map((c) => c['name']),
        ['custom', 'github-main', 'prod-cluster'],
      );
      assert.deepEqual(stored[0]?.['conditions'], [
        { claim: 'actor', oneOf: ['alice', 'bob'] },
        { claim: 'ref', glob: 'refs/heads/*' },
      ]);
    });

    it('is a no-op the second time', async () => {
      const before = await credentials('deployer');
      const result = ok(await saved(['apply', '-f', file()]));
      assert.equal(result.stdout.trim(), `no changes: ${host} matches ${file()}`);
      assert.deepEqual(await credentials('deployer'), before, 'not replaced (createdAt unchanged)');
    });

    it('replaces a changed credential, removes one the file no longer lists, and leaves the rest alone', async () => {
      const before = await credentials('deployer');
      await writeFile(file(), desired.replace('ref: main', 'ref: release').replace(/ {6}- name: custom[\s\S]*$/, ''));
      const result = ok(await saved(['apply', '-f', file()]));
      assert.deepEqual(result.stdout.trim().split('\n').slice(0, 2), [
        '~ federated credential github-main of service deployer: subject repo:acme*/app*:ref:refs/heads/main -> repo:acme*/app*:ref:refs/heads/release (revokes the refresh tokens it bought)',
        '- federated credential custom of service deployer',
      ]);
      const after = await credentials('deployer');
      assert.deepEqual(
        after.map((c) => c['name']),
        ['github-main', 'prod-cluster'],
      );
      assert.deepEqual(after[1], before[2], 'prod-cluster untouched');
      assert.match(ok(await saved(['apply', '-f', file()])).stdout, /^no changes/);
    });

    it('refuses federatedCredentials on a user before touching the registry', async () => {
      await writeFile(file(), 'users:\n  - name: zed\n    federatedCredentials:\n      - { name: gh, preset: github, repository: a/b }\n');
      failsWith(await saved(['apply', '-f', file()]), /users\.0\.federatedCredentials: only service principals may have federated credentials/);
      assert.equal((await owner.get('/principals/zed')).status, 404);
    });
  });
});
