/**
 * `berth login --oidc` and docker-credential-berth's renewal of such logins, against an in-process
 * Berth trusting a loopback OIDC issuer. The registry and the helper read one clock the test moves,
 * so expiry is exercised without waiting; the OIDC tokens are real (signed, discovered, verified).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import { credentialHelper, type HelperDeps } from '../../src/cli/credential-helper.js';
import { login, type CliIo, type LoginOptions } from '../../src/cli/login.js';
import { CredentialStore } from '../../src/client/credential-store.js';
import { discover, requestTokens, tokenTimes } from '../../src/remote/tokens.js';
import { startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.js';
import { startTestServer, type TestServer } from '../support/server.js';

const nullUser = '00000000-0000-0000-0000-000000000000';
const clock = { offset: 0, now: () => Date.now() + clock.offset };

interface Captured extends CliIo {
  out(): string;
  err(): string;
}

function io(env: NodeJS.ProcessEnv): Captured {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  return { stdin: Readable.from(['']), stdout, stderr, env, out: () => out, err: () => err };
}

describe('berth login --oidc and its renewal by docker-credential-berth', () => {
  let github: OidcIssuer;
  let cluster: OidcIssuer;
  let server: TestServer;
  /** Caps federated logins at a minute, so a GitHub token (5 minutes, minted at real time) is worth renewing from. */
  let capped: TestServer;
  let host = '';
  let dir = '';
  let env: NodeJS.ProcessEnv = {};

  /** A registry trusting both issuers: ci-pusher (push acme/*) for GitHub, k8s-puller (pull acme/*) for the cluster. */
  async function trustingServer(lifetimeCapMs?: number): Promise<TestServer> {
    const started = await startTestServer({
      auth: true,
      clock,
      federationIssuers: [{ issuer: github.issuer }, { issuer: cluster.issuer }],
      ...(lifetimeCapMs !== undefined ? { federationLifetimeCapMs: lifetimeCapMs } : {}),
    });
    const { principals } = started.app.auth;
    const store = started.app.metadata.auth;
    const pusher = await principals.createPrincipal('service', 'ci-pusher', { grants: [{ pattern: 'acme/*', permission: 'push' }], withoutSecret: true });
    const puller = await principals.createPrincipal('service', 'k8s-puller', { grants: [{ pattern: 'acme/*', permission: 'pull' }], withoutSecret: true });
    const trust = { conditions: [], audiences: ['berth'], createdAt: clock.now() };
    await store.federatedCredentials.put({
      ...trust,
      id: randomUUID(),
      name: 'gha',
      principalId: pusher.principal.id,
      issuer: github.issuer,
      subject: 'repo:acme/app:*',
    });
    await store.federatedCredentials.put({
      ...trust,
      id: randomUUID(),
      name: 'k8s',
      principalId: puller.principal.id,
      issuer: cluster.issuer,
      subject: 'system:serviceaccount:prod:*',
    });
    return started;
  }

  before(async () => {
    github = await startOidcIssuer();
    cluster = await startOidcIssuer({ alg: 'ES256' });
    server = await trustingServer();
    capped = await trustingServer(60_000);
    host = new URL(server.url).host;
  });
  after(async () => {
    await server.stop();
    await capped.stop();
    await github.stop();
    await cluster.stop();
  });
  beforeEach(async () => {
    clock.offset = 0;
    dir = await mkdtemp(join(tmpdir(), 'berth-oidc-login-'));
    env = {
      DOCKER_CONFIG: join(dir, 'docker'),
      BERTH_CONFIG_DIR: join(dir, 'berth'),
      ACTIONS_ID_TOKEN_REQUEST_URL: github.actionsTokenUrl,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: github.actionsRequestToken,
    };
  });

  const run = async (options: LoginOptions, environment = env, registry = host): Promise<Captured> => {
    const cli = io(environment);
    await login(registry, options, cli);
    return cli;
  };
  const useHelper = async (registry = host) => {
    await mkdir(join(dir, 'docker'), { recursive: true });
    await writeFile(join(dir, 'docker', 'config.json'), JSON.stringify({ credHelpers: { [registry]: 'berth' } }));
  };
  /** The scope the registry grants a refresh token when asked for `scope`. */
  const granted = async (refreshToken: string, scope: string, base = server.url) => {
    const challenge = await discover(base);
    assert.ok(challenge);
    return (await requestTokens(challenge, { refreshToken }, [scope], false)).scope;
  };
  /** A Kubernetes-shaped token minted at the test clock's now. */
  const k8sToken = (expiresIn = 3600) =>
    cluster.kubernetes({ namespace: 'prod', serviceAccount: 'web' }, { issuedAt: Math.floor(clock.now() / 1000), expiresIn });

  describe('berth login REG --oidc github --identity CLIENT_ID', () => {
    it("exchanges the job's ID token and stores only the refresh token as identitytoken", async () => {
      const cli = await run({ oidc: 'github', identity: 'ci-pusher' });
      assert.equal(cli.out(), 'Login Succeeded\n');
      assert.match(
        cli.err(),
        new RegExp(
          `^Stored a refresh token for ${host} in .*config\\.json, valid until \\S+Z \\(as long as the OIDC token that bought it\\); never the OIDC token\\.\\n$`,
        ),
      );
      const config = JSON.parse(await readFile(join(dir, 'docker', 'config.json'), 'utf8')) as {
        auths: Record<string, { auth: string; identitytoken: string }>;
      };
      const entry = config.auths[host];
      assert.ok(entry);
      assert.equal(Buffer.from(entry.auth, 'base64').toString(), `${nullUser}:`);
      assert.equal(await granted(entry.identitytoken, 'repository:acme/app:pull,push'), 'repository:acme/app:pull,push');
      const lifetime = (tokenTimes(entry.identitytoken)?.expiresAt ?? 0) - clock.now();
      assert.ok(lifetime <= 301_000, `the refresh token outlives the 5-minute ID token by ${lifetime} ms`);
    });

    it('with docker-credential-berth configured, stores the source next to the refresh token, never the OIDC token', async () => {
      await useHelper();
      const cli = await run({ oidc: 'github', identity: 'ci-pusher' });
      assert.match(cli.err(), /with its source \(github\), never the OIDC token; docker-credential-berth logs in again from the source when it runs out\./);
      const file = JSON.parse(await readFile(join(dir, 'berth', 'credentials.json'), 'utf8')) as { auths: Record<string, Record<string, unknown>> };
      const entry = file.auths[host];
      assert.deepEqual(Object.keys(entry ?? {}).sort(), ['oidc', 'refreshToken', 'username']);
      // No --audience: the source asks for whatever audience the registry advertises, so none is recorded.
      assert.deepEqual(entry?.['oidc'], { source: 'github', identity: 'ci-pusher' });
      assert.equal(tokenTimes(String(entry?.['refreshToken']))?.issuedAt !== undefined, true);
      assert.deepEqual(JSON.parse(await readFile(join(dir, 'docker', 'config.json'), 'utf8')), { credHelpers: { [host]: 'berth' } });
    });

    it("asks GitHub for the audience the registry advertises, which a credential made with this registry's audience accepts", async () => {
      const audience = await server.app.auth.audience.get();
      const modern = await server.app.auth.principals.createPrincipal('service', 'ci-modern', {
        grants: [{ pattern: 'acme/*', permission: 'push' }],
        withoutSecret: true,
      });
      await server.app.metadata.auth.federatedCredentials.put({
        id: randomUUID(),
        principalId: modern.principal.id,
        name: 'gha',
        issuer: github.issuer,
        audiences: [audience],
        subject: 'repo:acme/app:*',
        conditions: [],
        createdAt: clock.now(),
      });
      try {
        const cli = await run({ oidc: 'github', identity: 'ci-modern' });
        assert.equal(cli.out(), 'Login Succeeded\n');
      } finally {
        await server.app.metadata.auth.principals.delete(modern.principal.id);
      }
    });

    it('finds the principal without --identity when only one trusts the token', async () => {
      assert.equal((await run({ oidc: 'github' })).out(), 'Login Succeeded\n');
    });
  });

  describe('--oidc file:PATH and env:VAR', () => {
    it('a pull-only workload logs in with its projected service-account token and may pull, not push', async () => {
      const path = join(dir, 'token');
      await writeFile(path, await k8sToken());
      await run({ oidc: `file:${path}`, identity: 'k8s-puller' });
      const config = JSON.parse(await readFile(join(dir, 'docker', 'config.json'), 'utf8')) as { auths: Record<string, { identitytoken: string }> };
      assert.equal(await granted(config.auths[host]?.identitytoken ?? '', 'repository:acme/app:pull,push'), 'repository:acme/app:pull');
    });

    it('env:VAR', async () => {
      assert.equal((await run({ oidc: 'env:K8S_TOKEN', identity: 'k8s-puller' }, { ...env, K8S_TOKEN: await k8sToken() })).out(), 'Login Succeeded\n');
    });
  });

  describe('failures: one line saying what to fix', () => {
    const refused = async (options: LoginOptions, expected: string | RegExp, environment = env) => {
      await assert.rejects(run(options, environment), (err: Error) => {
        if (typeof expected === 'string') assert.equal(err.message, expected);
        else assert.match(err.message, expected);
        return true;
      });
    };

    it('not in an Actions job that may request ID tokens', async () => {
      await refused(
        { oidc: 'github', identity: 'ci-pusher' },
        '--oidc github needs a GitHub Actions job allowed to request ID tokens (ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN not set): add `permissions: id-token: write` to the workflow or job',
        { DOCKER_CONFIG: env['DOCKER_CONFIG'] },
      );
    });

    it('the registry refuses the token: its error_description names the failed check (in general terms)', async () => {
      const audience = await server.app.auth.audience.get();
      await refused(
        { oidc: 'github', identity: 'ci-pusher', audience: 'sts.amazonaws.com' },
        `login to ${host} with the github token failed: federated login refused: audience: the token's audience is not accepted; ask for this registry's audience ${JSON.stringify(audience)}`,
      );
      await refused(
        { oidc: 'github', identity: 'no-such-client' },
        `login to ${host} with the github token failed: federated login refused: issuer: the token's issuer is not trusted by this registry, or not for this client`,
      );
      const path = join(dir, 'other-ns');
      await writeFile(path, await cluster.kubernetes({ namespace: 'dev', serviceAccount: 'web' }));
      await refused(
        { oidc: `file:${path}`, identity: 'k8s-puller' },
        /failed: federated login refused: subject: no federated credential trusts the token's subject$/,
      );
      const expired = join(dir, 'expired');
      await writeFile(
        expired,
        await cluster.kubernetes({ namespace: 'prod', serviceAccount: 'web' }, { issuedAt: Math.floor(Date.now() / 1000) - 900, expiresIn: 600 }),
      );
      await refused(
        { oidc: `file:${expired}`, identity: 'k8s-puller' },
        /failed: federated login refused: expired: the token has expired or is not yet valid$/,
      );
    });

    it('a file that cannot be read, a variable that is not set', async () => {
      await refused({ oidc: `file:${join(dir, 'nope')}`, identity: 'k8s-puller' }, `cannot read the OIDC token file ${join(dir, 'nope')}: no such file`);
      await refused({ oidc: 'env:NOPE', identity: 'k8s-puller' }, 'the environment variable NOPE is not set or empty (it should hold the OIDC token)');
    });

    it('flags that do not go together', async () => {
      await refused({ oidc: 'github', username: 'alice' }, '--oidc logs in with an identity token, not a password: leave out --username and --password-stdin');
      await refused({ identity: 'ci-pusher' }, '--identity and --audience go with --oidc github|file:PATH|env:VAR');
      await refused({ oidc: 'env:X', audience: 'berth' }, '--audience applies to --oidc github only: a token from env:X already carries its audience');
      await refused({ oidc: 'vault' }, 'unknown --oidc source "vault": use github, file:PATH or env:VAR');
    });
  });

  describe('docker-credential-berth get, for a login made with --oidc', () => {
    let deps: HelperDeps;
    const warnings: string[] = [];
    beforeEach(() => {
      warnings.length = 0;
      deps = { store: new CredentialStore(join(dir, 'berth', 'credentials.json')), now: clock.now, warn: (l) => warnings.push(l), version: 'test', env };
    });
    const get = async (registry = host) => (JSON.parse(await credentialHelper('get', registry, deps)) as { Secret: string }).Secret;

    it('logs in again from GitHub once the refresh token nears its end, keeping the source', async () => {
      const registry = new URL(capped.url).host;
      await useHelper(registry);
      await run({ oidc: 'github', identity: 'ci-pusher' }, env, registry);
      const first = await get(registry);
      const firstExp = tokenTimes(first)?.expiresAt ?? 0;
      clock.offset = 40_000; // past half of the capped one-minute login
      const renewed = await get(registry);
      assert.notEqual(renewed, first);
      assert.ok((tokenTimes(renewed)?.expiresAt ?? 0) > firstExp);
      assert.equal(await granted(renewed, 'repository:acme/app:push', capped.url), 'repository:acme/app:push');
      const entry = (await deps.store.get(registry)) as unknown as Record<string, unknown>;
      assert.deepEqual(entry['oidc'], { source: 'github', identity: 'ci-pusher' });
    });

    it('logs in again from the file once the refresh token has expired, reading the token the platform rotated in', async () => {
      await useHelper();
      const path = join(dir, 'token');
      await writeFile(path, await k8sToken(600));
      await run({ oidc: `file:${path}`, identity: 'k8s-puller' });
      const first = await get();
      clock.offset = 11 * 60_000; // the refresh token (and the OIDC token) have expired
      await writeFile(path, await k8sToken(600)); // the kubelet rotated the projected token
      const renewed = await get();
      assert.notEqual(renewed, first);
      assert.ok((tokenTimes(renewed)?.expiresAt ?? 0) > clock.now());
      assert.equal(await granted(renewed, 'repository:acme/app:pull'), 'repository:acme/app:pull');
    });

    it('does not exchange again while the source still holds the token the login was bought with', async () => {
      await useHelper();
      const path = join(dir, 'token');
      await writeFile(path, await k8sToken(600));
      await run({ oidc: `file:${path}`, identity: 'k8s-puller' });
      const first = await get();
      clock.offset = 400_000; // past half its life, but the file has not been rotated yet
      assert.equal(await get(), first);
      assert.deepEqual(warnings, []);
    });

    it('says how to log in again when the source gives nothing and the login has expired', async () => {
      await useHelper();
      const path = join(dir, 'token');
      await writeFile(path, await k8sToken(600));
      await run({ oidc: `file:${path}`, identity: 'k8s-puller' });
      clock.offset = 11 * 60_000;
      await assert.rejects(get(), (err: Error) => {
        assert.match(
          err.message,
          new RegExp(
            `^the stored login for ${host} has expired and cannot be renewed: its source file:${path} gave no new OIDC token \\(the token it holds expired at \\S+ and was not replaced\\); run: berth login ${host} --oidc file:${path} --identity k8s-puller$`,
          ),
        );
        return true;
      });
      await rm(path);
      await assert.rejects(get(), /its source file:.* gave no new OIDC token \(cannot read the OIDC token file .*: no such file\); run: berth login/);
    });

    it('keeps a still-valid login when the source is unavailable for now, with a warning', async () => {
      const registry = new URL(capped.url).host;
      await useHelper(registry);
      await run({ oidc: 'github', identity: 'ci-pusher' }, env, registry);
      const first = await get(registry);
      clock.offset = 40_000;
      deps = { ...deps, env: {} }; // e.g. a step that cannot request ID tokens
      assert.equal(await get(registry), first);
      assert.match(warnings[0] ?? '', /could not renew the refresh token for .*: --oidc github needs a GitHub Actions job/);
    });

    it('ends the login when the registry no longer accepts the workload (its federated credential was removed)', async () => {
      const registry = new URL(capped.url).host;
      await useHelper(registry);
      await run({ oidc: 'github', identity: 'ci-pusher' }, env, registry);
      const store = capped.app.metadata.auth;
      const pusher = await store.principals.findByName('ci-pusher');
      assert.ok(pusher);
      const [credential] = await store.federatedCredentials.list(pusher.id);
      assert.ok(credential);
      await store.federatedCredentials.remove(pusher.id, credential.name);
      try {
        clock.offset = 40_000;
        await assert.rejects(
          get(registry),
          /: the stored login for \S+ cannot be renewed: the registry refused a new OIDC token from github \(federated login refused: issuer: .*not for this client\); run: berth login \S+ --oidc github --identity ci-pusher$/,
        );
      } finally {
        await store.federatedCredentials.put(credential);
      }
    });
  });
});
