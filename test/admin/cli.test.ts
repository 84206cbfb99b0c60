import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { storeIdentityToken } from '../../src/client/docker-config.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';
import { tokenFor } from '../auth/helpers.js';
import { Api, failsWith, ok, runCli } from './helpers.js';

/** The berth CLI as real processes against a real (in-process) server. */
describe('berth admin, berth keys, berth apply', () => {
  let server: TestServer;
  let owner: Api;
  let host = '';
  let home = '';
  /** A DOCKER_CONFIG where `berth login` saved the owner's refresh token. */
  let loggedIn: NodeJS.ProcessEnv;
  /** A DOCKER_CONFIG with nothing saved. */
  let loggedOut: NodeJS.ProcessEnv;

  const asOwner = (args: string[]) => runCli([...args, '--username', ownerName, '--password-stdin'], { env: loggedOut, stdin: `${ownerPassword}\n` });
  const saved = (args: string[]) => runCli(args, { env: loggedIn });

  before(async () => {
    server = await startTestServer({ auth: true });
    owner = await Api.asOwner(server.url);
    host = new URL(server.url).host;
    home = await mkdtemp(join(tmpdir(), 'berth-admin-cli-'));
    const refresh = String((await tokenFor(server.url, ownerName, ownerPassword, [], true))['refresh_token']);
    await storeIdentityToken(host, refresh, join(home, 'in', 'config.json'));
    loggedIn = { DOCKER_CONFIG: join(home, 'in'), BERTH_REGISTRY: host };
    loggedOut = { DOCKER_CONFIG: join(home, 'out'), BERTH_REGISTRY: host };
  });
  after(async () => {
    await server.stop();
    await rm(home, { recursive: true, force: true });
  });

  describe('berth admin principal', () => {
    it('create prints the secret once with a warning, and the secret logs in with the grants asked for', async () => {
      const result = ok(await asOwner(['admin', 'principal', 'create', 'user', 'alice', '--grant', 'team-a/**=push', '--description', 'Alice']));
      assert.match(result.stdout, /^created user alice \(id [0-9a-f-]{36}\)$/m);
      const password = /^password: (\S+)$/m.exec(result.stdout)?.[1] ?? '';
      assert.ok(password.length >= 20, result.stdout);
      assert.match(result.stderr, /^warning: the secret above is shown only once/);
      const granted = await tokenFor(server.url, 'alice', password, ['repository:team-a/app:push']);
      assert.equal(granted['scope'], 'repository:team-a/app:push');
    });

    it('create --json returns the API response; a token gets password1', async () => {
      const result = ok(await saved(['admin', 'principal', 'create', 'token', 'ci-reader', '--grant', 'vendor/**=content/read', '--expires', '30d', '--json']));
      const body = JSON.parse(result.stdout) as { principal: { kind: string; expiresAt: string }; secret: { name: string; value: string } };
      assert.equal(body.principal.kind, 'token');
      assert.ok(body.principal.expiresAt);
      assert.equal(body.secret.name, 'password1');
      assert.match(result.stderr, /shown only once/);
    });

    it('list shows a table, or JSON with --json, using the login `berth login` saved', async () => {
      const table = ok(await saved(['admin', 'principal', 'list']));
      assert.match(table.stdout, /^NAME\s+KIND\s+STATUS\s+EXPIRES\s+GRANTS\s+SECRETS$/m);
      assert.match(table.stdout, /^alice\s+user\s+enabled\s+never\s+push on team-a\/\*\*\s+password$/m);
      const json = JSON.parse(ok(await saved(['admin', 'principal', 'list', '--kind', 'token', '--json'])).stdout) as { principals: Array<{ name: string }> };
      assert.deepEqual(
        json.principals.map((p) => p.name),
        ['ci-reader'],
      );
    });

    it('show, grants, disable, enable, secret-rotate, secret-delete and delete change what the API reports', async () => {
      assert.match(ok(await saved(['admin', 'principal', 'show', 'alice'])).stdout, /^description:\s+Alice$/m);

      const grants = ok(await saved(['admin', 'principal', 'grants', 'alice', '--add', 'team-b/*=pull', '--remove', 'team-a/**=push']));
      assert.equal(grants.stdout.trim(), 'pull on team-b/*');
      assert.deepEqual((await owner.get('/principals/alice')).body.grants, [{ pattern: 'team-b/*', permission: 'pull' }]);

      assert.match(ok(await saved(['admin', 'principal', 'disable', 'alice'])).stdout, /disabled user alice/);
      assert.equal((await owner.get('/principals/alice')).body.disabled, true);
      assert.match(ok(await saved(['admin', 'principal', 'enable', 'alice'])).stdout, /enabled user alice/);
      assert.equal((await owner.get('/principals/alice')).body.disabled, false);

      const rotated = ok(await saved(['admin', 'principal', 'secret-rotate', 'alice', '--name', 'ci']));
      assert.match(rotated.stdout, /^created secret ci of user alice/m);
      assert.match(rotated.stderr, /shown only once/);
      const secret = /^ci: (\S+)$/m.exec(rotated.stdout)?.[1] ?? '';
      await tokenFor(server.url, 'alice', secret, []);
      ok(await saved(['admin', 'principal', 'secret-delete', 'alice', 'ci']));
      assert.deepEqual(
        (await owner.get('/principals/alice')).body.secrets.map((s: { name: string }) => s.name),
        ['password'],
      );

      ok(await saved(['admin', 'principal', 'delete', 'alice']));
      assert.equal((await owner.get('/principals/alice')).status, 404);
    });

    it('fails with one line that says what to do next', async () => {
      failsWith(await runCli(['admin', 'principal', 'list'], { env: loggedOut }), new RegExp(`^berth: not logged in to ${host}: run \`berth login ${host}\``));
      failsWith(
        await runCli(['admin', 'principal', 'list'], { env: { ...loggedIn, BERTH_REGISTRY: '' } }),
        /no registry given: pass --registry HOST:PORT or set BERTH_REGISTRY/,
      );
      failsWith(await saved(['admin', 'principal', 'show', 'nobody']), /^berth: no principal with id or name "nobody" \(HTTP 404 NAME_UNKNOWN\)/);
      failsWith(await saved(['admin', 'principal', 'create', 'user', 'x', '--grant', 'team/**']), /invalid grant "team\/\*\*": expected PATTERN=PERMISSION/);
      failsWith(await runCli(['admin', 'principal', 'list', '--username', 'owner'], { env: loggedOut }), /--username needs --password-stdin/);
      const wrong = await runCli(['admin', 'principal', 'list', '--username', 'owner', '--password-stdin'], { env: loggedOut, stdin: 'wrong\n' });
      failsWith(wrong, /invalid username or password/);

      const created = await owner.post('/principals', { kind: 'user', name: 'not-owner', grants: [{ pattern: '**', permission: 'pull' }] });
      const denied = await runCli(['admin', 'principal', 'list', '--username', 'not-owner', '--password-stdin'], {
        env: loggedOut,
        stdin: created.body.secret.value,
      });
      failsWith(denied, new RegExp(`^berth: not-owner is not an owner of ${host}: log in as an owner`));
    });
  });

  describe('berth admin anonymous-pull, audit; berth keys rotate', () => {
    it('anonymous-pull shows, replaces and clears the patterns', async () => {
      assert.match(ok(await saved(['admin', 'anonymous-pull'])).stdout, /anonymous pull is off/);
      assert.equal(ok(await saved(['admin', 'anonymous-pull', 'public/**', 'demo/*'])).stdout, 'demo/*\npublic/**\n');
      assert.deepEqual((await owner.get('/settings/anonymous-pull')).body.patterns, ['demo/*', 'public/**']);
      ok(await saved(['admin', 'anonymous-pull', '--clear']));
      assert.deepEqual((await owner.get('/settings/anonymous-pull')).body.patterns, []);
    });

    it('keys rotate prints the new key id, which the registry then publishes', async () => {
      const kid = /new signing key (\S+);/.exec(ok(await saved(['keys', 'rotate'])).stdout)?.[1];
      const jwks = (await (await fetch(`${server.url}/oauth2/jwks`)).json()) as { keys: Array<{ kid: string }> };
      assert.ok(kid && jwks.keys.some((k) => k.kid === kid));
    });

    it('audit lists entries newest first, as a table or JSON', async () => {
      assert.match(ok(await saved(['admin', 'audit', '--limit', '3'])).stdout, /^TIME\s+EVENT\s+PRINCIPAL\s+ADDRESS\s+REPOSITORY\s+DETAIL$/m);
      const json = JSON.parse(ok(await saved(['admin', 'audit', '--principal', 'owner', '--limit', '50', '--json'])).stdout) as {
        entries: Array<{ event: string; principalName: string }>;
      };
      assert.ok(json.entries.some((e) => e.event === 'admin.keys.rotated'));
      assert.ok(json.entries.every((e) => e.principalName === 'owner'));
    });
  });

  describe('berth apply', () => {
    const file = () => join(home, 'berth.yaml');
    const desired = `
settings:
  anonymousPull: [public/**]
users:
  - name: bob
    description: Bob
    grants:
      team-b/**: push
services:
  - name: ci-pusher
    grants:
      team-b/app: push
tokens:
  - name: ci-fetch
    grants:
      vendor/**: [content/read, metadata/read]
`;

    it('--dry-run prints the plan and changes nothing', async () => {
      await writeFile(file(), desired);
      const before = (await owner.get('/principals')).body;
      const result = ok(await saved(['apply', '-f', file(), '--dry-run']));
      assert.deepEqual(result.stdout.trim().split('\n'), [
        '+ create user bob: push on team-b/**',
        '+ create service ci-pusher: push on team-b/app',
        '+ create token ci-fetch: content/read on vendor/**, metadata/read on vendor/**',
        '~ anonymous pull: + public/**',
        'dry run: 4 change(s) not applied',
      ]);
      assert.deepEqual((await owner.get('/principals')).body, before);
      assert.deepEqual((await owner.get('/settings/anonymous-pull')).body.patterns, []);
    });

    it('applies the plan, printing new secrets once; the secrets log in with the declared grants', async () => {
      const result = ok(await saved(['apply', '-f', file()]));
      assert.match(result.stdout, /^applied 4 change\(s\) to /m);
      const secret = /^secret of token ci-fetch: password1 = (\S+)$/m.exec(result.stdout)?.[1] ?? '';
      assert.match(result.stdout, /^secret of user bob: password = \S+$/m);
      assert.match(result.stdout, /^secret of service ci-pusher: secret1 = \S+$/m);
      assert.match(result.stderr, /shown only once/);
      const granted = await tokenFor(server.url, 'ci-fetch', secret, ['repository:vendor/lib:pull,push']);
      assert.equal(granted['scope'], 'repository:vendor/lib:pull');
      assert.equal((await owner.get('/principals/bob')).body.description, 'Bob');
      assert.deepEqual((await owner.get('/settings/anonymous-pull')).body.patterns, ['public/**']);
    });

    it('is a no-op the second time', async () => {
      const before = (await owner.get('/principals')).body;
      const result = ok(await saved(['apply', '-f', file()]));
      assert.equal(result.stdout.trim(), `no changes: ${host} matches ${file()}`);
      assert.deepEqual((await owner.get('/principals')).body, before);
    });

    it('updates grants and disabled flags, and deletes unlisted principals only with prune: true', async () => {
      await writeFile(
        file(),
        desired
          .replace('team-b/**: push', 'team-b/**: pull')
          .replace('  - name: ci-pusher\n', '  - name: ci-pusher\n    disabled: true\n')
          .replace(/tokens:[\s\S]*$/, ''),
      );
      const kept = ok(await saved(['apply', '-f', file()]));
      assert.deepEqual(kept.stdout.trim().split('\n').slice(0, -1), [
        '~ grants user bob: + pull on team-b/**, - push on team-b/**',
        '~ disable service ci-pusher',
      ]);
      assert.equal((await owner.get('/principals/ci-fetch')).status, 200, 'not pruned without prune: true');

      await writeFile(file(), `prune: true\n${await readFile(file(), 'utf8')}`);
      const pruned = ok(await saved(['apply', '-f', file(), '--json']));
      const body = JSON.parse(pruned.stdout) as { changes: string[]; notes: string[]; applied: boolean };
      assert.equal(body.applied, true);
      assert.deepEqual(body.changes.sort(), ['- delete token ci-fetch', '- delete token ci-reader', '- delete user not-owner']);
      assert.deepEqual(body.notes, ['kept user owner: it is the principal applying this file']);
      assert.equal((await owner.get('/principals/ci-fetch')).status, 404);
      assert.equal((await owner.get('/principals/owner')).status, 200);
      assert.equal(ok(await saved(['apply', '-f', file()])).stdout.includes('no changes'), true);
    });

    it('refuses an invalid file before touching the registry, naming the bad value', async () => {
      await writeFile(file(), 'users:\n  - name: zed\n    grants:\n      team/**: superuser\n');
      failsWith(await saved(['apply', '-f', file()]), /berth\.yaml: users\.0\.grants\.team\/\*\*: unknown permission "superuser"/);
      assert.equal((await owner.get('/principals/zed')).status, 404);
    });
  });
});
