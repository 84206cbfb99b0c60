/**
 * Keyless CI end to end: a real Berth (auth on, run from source) trusting a real loopback OIDC
 * issuer, a simulated GitHub Actions job (`ACTIONS_ID_TOKEN_REQUEST_URL`/`_TOKEN` served by the
 * issuer), and real clients:
 *
 * - `berth login --oidc github --identity <client id>`, then skopeo and podman push and pull;
 * - the repository's GitHub Action, run as the runner runs it from `action.yml` (its `runs.main`
 *   with node, the `with:` inputs and the declared defaults as `INPUT_*`), then skopeo, podman and
 *   buildah push and pull;
 * - a pull-only Kubernetes workload (`--oidc file:` with a projected-token-shaped JWT) pulls, and
 *   its push is refused;
 * - docker-credential-berth logs in again from the OIDC source once a (two-second) login expired.
 *
 * The principals and their federated credentials are made through the management API, and the
 * first test checks that the registry answers with what was made (and that its auth is on).
 */
import assert from 'node:assert/strict';
import { described, type ExecResult as Result } from '../support/exec.js';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { randomUUID } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { BERTH_SOURCE_CLI, REPO_ROOT, startBerth, type BerthProcess } from '../support/berth-process.js';
import { ClientBox, tsxArgs } from '../support/client-box.js';
import { createFixtureLayout, type FixtureLayout } from '../support/oci-layout.js';
import { startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.js';
import { bearerChallenge } from '../../src/remote/challenge.js';
import { transfers, type ClientName, type Transfer } from './client-drivers.js';
import { makeLowercaseTempDir, uniqueRepo } from './harness.js';
import { assertImage, assertPushAndPull } from './shared-scenarios.js';

const nullUser = '00000000-0000-0000-0000-000000000000';
const ownerPassword = 'owner-password-fed-1';
/** The refresh-token lifetime of the registry used for the renewal scenario. */
const shortLifetimeMs = 2000;

function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** Waits for a point in time (a precondition, not an assertion on speed). */
const waitUntil = (at: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));

// ---------------------------------------------------------------------------
// The registry under test

interface Trust {
  name: string;
  issuer: string;
  audiences: string[];
  subject: string;
  conditions: Array<{ claim: string; equals?: string; glob?: string }>;
}

interface Registry {
  host: string;
  url: string;
  ownerPassword: string;
  /** POST /api/v1/principals as the owner. */
  createService(name: string, grants: Array<{ pattern: string; permission: string }>): Promise<void>;
  /** POST a federated credential for `principal` through the management API (written out, or a preset). */
  trust(principal: string, credential: Trust | (Record<string, unknown> & { name: string; preset: string })): Promise<void>;
  /** GET the federated credentials of `principal` through the management API. */
  trusted(principal: string): Promise<Array<Trust & { createdAt: string }>>;
  stop(): Promise<void>;
}

async function ownerToken(url: string, password: string): Promise<string> {
  const res = await fetch(`${url}/oauth2/token?service=berth&scope=${encodeURIComponent('registry:admin:*')}`, {
    headers: { Authorization: `Basic ${Buffer.from(`owner:${password}`).toString('base64')}` },
  });
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { token: string }).token;
}

