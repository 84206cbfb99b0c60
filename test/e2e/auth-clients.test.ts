/**
 * Real clients against a real Berth process with auth on: skopeo and podman logging in with a
 * password, with the identitytoken `berth login` stores, with the null-GUID user and a refresh
 * token, and through docker-credential-berth; then pushing and pulling with what they got.
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
import { createFixtureLayout, resolveRef, type FixtureLayout } from '../support/oci-layout.js';
import { makeLowercaseTempDir, uniqueRepo } from './harness.js';

const nullUser = '00000000-0000-0000-0000-000000000000';
const ownerPassword = 'owner-password-e2e-1';

function describeRun(file: string, args: readonly string[], result: Result): string {
  return described(`\`${file} ${args.join(' ')}\``, result);
}

/** The shared client box plus this suite's login, push and pull steps. */
class AuthClientBox extends ClientBox {
  async ok(file: string, args: readonly string[], input = ''): Promise<Result> {
    const result = await this.run(file, args, input);
    assert.equal(result.code, 0, describeRun(file, args, result));
    return result;
  }

  async skopeoLogin(host: string, authfile: string, username: string, password: string): Promise<void> {
    await this.ok('skopeo', ['login', '--tls-verify=false', '--authfile', authfile, '--username', username, '--password-stdin', host], password);
  }

  async podmanLogin(host: string, authfile: string, username: string, password: string): Promise<void> {
    await this.ok(
      'podman',
      this.podmanArgs(['login', '--tls-verify=false', '--authfile', authfile, '--username', username, '--password-stdin', host]),
      password,
    );
  }

  /** skopeo copy from the fixture layout to `dest`; returns the pushed manifest digest. */
  skopeoPush(layout: FixtureLayout, dest: string, authfile: string): Promise<Result> {
    const args = [
      'copy',
      '--dest-tls-verify=false',
      '--authfile',
      authfile,
      '--digestfile',
      join(this.dir, 'tmp', 'digest'),
      `oci:${layout.dir}:${layout.refs.image}`,
      `docker://${dest}`,
    ];
    return this.run('skopeo', this.skopeoArgs(args));
  }

  /** skopeo copy from `src` into a fresh OCI layout; resolves with the manifest digest pulled. */
  async skopeoPull(src: string, authfile: string): Promise<{ result: Result; digest: string | undefined }> {
    const layout = join(this.dir, 'pulls', `p${Math.random().toString(36).slice(2)}`);
    const result = await this.run(
      'skopeo',
      this.skopeoArgs(['copy', '--src-tls-verify=false', '--authfile', authfile, `docker://${src}`, `oci:${layout}:pulled`]),
    );
    return { result, digest: result.code === 0 ? (await resolveRef(layout, 'pulled')).digest : undefined };
  }

  /** Imports the fixture image into podman's storage (no registry involved); returns its ID. */
  async podmanImport(layout: FixtureLayout): Promise<string> {
    const { stdout } = await this.ok(
      'podman',
      this.podmanArgs(['pull', '--quiet', '--signature-policy', join(this.dir, 'policy.json'), `oci:${layout.dir}:${layout.refs.image}`]),
    );
    return stdout.trim().split('\n').pop() ?? '';
  }

  podmanPush(image: string, dest: string, authfile: string): Promise<Result> {
    return this.run(
      'podman',
      this.podmanArgs(['push', '--quiet', '--signature-policy', join(this.dir, 'policy.json'), '--tls-verify=false', '--authfile', authfile, image, dest]),
    );
  }

