/**
 * Real clients against a real Berth process with auth on. The login scenarios (a password, the
 * null-GUID user with a refresh token, a wrong password, logout, a pull-only user, a token for one
 * repository) are written once in shared-scenarios.ts and run here for each way of logging in:
 * skopeo's and podman's own `login`, and `berth login` (into config.json, or through
 * docker-credential-berth) followed by skopeo or podman. What only the berth CLI and the helper do
 * is tested below them.
 *
 * Everything (server, berth CLI, credential helper) runs from the TypeScript sources through tsx,
 * so no build is needed. Each client gets a private config directory: nothing from the machine's
 * credentials or container configuration is used.
 */
import assert from 'node:assert/strict';
import { described, type ExecResult as Result } from '../support/exec.js';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BERTH_SOURCE_CLI, startBerth, type BerthProcess } from '../support/berth-process.js';
import { ClientBox, tsxArgs } from '../support/client-box.js';
import { createFixtureLayout, type FixtureLayout } from '../support/oci-layout.js';
import {
  berthLoginPodman,
  berthLoginSkopeo,
  credentialHelperPodman,
  credentialHelperSkopeo,
  podmanLogin,
  skopeoLogin,
  skopeoTransfer,
} from './client-drivers.js';
import { makeLowercaseTempDir, uniqueRepo } from './harness.js';
import { describeSharedLoginScenarios, refreshTokenUser as nullUser, type LoginContext } from './shared-scenarios.js';

const ownerPassword = 'owner-password-e2e-1';

function describeRun(file: string, args: readonly string[], result: Result): string {
  return described(`\`${file} ${args.join(' ')}\``, result);
}

/** The shared client box plus a step that must succeed. */
class AuthClientBox extends ClientBox {
  async ok(file: string, args: readonly string[], input = ''): Promise<Result> {
    const result = await this.run(file, args, input);
    assert.equal(result.code, 0, describeRun(file, args, result));
    return result;
  }
}

/** Starts Berth with auth on and the owner `owner`; `config` (YAML/JSON text) is passed with --config. */
async function startAuthBerth(dir: string, config?: string): Promise<BerthProcess> {
  const args: string[] = [];
  if (config !== undefined) {
    await writeFile(join(dir, 'berth.yaml'), config);
    args.push('--config', join(dir, 'berth.yaml'));
  }
  return startBerth({
    auth: true,
    cliPath: BERTH_SOURCE_CLI,
    nodeArgs: tsxArgs,
    args,
    env: { BERTH_BOOTSTRAP_USER: 'owner', BERTH_BOOTSTRAP_PASSWORD: ownerPassword },
  });
}

/** The management API's create-principal call, made as the owner; returns the principal's secret. */
async function createPrincipal(
  server: BerthProcess,
  body: { kind: 'user' | 'service' | 'token'; name: string; grants: { pattern: string; permission: string }[] },
): Promise<string> {
  const query = new URLSearchParams({ service: 'berth', scope: 'registry:admin:*' });
  const tokenRes = await fetch(`${server.url}/oauth2/token?${query.toString()}`, {
    headers: { Authorization: `Basic ${Buffer.from(`owner:${ownerPassword}`).toString('base64')}` },
  });
  assert.equal(tokenRes.status, 200, await tokenRes.clone().text());
  const { token } = (await tokenRes.json()) as { token: string };
  const res = await fetch(`${server.url}/api/v1/principals`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 201, `POST /api/v1/principals -> ${res.status}: ${await res.clone().text()}`);
  return ((await res.json()) as { secret: { value: string } }).secret.value;
}

/** A loopback port nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** The refresh token `berth login` left in a config.json. */
async function storedIdentityToken(path: string, host: string): Promise<string> {
  const config = JSON.parse(await readFile(path, 'utf8')) as { auths?: Record<string, { identitytoken?: string; auth?: string }> };
  const entry = config.auths?.[host];
  assert.ok(entry?.identitytoken, `no identitytoken for ${host} in ${path}`);
  assert.equal(Buffer.from(entry.auth ?? '', 'base64').toString(), `${nullUser}:`, 'only the null-GUID user, no password');
  return entry.identitytoken;
}