async function api(url: string, password: string, method: string, path: string, body: unknown): Promise<Response> {
  return fetch(`${url}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${await ownerToken(url, password)}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function createServiceThroughApi(url: string, password: string, name: string, grants: Array<{ pattern: string; permission: string }>): Promise<string> {
  const res = await api(url, password, 'POST', '/principals', { kind: 'service', name, grants });
  assert.equal(res.status, 201, `POST /api/v1/principals -> ${res.status}: ${await res.clone().text()}`);
  return ((await res.json()) as { principal: { id: string } }).principal.id;
}

/** Berth as a process from source, auth on, configured (`--config`) to trust `issuers`. */
async function startRegistry(dir: string, issuers: string[], lifetimeCapMs?: number): Promise<Registry> {
  const config = {
    federation: {
      issuers: issuers.map((issuer) => ({ issuer, allowInsecureLoopback: true, allowPrivateNetwork: true })),
      keyRefetchCooldownMs: 0,
      ...(lifetimeCapMs !== undefined ? { lifetimeCapMs } : {}),
    },
  };
  const file = join(dir, `berth-${randomUUID()}.yaml`);
  await writeFile(file, JSON.stringify(config, null, 2));
  const server: BerthProcess = await startBerth({
    auth: true,
    cliPath: BERTH_SOURCE_CLI,
    nodeArgs: tsxArgs,
    args: ['--config', file],
    env: { BERTH_BOOTSTRAP_USER: 'owner', BERTH_BOOTSTRAP_PASSWORD: ownerPassword },
  });
  const credentialsPath = (principal: string) => `/principals/${encodeURIComponent(principal)}/federated-credentials`;
  return {
    host: server.host,
    url: server.url,
    ownerPassword,
    createService: async (name, grants) => void (await createServiceThroughApi(server.url, ownerPassword, name, grants)),
    async trust(principal, credential) {
      const res = await api(server.url, ownerPassword, 'POST', credentialsPath(principal), credential);
      assert.equal(res.status, 201, `POST /api/v1${credentialsPath(principal)} -> ${res.status}: ${await res.clone().text()}`);
    },
    async trusted(principal) {
      const res = await fetch(`${server.url}/api/v1${credentialsPath(principal)}`, {
        headers: { Authorization: `Bearer ${await ownerToken(server.url, ownerPassword)}` },
      });
      assert.equal(res.status, 200, `GET /api/v1${credentialsPath(principal)} -> ${res.status}: ${await res.clone().text()}`);
      return ((await res.json()) as { credentials: Array<Trust & { createdAt: string }> }).credentials;
    },
    async stop() {
      const exit = await server.stop();
      assert.deepEqual(exit, { code: 0, signal: null }, `Berth did not exit cleanly\n${server.output().stderr}`);
    },
  };
}

/**
 * What a job step gets from `uses: <this repository>` (action.yml): the runner runs `runs.main` with
 * its node, passes each `with:` input and each declared default as INPUT_<NAME>, and reads the
 * outputs from $GITHUB_OUTPUT.
 */
interface ActionMetadata {
  runs: { using: string; main: string };
  inputs: Record<string, { required?: boolean; default?: string }>;
  outputs: Record<string, { description: string }>;
}

async function actionMetadata(): Promise<ActionMetadata> {
  return parseYaml(await readFile(join(REPO_ROOT, 'action.yml'), 'utf8')) as ActionMetadata;
}

/** The outputs a step wrote to $GITHUB_OUTPUT (`name<<DELIMITER` blocks), by name. */
function stepOutputs(text: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  for (const m of text.matchAll(/^([\w-]+)<<(\S+)\n(.*)\n\2$/gm)) outputs[m[1] ?? ''] = m[3] ?? '';
  return outputs;
}

// ---------------------------------------------------------------------------
// Clients: one box (docker config, helper file, container storage) per scenario

/** The shared client box plus this suite's Action, push, pull and buildah steps. */
class FederationBox extends ClientBox {
  /** A step `uses: <this action>` with `inputs` (its `with:`), started as the runner starts it from action.yml. */
  async action(inputs: Record<string, string>, env: NodeJS.ProcessEnv = this.env): Promise<Result> {
    const { runs, inputs: declared } = await actionMetadata();
    assert.equal(runs.using, 'node20', 'the runner would start another runtime');
    const given = Object.fromEntries(Object.entries(declared).map(([name, spec]) => [name, inputs[name] ?? spec.default ?? '']));
    for (const name of Object.keys(inputs)) assert.ok(name in declared, `action.yml declares no input ${name}`);
    const inputEnv = Object.fromEntries(Object.entries(given).map(([name, value]) => [`INPUT_${name.replace(/ /g, '_').toUpperCase()}`, value]));
    return this.run(process.execPath, [join(REPO_ROOT, runs.main)], '', { ...env, ...inputEnv, GITHUB_OUTPUT: join(this.dir, 'github-output') });
  }

  /** skopeo or podman pushing and pulling with the login in this box's docker config. */
  client(name: ClientName): Transfer {
    return transfers[name](this, this.dockerConfig);
  }

  /**
   * buildah (the example workflow's client) pushes the fixture image with no --authfile, so it finds
   * the login where a workflow step would: the docker config.
   */
  async buildahPush(layout: FixtureLayout, ref: string): Promise<Result> {
    const global = ['--root', join(this.dir, 'root'), '--runroot', join(this.dir, 'runroot'), '--storage-driver', 'vfs'];
    const policy = ['--signature-policy', join(this.dir, 'policy.json')];
    const imported = await this.run('buildah', [...global, 'pull', '--quiet', ...policy, `oci:${layout.dir}:${layout.refs.image}`]);
    assert.equal(imported.code, 0, described('buildah pull oci:', imported));
    const id = imported.stdout.trim().split('\n').pop() ?? '';
    const { REGISTRY_AUTH_FILE: _unused, ...env } = this.env;
    return this.run('buildah', [...global, 'push', '--quiet', ...policy, '--tls-verify=false', id, `docker://${ref}`], '', env);
  }

  async storedIdentityToken(host: string): Promise<string> {
    const config = JSON.parse(await readFile(this.dockerConfig, 'utf8')) as { auths?: Record<string, { auth?: string; identitytoken?: string }> };
    const entry = config.auths?.[host];
    assert.ok(entry?.identitytoken, `no identitytoken for ${host} in ${this.dockerConfig}`);
    assert.equal(Buffer.from(entry.auth ?? '', 'base64').toString(), `${nullUser}:`);
    return entry.identitytoken;
  }
}