  podmanPull(ref: string, authfile: string): Promise<Result> {
    return this.run(
      'podman',
      this.podmanArgs(['pull', '--quiet', '--signature-policy', join(this.dir, 'policy.json'), '--tls-verify=false', '--authfile', authfile, ref]),
    );
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

  before(async () => {
    layoutDir = await makeLowercaseTempDir('auth-layout');
    layout = await createFixtureLayout(layoutDir, 'auth-clients');
    server = await startAuthBerth(layoutDir);
    host = server.host;
    box = await AuthClientBox.create(host, 'pw');
  });
  after(async () => {
    await box?.dispose();
    const exit = await server?.stop();
    await rm(layoutDir, { recursive: true, force: true });
    if (exit) assert.deepEqual(exit, { code: 0, signal: null }, `Berth did not exit cleanly\n${server.output().stderr}`);
  });

  describe('password logins', () => {
    it('skopeo login, then skopeo copy pushes and pulls the image byte for byte', async () => {
      const authfile = join(box.dir, 'skopeo-auth.json');
      await box.skopeoLogin(host, authfile, 'owner', ownerPassword);
      const repo = uniqueRepo('auth', 'skopeo-password');
      const push = await box.skopeoPush(layout, `${host}/${repo}:v1`, authfile);
      assert.equal(push.code, 0, describeRun('skopeo copy (push)', [], push));
      const pulled = await box.skopeoPull(`${host}/${repo}:v1`, authfile);
      assert.equal(pulled.result.code, 0, describeRun('skopeo copy (pull)', [], pulled.result));
      assert.equal(pulled.digest, layout.image.manifest.digest);
    });

    it('podman login, then podman pushes and pulls the image (same image ID)', async () => {
      const authfile = join(box.dir, 'podman-auth.json');
      await box.podmanLogin(host, authfile, 'owner', ownerPassword);
      const repo = uniqueRepo('auth', 'podman-password');
      const id = await box.podmanImport(layout);
      const push = await box.podmanPush(id, `${host}/${repo}:v1`, authfile);
      assert.equal(push.code, 0, describeRun('podman push', [], push));
      await box.ok('podman', box.podmanArgs(['rmi', '--force', id]));
      const pull = await box.podmanPull(`${host}/${repo}:v1`, authfile);
      assert.equal(pull.code, 0, describeRun('podman pull', [], pull));
      assert.equal(`sha256:${pull.stdout.trim().split('\n').pop() ?? ''}`, layout.image.config.digest);
    });

    it('clients without credentials are refused with an authentication error', async () => {
      const repo = uniqueRepo('auth', 'anonymous');
      const push = await box.skopeoPush(layout, `${host}/${repo}:v1`, join(box.dir, 'empty-auth.json'));
      assert.notEqual(push.code, 0);
      assert.match(push.stderr, /requested access to the resource is denied/);
    });
  });

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

    it('stores only a refresh token, which skopeo uses to push and pull', async () => {
      assert.ok(!(await readFile(loginBox.dockerConfig, 'utf8')).includes(ownerPassword));
      await storedIdentityToken(loginBox.dockerConfig, host);
      const repo = uniqueRepo('auth', 'skopeo-identitytoken');
      const push = await loginBox.skopeoPush(layout, `${host}/${repo}:v1`, loginBox.dockerConfig);
      assert.equal(push.code, 0, describeRun('skopeo copy (push)', [], push));
      const pulled = await loginBox.skopeoPull(`${host}/${repo}:v1`, loginBox.dockerConfig);
      assert.equal(pulled.digest, layout.image.manifest.digest, describeRun('skopeo copy (pull)', [], pulled.result));
    });

    it('which podman uses to push and pull', async () => {
      const repo = uniqueRepo('auth', 'podman-identitytoken');
      const id = await loginBox.podmanImport(layout);
      const push = await loginBox.podmanPush(id, `${host}/${repo}:v1`, loginBox.dockerConfig);
      assert.equal(push.code, 0, describeRun('podman push', [], push));
      await loginBox.ok('podman', loginBox.podmanArgs(['rmi', '--force', id]));
      const pull = await loginBox.podmanPull(`${host}/${repo}:v1`, loginBox.dockerConfig);
      assert.equal(pull.code, 0, describeRun('podman pull', [], pull));
    });

    it('berth token prints a scoped access token from the stored login', async () => {
      const result = await loginBox.berth(['token', host, '--scope', 'repository:e2e/auth/x:pull']);
      assert.equal(result.code, 0, describeRun('berth token', [], result));
      const res = await fetch(`${server.url}/v2/e2e/auth/x/tags/list`, { headers: { Authorization: `Bearer ${result.stdout.trim()}` } });
      assert.equal(res.status, 404, 'authorized (the repository does not exist)');
    });

    describe('the null-GUID user with a refresh token as password (berth token --expose, as az acr login --expose-token)', () => {
      let exposed: { accessToken: string; loginServer: string; username: string };
      let guidBox: AuthClientBox;
      before(async () => {
        const result = await loginBox.berth(['token', '--expose', host]);
        assert.equal(result.code, 0, describeRun('berth token --expose', [], result));
        exposed = JSON.parse(result.stdout) as typeof exposed;
        assert.deepEqual([exposed.loginServer, exposed.username], [host, nullUser]);
        guidBox = await AuthClientBox.create(host, 'guid');
      });
      after(async () => guidBox?.dispose());

      it('skopeo logs in with it and pushes and pulls', async () => {
        const authfile = join(guidBox.dir, 'skopeo-null-guid.json');
        await guidBox.skopeoLogin(exposed.loginServer, authfile, exposed.username, exposed.accessToken);
        const repo = uniqueRepo('auth', 'skopeo-null-guid');
        const push = await guidBox.skopeoPush(layout, `${host}/${repo}:v1`, authfile);
        assert.equal(push.code, 0, describeRun('skopeo copy (push)', [], push));
        assert.equal((await guidBox.skopeoPull(`${host}/${repo}:v1`, authfile)).digest, layout.image.manifest.digest);
      });

      it('podman logs in with it and pushes and pulls', async () => {
        const authfile = join(guidBox.dir, 'podman-null-guid.json');
        await guidBox.podmanLogin(exposed.loginServer, authfile, exposed.username, exposed.accessToken);
        const repo = uniqueRepo('auth', 'podman-null-guid');
        const id = await guidBox.podmanImport(layout);
        const push = await guidBox.podmanPush(id, `${host}/${repo}:v1`, authfile);
        assert.equal(push.code, 0, describeRun('podman push', [], push));
        await guidBox.ok('podman', guidBox.podmanArgs(['rmi', '--force', id]));
        assert.equal((await guidBox.podmanPull(`${host}/${repo}:v1`, authfile)).code, 0);
      });
    });

    it('berth logout forgets the login', async () => {
      const logout = await loginBox.berth(['logout', host]);
      assert.equal(logout.stdout, `Removing login credentials for ${host}\n`);
      const config = JSON.parse(await readFile(loginBox.dockerConfig, 'utf8')) as { auths?: Record<string, unknown> };
      assert.equal(config.auths?.[host], undefined);
      assert.equal((await loginBox.berth(['logout', host])).stdout, `Not logged in to ${host}\n`);
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

    it('skopeo gets the token from the helper and pushes and pulls', async () => {
      const repo = uniqueRepo('auth', 'skopeo-helper');
      const push = await helperBox.skopeoPush(layout, `${host}/${repo}:v1`, helperBox.dockerConfig);
      assert.equal(push.code, 0, describeRun('skopeo copy (push)', [], push));
      assert.equal((await helperBox.skopeoPull(`${host}/${repo}:v1`, helperBox.dockerConfig)).digest, layout.image.manifest.digest);
    });

    it('podman gets the token from the helper and pushes and pulls', async () => {
      const repo = uniqueRepo('auth', 'podman-helper');
      const id = await helperBox.podmanImport(layout);
      const push = await helperBox.podmanPush(id, `${host}/${repo}:v1`, helperBox.dockerConfig);
      assert.equal(push.code, 0, describeRun('podman push', [], push));
      await helperBox.ok('podman', helperBox.podmanArgs(['rmi', '--force', id]));
      assert.equal((await helperBox.podmanPull(`${host}/${repo}:v1`, helperBox.dockerConfig)).code, 0);
    });

    it('answers get for an unknown server with "credentials not found in native keychain" on stdout and exit 1', async () => {
      const result = await helperBox.run('docker-credential-berth', ['get'], 'unknown.example.com\n');
      assert.deepEqual([result.code, result.stdout], [1, 'credentials not found in native keychain\n']);
    });
  });

  describe('principals made through the management API', () => {
    let pullerPassword = '';
    let appToken = '';
    const pushedRepo = 'e2e/auth/team/app';
    const otherRepo = 'e2e/auth/team/other';

    let principalBox: AuthClientBox;
    before(async () => {
      principalBox = await AuthClientBox.create(host, 'prin');
      const authfile = join(principalBox.dir, 'owner.json');
      await principalBox.skopeoLogin(host, authfile, 'owner', ownerPassword);
      for (const repo of [pushedRepo, otherRepo]) {
        const push = await principalBox.skopeoPush(layout, `${host}/${repo}:v1`, authfile);
        assert.equal(push.code, 0, describeRun('skopeo copy (push as owner)', [], push));
      }
      pullerPassword = await createPrincipal(server, { kind: 'user', name: 'puller', grants: [{ pattern: 'e2e/auth/**', permission: 'pull' }] });
      appToken = await createPrincipal(server, { kind: 'token', name: 'app-token', grants: [{ pattern: pushedRepo, permission: 'pull' }] });
    });
    after(async () => principalBox?.dispose());

    it('a pull-only user pulls, and its push fails with "requested access to the resource is denied"', async () => {
      const authfile = join(principalBox.dir, 'puller.json');
      await principalBox.skopeoLogin(host, authfile, 'puller', pullerPassword);
      assert.equal((await principalBox.skopeoPull(`${host}/${pushedRepo}:v1`, authfile)).digest, layout.image.manifest.digest);
      const push = await principalBox.skopeoPush(layout, `${host}/e2e/auth/team/new:v1`, authfile);
      assert.notEqual(push.code, 0, 'a pull-only user pushed');
      assert.match(push.stderr, /requested access to the resource is denied/);
    });

    it('a token for one repository pulls it, and cannot pull another', async () => {
      const authfile = join(principalBox.dir, 'app-token.json');
      await principalBox.skopeoLogin(host, authfile, 'app-token', appToken);
      assert.equal((await principalBox.skopeoPull(`${host}/${pushedRepo}:v1`, authfile)).digest, layout.image.manifest.digest);
      const other = await principalBox.skopeoPull(`${host}/${otherRepo}:v1`, authfile);
      assert.notEqual(other.result.code, 0, 'a token for one repository pulled another');
      assert.match(other.result.stderr, /requested access to the resource is denied/);
    });
  });

  describe('berth login failures: one line saying what to do next, exit 1', () => {
    it('bad credentials', async () => {
      const result = await box.berth(['login', host, '-u', 'owner', '--password-stdin'], 'not-the-password');
      assert.equal(result.code, 1);
      assert.equal(result.stderr, `berth: login to ${host} failed: invalid username or password; check them and try again\n`);
      assert.equal(result.stdout, '');
    });

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
    const push = await box.skopeoPush(layout, `${server.host}/${repo}:v1`, box.dockerConfig);
    assert.equal(push.code, 0, describeRun('skopeo copy (push)', [], push));
    const second = await stored();
    assert.notEqual(second.token, first.token);
    assert.ok(second.exp > first.exp, 'the renewed token outlives the first');

    // Past the first token's expiry, the helper still hands out a working login.
    await waitUntil(first.exp + 1000);
    const pulled = await box.skopeoPull(`${server.host}/${repo}:v1`, box.dockerConfig);
    assert.equal(pulled.digest, layout.image.manifest.digest, describeRun('skopeo copy (pull)', [], pulled.result));
    assert.ok((await stored()).exp > first.exp);
  });
});