describe('real clients against Berth with auth on', () => {
  let server: BerthProcess;
  let layout: FixtureLayout;
  let box: AuthClientBox;
  let layoutDir = '';
  let host = '';
  let context: LoginContext | undefined;

  before(async () => {
    layoutDir = await makeLowercaseTempDir('auth-layout');
    layout = await createFixtureLayout(layoutDir, 'auth-clients');
    server = await startAuthBerth(layoutDir);
    host = server.host;
    box = await AuthClientBox.create(host, 'pw');

    // Two repositories holding the image, pushed as the owner; a user who may pull both, and a
    // token that may pull one; a refresh token of the owner as `berth token --expose` prints it.
    const seeded = { granted: 'e2e/auth/team/app', other: 'e2e/auth/team/other' };
    const seeder = await skopeoLogin.create(host);
    try {
      const login = await seeder.login('owner', ownerPassword);
      assert.equal(login.code, 0, describeRun('skopeo login', [], login));
      for (const repo of Object.values(seeded)) {
        const push = await seeder.push(layout, `${host}/${repo}:v1`);
        assert.equal(push.code, 0, describeRun('skopeo copy (push as owner)', [], push));
      }
    } finally {
      await seeder.dispose();
    }
    const pullerPassword = await createPrincipal(server, { kind: 'user', name: 'puller', grants: [{ pattern: 'e2e/auth/**', permission: 'pull' }] });
    const repoToken = await createPrincipal(server, { kind: 'token', name: 'app-token', grants: [{ pattern: seeded.granted, permission: 'pull' }] });
    const tokenBox = await AuthClientBox.create(host, 'rt');
    try {
      const login = await tokenBox.berth(['login', host, '-u', 'owner', '--password-stdin'], ownerPassword);
      assert.equal(login.code, 0, describeRun('berth login', [], login));
      const expose = await tokenBox.berth(['token', '--expose', host]);
      assert.equal(expose.code, 0, describeRun('berth token --expose', [], expose));
      const exposed = JSON.parse(expose.stdout) as { accessToken: string };
      context = {
        host,
        layout,
        owner: { name: 'owner', password: ownerPassword },
        refreshToken: exposed.accessToken,
        puller: { name: 'puller', password: pullerPassword },
        repoToken: { name: 'app-token', password: repoToken },
        seeded,
      };
    } finally {
      await tokenBox.dispose();
    }
  });
  after(async () => {
    await box?.dispose();
    const exit = await server?.stop();
    await rm(layoutDir, { recursive: true, force: true });
    if (exit) assert.deepEqual(exit, { code: 0, signal: null }, `Berth did not exit cleanly\n${server.output().stderr}`);
  });
  const loginContext = (): LoginContext => {
    assert.ok(context, 'the login context was not set up');
    return context;
  };

  for (const factory of [skopeoLogin, podmanLogin, berthLoginSkopeo, berthLoginPodman, credentialHelperSkopeo, credentialHelperPodman]) {
    describeSharedLoginScenarios(factory, loginContext);
  }

  describe('berth login (identitytoken in $DOCKER_CONFIG/config.json)', () => {
    // A box of its own: skopeo and podman read $DOCKER_CONFIG/config.json even with --authfile,
    // and then refuse `login` to the same registry ("auth file contains an Identity token").
    let loginBox: AuthClientBox;
    before(async () => {
      loginBox = await AuthClientBox.create(host, 'login');
      const login = await loginBox.berth(['login', host, '--username', 'owner', '--password-stdin'], `${ownerPassword}\n`);
      assert.equal(login.code, 0, describeRun('berth login', [], login));
      assert.equal(login.stdout, 'Login Succeeded\n');
    });
    after(async () => loginBox?.dispose());

    it('stores only a refresh token, as the null-GUID user with an identitytoken', async () => {
      assert.ok(!(await readFile(loginBox.dockerConfig, 'utf8')).includes(ownerPassword));
      await storedIdentityToken(loginBox.dockerConfig, host);
    });

    it('berth token prints a scoped access token from the stored login', async () => {
      const result = await loginBox.berth(['token', host, '--scope', 'repository:e2e/auth/x:pull']);
      assert.equal(result.code, 0, describeRun('berth token', [], result));
      const res = await fetch(`${server.url}/v2/e2e/auth/x/tags/list`, { headers: { Authorization: `Bearer ${result.stdout.trim()}` } });
      assert.equal(res.status, 404, 'authorized (the repository does not exist)');
    });

    it('berth token --expose (as az acr login --expose-token) prints the registry, the null-GUID user and a refresh token', async () => {
      const result = await loginBox.berth(['token', '--expose', host]);
      assert.equal(result.code, 0, describeRun('berth token --expose', [], result));
      const exposed = JSON.parse(result.stdout) as { accessToken: string; loginServer: string; username: string };
      assert.deepEqual([exposed.loginServer, exposed.username], [host, nullUser]);
      // The null-GUID login scenarios above log in with such a token; here: it is one, for the owner.
      const claims = JSON.parse(Buffer.from(exposed.accessToken.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: number };
      assert.ok(typeof claims.exp === 'number' && claims.exp * 1000 > Date.now(), 'a refresh token that has not run out');
    });
  });

  describe('docker-credential-berth (credHelpers in config.json, helper on PATH)', () => {
    let helperBox: AuthClientBox;
    before(async () => {
      helperBox = await AuthClientBox.create(host, 'helper');
      await writeFile(helperBox.dockerConfig, JSON.stringify({ credHelpers: { [host]: 'berth' } }));
      const login = await helperBox.berth(['login', host, '-u', 'owner', '--password-stdin'], ownerPassword);
      assert.equal(login.code, 0, describeRun('berth login', [], login));
    });
    after(async () => helperBox?.dispose());

    it("berth login stored the refresh token in the helper's file (0600), not in config.json", async () => {
      const config = JSON.parse(await readFile(helperBox.dockerConfig, 'utf8')) as Record<string, unknown>;
      assert.deepEqual(config, { credHelpers: { [host]: 'berth' } });
      assert.equal((await stat(helperBox.credentialFile)).mode & 0o777, 0o600);
      const list = await helperBox.ok('docker-credential-berth', ['list']);
      assert.deepEqual(JSON.parse(list.stdout), { [host]: nullUser });
    });

    it('answers get for an unknown server with "credentials not found in native keychain" on stdout and exit 1', async () => {
      const result = await helperBox.run('docker-credential-berth', ['get'], 'unknown.example.com\n');
      assert.deepEqual([result.code, result.stdout], [1, 'credentials not found in native keychain\n']);
    });
  });

  // A wrong password is one of the shared login scenarios (for berth login with the exact line).
  describe('berth login failures: one line saying what to do next, exit 1', () => {
    it('an unreachable registry', async () => {
      const port = await closedPort();
      const result = await box.berth(['login', `127.0.0.1:${port}`, '-u', 'owner', '--password-stdin'], 'x');
      assert.equal(result.code, 1);
      assert.equal(result.stderr, `berth: cannot reach http://127.0.0.1:${port}: ECONNREFUSED; check the address and that the registry is running\n`);
    });

    it('plain HTTP off loopback', async () => {
      const result = await box.berth(['login', 'http://registry.example.com', '-u', 'owner', '--password-stdin'], 'x');
      assert.equal(result.code, 1);
      assert.match(
        result.stderr,
        /^berth: refusing to log in to registry\.example\.com over plain HTTP .*; serve it over HTTPS and use https:\/\/registry\.example\.com\n$/,
      );
    });
  });
});

describe('docker-credential-berth renews refresh tokens that near expiry (real short lifetimes)', () => {
  let server: BerthProcess;
  let layout: FixtureLayout;
  let box: AuthClientBox;
  let layoutDir = '';
  /** Seconds: short enough to cross half of it in a test, long enough for a push to fit in it. */
  const refreshSeconds = 6;

  before(async () => {
    layoutDir = await makeLowercaseTempDir('auth-renew-layout');
    layout = await createFixtureLayout(layoutDir, 'auth-renew');
    server = await startAuthBerth(layoutDir, `auth:\n  lifetimes:\n    user:\n      refreshMs: ${refreshSeconds * 1000}\n`);
    box = await AuthClientBox.create(server.host, 'renew');
    await writeFile(box.dockerConfig, JSON.stringify({ credHelpers: { [server.host]: 'berth' } }));
    const login = await box.berth(['login', server.host, '-u', 'owner', '--password-stdin'], ownerPassword);
    assert.equal(login.code, 0, describeRun('berth login', [], login));
  });
  after(async () => {
    await box?.dispose();
    await server?.stop();
    await rm(layoutDir, { recursive: true, force: true });
  });

  const stored = async (): Promise<{ token: string; iat: number; exp: number }> => {
    const file = JSON.parse(await readFile(box.credentialFile, 'utf8')) as { auths: Record<string, { refreshToken: string }> };
    const token = file.auths[server.host]?.refreshToken ?? '';
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { iat: number; exp: number };
    return { token, iat: claims.iat * 1000, exp: claims.exp * 1000 };
  };
  /** Waits for a point in time (a precondition, not an assertion on speed). */
  const waitUntil = (at: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));

  it('a get past half the lifetime exchanges the token for a fresh one, which skopeo then pushes with', async () => {
    const first = await stored();
    await waitUntil(first.iat + (first.exp - first.iat) / 2 + 200);
    const repo = uniqueRepo('auth', 'renewed');
    const skopeo = skopeoTransfer(box, box.dockerConfig);
    const push = await skopeo.push(layout, `${server.host}/${repo}:v1`);
    assert.equal(push.code, 0, describeRun('skopeo copy (push)', [], push));
    const second = await stored();
    assert.notEqual(second.token, first.token);
    assert.ok(second.exp > first.exp, 'the renewed token outlives the first');

    // Past the first token's expiry, the helper still hands out a working login.
    await waitUntil(first.exp + 1000);
    const pulled = await skopeo.pull(`${server.host}/${repo}:v1`);
    assert.deepEqual(pulled.image?.manifestDigests, [layout.image.manifest.digest], describeRun('skopeo copy (pull)', [], pulled.result));
    assert.ok((await stored()).exp > first.exp);
  });
});