function hasBuildah(): boolean {
  return (process.env['PATH'] ?? '').split(':').some((d) => d !== '' && existsSync(join(d, 'buildah')));
}

/** No OIDC token of `issuer` anywhere in `text` (a config or credentials file). */
function assertNoOidcToken(text: string, issuer: string): void {
  for (const jwt of text.match(/eyJ[\w-]+\.[\w-]+\.[\w-]+/g) ?? []) {
    assert.notEqual(claims(jwt)['iss'], issuer, 'an OIDC token was written to disk');
  }
}

// ---------------------------------------------------------------------------

describe('keyless CI: OIDC logins with real clients against Berth', () => {
  let github: OidcIssuer;
  let cluster: OidcIssuer;
  let registry: Registry;
  let layout: FixtureLayout;
  let dir = '';
  let host = '';
  let actionsEnv: NodeJS.ProcessEnv = {};
  const boxes: FederationBox[] = [];
  const box = async (label: string, extraEnv: NodeJS.ProcessEnv = {}) => {
    const created = await FederationBox.create(host, label, extraEnv);
    boxes.push(created);
    return created;
  };

  before(async () => {
    github = await startOidcIssuer();
    cluster = await startOidcIssuer({ alg: 'ES256' });
    dir = await makeLowercaseTempDir('fed-layout');
    layout = await createFixtureLayout(dir, 'federation-actions');
    registry = await startRegistry(dir, [github.issuer, cluster.issuer]);
    host = registry.host;
    actionsEnv = { ACTIONS_ID_TOKEN_REQUEST_URL: github.actionsTokenUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: github.actionsRequestToken };
    await registry.createService('ci-pusher', [{ pattern: 'e2e/fed/**', permission: 'push' }]);
    await registry.createService('k8s-puller', [{ pattern: 'e2e/fed/**', permission: 'pull' }]);
    // GitHub, with the preset and its default audience (this registry's own): this repository's main
    // branch, owner pinned by id, only the build workflow.
    await registry.trust('ci-pusher', {
      name: 'github-main',
      preset: 'github',
      issuer: github.issuer,
      repository: 'acme/app',
      repositoryOwnerId: '1234',
      ref: 'main',
      conditions: [{ claim: 'job_workflow_ref', glob: 'acme/app/.github/workflows/*@refs/heads/main' }],
    });
    // The cluster: a credential written out with the legacy audience `berth`, as made before instance audiences.
    await registry.trust('k8s-puller', { name: 'prod', issuer: cluster.issuer, audiences: ['berth'], subject: 'system:serviceaccount:prod:*', conditions: [] });
  });
  after(async () => {
    await Promise.all(boxes.map((b) => b.dispose()));
    await registry?.stop();
    await github?.stop();
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs against the registry described here: Berth with auth on, trusting the workflow and the cluster through its API', async () => {
    const res = await fetch(`${registry.url}/v2/`);
    await res.body?.cancel();
    assert.equal(res.status, 401, 'auth is on');
    const header = res.headers.get('www-authenticate') ?? '';
    assert.match(header, new RegExp(`^Bearer realm="${registry.url}/oauth2/token",service="berth",audience="urn:berth:[0-9a-f-]{36}"$`));
    const audience = bearerChallenge(header)?.audience;
    const made = (credentials: Array<Trust & { createdAt: string }>) => credentials.map(({ createdAt: _at, ...trust }) => trust);
    assert.deepEqual(made(await registry.trusted('ci-pusher')), [
      {
        name: 'github-main',
        issuer: github.issuer,
        audiences: [audience],
        subject: 'repo:acme*/app*:ref:refs/heads/main',
        conditions: [
          { claim: 'repository', equals: 'acme/app' },
          { claim: 'repository_owner_id', equals: '1234' },
          { claim: 'job_workflow_ref', glob: 'acme/app/.github/workflows/*@refs/heads/main' },
        ],
      },
    ]);
    assert.deepEqual(made(await registry.trusted('k8s-puller')), [
      { name: 'prod', issuer: cluster.issuer, audiences: ['berth'], subject: 'system:serviceaccount:prod:*', conditions: [] },
    ]);
  });

  describe('berth login --oidc github --identity ci-pusher, in a simulated Actions job', () => {
    let job: FederationBox;
    before(async () => {
      job = await box('cli', actionsEnv);
      const login = await job.berth(['login', host, '--oidc', 'github', '--identity', 'ci-pusher']);
      assert.equal(login.code, 0, described('berth login --oidc github', login));
      assert.equal(login.stdout, 'Login Succeeded\n');
    });

    it('stores a refresh token as identitytoken, bounded by the ID token, and never the ID token', async () => {
      const token = await job.storedIdentityToken(host);
      const { iat, exp, name } = claims(token) as { iat: number; exp: number; name: string };
      assert.equal(name, 'ci-pusher');
      assert.ok(exp - iat <= 300, `the login outlives the 5-minute ID token: ${exp - iat}s`);
      assertNoOidcToken(await readFile(job.dockerConfig, 'utf8'), github.issuer);
    });

    for (const client of ['skopeo', 'podman'] as const) {
      it(`${client} pushes and pulls with it`, async () => {
        await assertPushAndPull(job.client(client), layout, `${host}/${uniqueRepo('fed', `${client}-cli`)}:v1`);
      });
    }
  });

  describe('berth login --oidc failures, one line on stderr, exit 1', () => {
    it('outside a job that may request ID tokens: says to add id-token: write', async () => {
      const result = await (await box('noenv')).berth(['login', host, '--oidc', 'github', '--identity', 'ci-pusher']);
      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        'berth: --oidc github needs a GitHub Actions job allowed to request ID tokens (ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN not set): add `permissions: id-token: write` to the workflow or job\n',
      );
    });

    it("a workflow the credential does not trust: Berth's error_description names the failed check", async () => {
      github.actionsClaims = { ref: 'refs/heads/feature' };
      try {
        const result = await (await box('branch', actionsEnv)).berth(['login', host, '--oidc', 'github', '--identity', 'ci-pusher']);
        assert.equal(result.code, 1);
        assert.equal(
          result.stderr,
          `berth: login to ${host} with the github token failed: federated login refused: subject: no federated credential trusts the token's subject\n`,
        );
      } finally {
        github.actionsClaims = {};
      }
    });

    it('an unreadable token file', async () => {
      const dirBox = await box('nofile');
      const result = await dirBox.berth(['login', host, '--oidc', `file:${join(dirBox.dir, 'missing')}`, '--identity', 'k8s-puller']);
      assert.equal(result.code, 1);
      assert.equal(result.stderr, `berth: cannot read the OIDC token file ${join(dirBox.dir, 'missing')}: no such file\n`);
    });
  });

  describe('the GitHub Action (action.yml: inputs registry, identity, audience)', () => {
    let job: FederationBox;
    let run: Result;
    before(async () => {
      job = await box('action', actionsEnv);
      // As in docs/examples/github-actions-buildah.yml: `with:` registry and identity, audience left
      // to its default. The runner's environment, not this test process's: only what a job step gets.
      run = await job.action(
        { registry: host, identity: 'ci-pusher' },
        { PATH: process.env['PATH'], HOME: job.dir, DOCKER_CONFIG: join(job.dir, 'docker'), ...actionsEnv },
      );
      assert.equal(run.code, 0, described('the action', run));
    });

    it('masks both tokens, stores the refresh token as identitytoken, and sets its outputs', async () => {
      const masked = [...run.stdout.matchAll(/^::add-mask::(.+)$/gm)].map((m) => m[1] ?? '');
      assert.equal(masked.length, 2, run.stdout);
      assert.equal(claims(masked[0] ?? '')['iss'], github.issuer, 'the ID token is masked');
      const advertised = bearerChallenge((await fetch(`${registry.url}/v2/`)).headers.get('www-authenticate'))?.audience;
      assert.ok(advertised?.startsWith('urn:berth:'));
      assert.equal(claims(masked[0] ?? '')['aud'], advertised, "requested for the audience the registry advertises (action.yml's default)");
      const token = await job.storedIdentityToken(host);
      assert.equal(masked[1], token, 'the refresh token is masked');
      assertNoOidcToken(await readFile(job.dockerConfig, 'utf8'), github.issuer);
      const outputs = stepOutputs(await readFile(join(job.dir, 'github-output'), 'utf8'));
      assert.deepEqual(outputs, {
        registry: host,
        'docker-config': job.dockerConfig,
        'expires-at': new Date((claims(token)['exp'] as number) * 1000).toISOString(),
      });
      assert.deepEqual(Object.keys(outputs).sort(), Object.keys((await actionMetadata()).outputs).sort(), 'the outputs action.yml declares');
      assert.match(run.stdout, new RegExp(`^Logged in to ${host} as ci-pusher; stored a refresh token in ${job.dockerConfig} \\(valid until \\S+\\)$`, 'm'));
    });

    for (const client of ['skopeo', 'podman'] as const) {
      it(`${client} pushes and pulls with the login it stored`, async () => {
        await assertPushAndPull(job.client(client), layout, `${host}/${uniqueRepo('fed', `${client}-action`)}:v1`);
      });
    }

    it('buildah pushes with it, as in the example workflow', { skip: hasBuildah() ? false : 'buildah is not installed' }, async () => {
      const repo = uniqueRepo('fed', 'buildah-action');
      const push = await job.buildahPush(layout, `${host}/${repo}:v1`);
      assert.equal(push.code, 0, described('buildah push', push));
      const pulled = await job.client('skopeo').pull(`${host}/${repo}:v1`);
      assert.equal(pulled.result.code, 0, described('skopeo copy (pull)', pulled.result));
      assertImage(job.client('skopeo'), layout, pulled.image);
    });

    it('fails with one ::error:: line without id-token: write, or when Berth refuses the token', async () => {
      const bare = await box('action-fail');
      const runnerEnv = { PATH: process.env['PATH'], HOME: bare.dir, DOCKER_CONFIG: join(bare.dir, 'docker') };
      const noPermission = await bare.action({ registry: host, identity: 'ci-pusher' }, runnerEnv);
      assert.equal(noPermission.code, 1);
      assert.equal(
        noPermission.stdout,
        '::error::Berth login: this job may not request an ID token (ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN are not set): add `permissions: id-token: write` to the workflow or job\n',
      );
      const wrongAudience = await bare.action({ registry: host, identity: 'ci-pusher', audience: 'sts.amazonaws.com' }, { ...runnerEnv, ...actionsEnv });
      assert.equal(wrongAudience.code, 1);
      assert.match(
        wrongAudience.stdout,
        /^::error::Berth login: the registry refused the login as ci-pusher: federated login refused: audience: the token's audience is not accepted; ask for this registry's audience "urn:berth:[0-9a-f-]{36}"$/m,
      );
      await assert.rejects(readFile(bare.dockerConfig, 'utf8'), { code: 'ENOENT' });
    });

    it('never asks GitHub for an ID token for a registry whose token service is on another host', async () => {
      // A registry that sends clients elsewhere for tokens (here: loopback by another name).
      const elsewhere = createServer((_req, res) => {
        const port = (elsewhere.address() as AddressInfo).port;
        res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="http://localhost:${port}/oauth2/token",service="berth",audience="berth"` }).end();
      });
      await new Promise<void>((ok) => elsewhere.listen(0, '127.0.0.1', () => ok()));
      try {
        const target = `127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
        const bare = await box('elsewhere', actionsEnv);
        const result = await bare.action(
          { registry: target, identity: 'ci-pusher' },
          { PATH: process.env['PATH'], HOME: bare.dir, DOCKER_CONFIG: join(bare.dir, 'docker'), ...actionsEnv },
        );
        assert.equal(result.code, 1, described('the action', result));
        assert.match(result.stdout, new RegExp(`^::error::Berth login: ${target} names a token service on another host \\(localhost:\\d+\\)`, 'm'));
        assert.doesNotMatch(result.stdout, /::add-mask::/, 'no ID token was requested');
        await assert.rejects(readFile(bare.dockerConfig, 'utf8'), { code: 'ENOENT' });
      } finally {
        await new Promise<void>((ok) => elsewhere.close(() => ok()));
      }
    });
  });

  describe('a pull-only Kubernetes workload (berth login --oidc file:<projected token>)', () => {
    let pod: FederationBox;
    const repo = uniqueRepo('fed', 'for-pods');
    before(async () => {
      const pusher = await box('k8s-push', actionsEnv);
      assert.equal((await pusher.berth(['login', host, '--oidc', 'github', '--identity', 'ci-pusher'])).code, 0);
      const push = await pusher.client('skopeo').push(layout, `${host}/${repo}:v1`);
      assert.equal(push.code, 0, described('skopeo copy (push as ci-pusher)', push));
      pod = await box('k8s');
      const tokenFile = join(pod.dir, 'token');
      await writeFile(tokenFile, await cluster.kubernetes({ namespace: 'prod', serviceAccount: 'web' }));
      const login = await pod.berth(['login', host, '--oidc', `file:${tokenFile}`, '--identity', 'k8s-puller']);
      assert.equal(login.code, 0, described('berth login --oidc file:', login));
    });

    it('pulls with skopeo', async () => {
      const pulled = await pod.client('skopeo').pull(`${host}/${repo}:v1`);
      assert.equal(pulled.result.code, 0, described('skopeo copy (pull)', pulled.result));
      assertImage(pod.client('skopeo'), layout, pulled.image);
    });

    it('and its skopeo push is refused with an authorization error', async () => {
      const push = await pod.client('skopeo').push(layout, `${host}/${uniqueRepo('fed', 'pod-push')}:v1`);
      assert.notEqual(push.code, 0, 'a pull-only workload pushed');
      assert.match(push.stderr, /requested access to the resource is denied/);
    });
  });
});

describe('docker-credential-berth logs in again from the OIDC source once the login has expired', () => {
  let github: OidcIssuer;
  let cluster: OidcIssuer;
  let registry: Registry;
  let layout: FixtureLayout;
  let dir = '';
  let host = '';
  const boxes: FederationBox[] = [];

  before(async () => {
    github = await startOidcIssuer();
    cluster = await startOidcIssuer({ alg: 'ES256' });
    dir = await makeLowercaseTempDir('fed-renew');
    layout = await createFixtureLayout(dir, 'federation-renew');
    // Logins bought with an OIDC token last two seconds here, so they run out within the test.
    registry = await startRegistry(dir, [github.issuer, cluster.issuer], shortLifetimeMs);
    host = registry.host;
    await registry.createService('ci-pusher', [{ pattern: 'e2e/fed/**', permission: 'push' }]);
    await registry.createService('k8s-puller', [{ pattern: 'e2e/fed/**', permission: 'pull' }]);
    await registry.trust('ci-pusher', { name: 'github', issuer: github.issuer, audiences: ['berth'], subject: 'repo:acme/app:*', conditions: [] });
    await registry.trust('k8s-puller', { name: 'prod', issuer: cluster.issuer, audiences: ['berth'], subject: 'system:serviceaccount:prod:*', conditions: [] });
  });
  after(async () => {
    await Promise.all(boxes.map((b) => b.dispose()));
    await registry?.stop();
    await github?.stop();
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  interface Stored {
    refreshToken: string;
    oidc?: Record<string, unknown>;
  }
  const stored = async (b: FederationBox): Promise<Stored> => {
    const file = JSON.parse(await readFile(b.credentialFile, 'utf8')) as { auths: Record<string, Stored> };
    const entry = file.auths[host];
    assert.ok(entry, `no entry for ${host} in ${b.credentialFile}`);
    return entry;
  };
  const helperBox = async (label: string, extraEnv: NodeJS.ProcessEnv = {}) => {
    const b = await FederationBox.create(host, label, extraEnv);
    boxes.push(b);
    await writeFile(b.dockerConfig, JSON.stringify({ credHelpers: { [host]: 'berth' } }));
    return b;
  };

  it('github (a new ID token from the Actions endpoint) and file: (the token the kubelet rotated in)', async () => {
    const job = await helperBox('rjob', { ACTIONS_ID_TOKEN_REQUEST_URL: github.actionsTokenUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: github.actionsRequestToken });
    const ciLogin = await job.berth(['login', host, '--oidc', 'github', '--identity', 'ci-pusher']);
    assert.equal(ciLogin.code, 0, described('berth login --oidc github', ciLogin));
    const pod = await helperBox('rpod');
    const tokenFile = join(pod.dir, 'token');
    await writeFile(tokenFile, await cluster.kubernetes({ namespace: 'prod', serviceAccount: 'web' }));
    const podLogin = await pod.berth(['login', host, '--oidc', `file:${tokenFile}`, '--identity', 'k8s-puller']);
    assert.equal(podLogin.code, 0, described('berth login --oidc file:', podLogin));

    const [ci, k8s] = [await stored(job), await stored(pod)];
    // No --audience: renewal asks GitHub for whatever audience the registry advertises (the credential, written with
    // the legacy `berth`, accepts the registry's own audience too).
    assert.deepEqual(ci.oidc, { source: 'github', identity: 'ci-pusher' });
    assert.deepEqual(k8s.oidc, { source: `file:${tokenFile}`, identity: 'k8s-puller' });
    assertNoOidcToken(await readFile(job.credentialFile, 'utf8'), github.issuer);
    assertNoOidcToken(await readFile(pod.credentialFile, 'utf8'), cluster.issuer);

    // Both logins run out; meanwhile the job gets a new run attempt and the kubelet rotates the token.
    const expiry = Math.max(claims(ci.refreshToken)['exp'] as number, claims(k8s.refreshToken)['exp'] as number) * 1000;
    github.actionsClaims = { run_attempt: '2' };
    const rotated = await cluster.kubernetes({ namespace: 'prod', serviceAccount: 'web' });
    await writeFile(tokenFile, rotated);
    await waitUntil(expiry + 200);

    try {
      const repo = uniqueRepo('fed', 'renewed');
      const push = await job.client('skopeo').push(layout, `${host}/${repo}:v1`);
      assert.equal(push.code, 0, described('skopeo copy (push through the helper)', push));
      const renewedCi = await stored(job);
      assert.notEqual(renewedCi.refreshToken, ci.refreshToken);
      assert.equal((claims(renewedCi.refreshToken)['fed'] as Record<string, unknown>)['run_attempt'], '2', 'bought with a new ID token');
      assert.deepEqual(renewedCi.oidc, ci.oidc);

      const pulled = await pod.client('skopeo').pull(`${host}/${repo}:v1`);
      assert.equal(pulled.result.code, 0, described('skopeo copy (pull through the helper)', pulled.result));
      assertImage(pod.client('skopeo'), layout, pulled.image);
      const renewedK8s = await stored(pod);
      assert.notEqual(renewedK8s.refreshToken, k8s.refreshToken);
      const podUid = (of: Record<string, unknown>) => (of['kubernetes.io'] as { pod: { uid: string } }).pod.uid;
      assert.equal(podUid(claims(renewedK8s.refreshToken)['fed'] as Record<string, unknown>), podUid(claims(rotated)), 'bought with the rotated token');
    } finally {
      github.actionsClaims = {};
    }
  });
});
