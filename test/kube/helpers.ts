/**
 * Shared setup for the Kubernetes tests: a real kube-apiserver with the CRD and the controller's
 * RBAC from deploy/kubernetes applied, a real Berth (in-process, auth on) that trusts the cluster's
 * service-account issuer, and skopeo with an auth file of our choosing.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expandPreset } from '../../src/api/federation-presets.js';
import type { PullBinding, PullBindingSpec } from '../../src/kube/types.js';
import { spawn } from 'node:child_process';
import { BERTH_SOURCE_CLI, captureOutput, REPO_ROOT, trackChild, type ExitInfo } from '../support/berth-process.js';
import { exec, described, type ExecResult } from '../support/exec.js';
import type { KubeApiServer } from '../support/kube-apiserver.js';
import { createFixtureLayout, type FixtureLayout } from '../support/oci-layout.js';
import { ownerName, ownerPassword, type TestServer } from '../support/server.js';

export const deployDir = join(REPO_ROOT, 'deploy', 'kubernetes');
/** Bound on waiting for the controller to converge: a failure, never an assertion on speed. */
export const convergeTimeoutMs = 30_000;

/** Polls `check` until it returns a value (not undefined), or fails naming `what`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = convergeTimeoutMs): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`not reached within ${timeoutMs} ms: ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

/** Applies the CRD and RBAC from deploy/kubernetes; returns a kubeconfig for the controller's own service account. */
export async function installController(kube: KubeApiServer): Promise<string> {
  await kube.apply(join(deployDir, 'crd.yaml'));
  await kube.apply(join(deployDir, 'rbac.yaml'));
  // The API server's default audience (its issuer): a token the API server itself accepts.
  const token = await kube.token('berth-system', 'berth-controller', undefined, 3600);
  return kube.kubeconfigForToken(token, 'berth-controller');
}

export class Cluster {
  constructor(readonly kube: KubeApiServer) {}

  async namespace(name: string): Promise<void> {
    await this.kube.ok('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  }

  async serviceAccount(namespace: string, name: string, imagePullSecrets: string[] = []): Promise<void> {
    await this.kube.ok('POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name },
      ...(imagePullSecrets.length > 0 ? { imagePullSecrets: imagePullSecrets.map((n) => ({ name: n })) } : {}),
    });
  }

  async getServiceAccount(namespace: string, name: string): Promise<{ imagePullSecrets?: Array<{ name: string }>; metadata: { resourceVersion: string } }> {
    return (await this.kube.ok('GET', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}`)) as never;
  }

  async pullSecretNames(namespace: string, name: string): Promise<string[]> {
    return ((await this.getServiceAccount(namespace, name)).imagePullSecrets ?? []).map((s) => s.name);
  }

  async createBinding(namespace: string, name: string, spec: PullBindingSpec | Record<string, unknown>): Promise<PullBinding> {
    return (await this.kube.ok('POST', `/apis/berth.dev/v1/namespaces/${namespace}/pullbindings`, {
      apiVersion: 'berth.dev/v1',
      kind: 'PullBinding',
      metadata: { name },
      spec,
    })) as PullBinding;
  }

  async binding(namespace: string, name: string): Promise<PullBinding | undefined> {
    const res = await this.kube.request('GET', `/apis/berth.dev/v1/namespaces/${namespace}/pullbindings/${name}`);
    if (res.status === 404) return undefined;
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body as PullBinding;
  }

  async patchBinding(namespace: string, name: string, patch: unknown): Promise<PullBinding> {
    return (await this.kube.ok('PATCH', `/apis/berth.dev/v1/namespaces/${namespace}/pullbindings/${name}`, patch, {
      contentType: 'application/merge-patch+json',
    })) as PullBinding;
  }

  async deleteBinding(namespace: string, name: string): Promise<void> {
    await this.kube.ok('DELETE', `/apis/berth.dev/v1/namespaces/${namespace}/pullbindings/${name}`);
  }

  async secret(namespace: string, name: string): Promise<KubeSecret | undefined> {
    const res = await this.kube.request('GET', `/api/v1/namespaces/${namespace}/secrets/${name}`);
    if (res.status === 404) return undefined;
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body as KubeSecret;
  }

  async events(namespace: string, bindingName: string): Promise<Array<{ type: string; reason: string; message: string; count: number }>> {
    const list = (await this.kube.ok(
      'GET',
      `/api/v1/namespaces/${namespace}/events?fieldSelector=${encodeURIComponent(`involvedObject.name=${bindingName}`)}`,
    )) as {
      items: Array<{ type: string; reason: string; message: string; count: number }>;
    };
    return list.items;
  }

  /** Waits for a condition of the binding to have this status (and reason, if given); returns the binding. */
  async condition(namespace: string, name: string, type: string, status: string, reason?: string): Promise<PullBinding> {
    let last: PullBinding | undefined;
    try {
      return await eventually(`${namespace}/${name} ${type}=${status}${reason ? ` (${reason})` : ''}`, async () => {
        last = await this.binding(namespace, name);
        const c = last?.status?.conditions?.find((x) => x.type === type);
        return c && c.status === status && (reason === undefined || c.reason === reason) ? last : undefined;
      });
    } catch (err) {
      throw new Error(`${(err as Error).message}\nlast status: ${JSON.stringify(last?.status, null, 2)}`, { cause: err });
    }
  }
}

export interface KubeSecret {
  type: string;
  data: Record<string, string>;
  metadata: {
    name: string;
    uid: string;
    resourceVersion: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    ownerReferences?: Array<{ kind: string; name: string; uid: string; controller?: boolean }>;
  };
}

/** The dockerconfigjson of a pull secret, parsed. */
export function dockerConfig(secret: KubeSecret): { auths: Record<string, { username: string; password: string; auth: string }> } {
  return JSON.parse(Buffer.from(secret.data['.dockerconfigjson'] ?? '', 'base64').toString('utf8')) as never;
}

/** A Berth service principal trusting a service account of the cluster (the `kubernetes` preset). */
export async function federatedPuller(
  berth: TestServer,
  kube: KubeApiServer,
  name: string,
  grants: Array<{ pattern: string; permission: 'pull' | 'push' }>,
  namespace: string,
  serviceAccount: string,
): Promise<string> {
  const { principals } = berth.app.auth;
  const store = berth.app.metadata.auth;
  const created = await principals.createPrincipal('service', name, { grants, withoutSecret: true });
  // As the API would: the preset defaults to the registry's own audience.
  const trust = expandPreset({ preset: 'kubernetes', issuer: kube.issuer, namespace, serviceAccount }, await berth.app.auth.audience.get());
  await store.federatedCredentials.put({
    id: randomUUID(),
    principalId: created.principal.id,
    name: 'cluster',
    issuer: trust.issuer,
    audiences: trust.audiences,
    subject: trust.subject,
    conditions: trust.conditions,
    createdAt: Date.now(),
  });
  return created.principal.id;
}

/** skopeo with configuration of its own (no machine credentials), pushing as Berth's owner and pulling with an auth file. */
export class SkopeoBox {
  private constructor(
    readonly dir: string,
    private readonly env: NodeJS.ProcessEnv,
    readonly layout: FixtureLayout,
  ) {}

  static async create(seed: string): Promise<SkopeoBox> {
    const dir = await mkdtemp(join(tmpdir(), 'berth-kube-skopeo-'));
    for (const sub of ['tmp', 'docker', 'pulls']) await mkdir(join(dir, sub));
    await writeFile(join(dir, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    await writeFile(join(dir, 'registries.conf'), 'unqualified-search-registries = []\n');
    await writeFile(join(dir, 'empty-auth.json'), JSON.stringify({ auths: {} }));
    const env = {
      ...process.env,
      CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf'),
      REGISTRY_AUTH_FILE: join(dir, 'empty-auth.json'),
      DOCKER_CONFIG: join(dir, 'docker'),
      TMPDIR: join(dir, 'tmp'),
    };
    const layout = await createFixtureLayout(join(dir, 'layout'), seed);
    return new SkopeoBox(dir, env, layout);
  }

  private run(args: string[]): Promise<ExecResult> {
    return exec('skopeo', ['--policy', join(this.dir, 'policy.json'), ...args], this.env);
  }

  /** Pushes the fixture image to `host/repo:tag` as Berth's owner. */
  async push(host: string, repo: string): Promise<void> {
    const result = await this.run([
      'copy',
      '--dest-tls-verify=false',
      '--dest-creds',
      `${ownerName}:${ownerPassword}`,
      `oci:${this.layout.dir}:${this.layout.refs.image}`,
      `docker://${host}/${repo}:v1`,
    ]);
    assert.equal(result.code, 0, described('skopeo copy (push)', result));
  }

  /** Pulls `host/repo:v1` with an auth file holding `dockerconfigjson`; resolves with skopeo's result. */
  async pull(host: string, repo: string, dockerConfigJson: unknown): Promise<ExecResult> {
    const authfile = join(this.dir, `auth-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(authfile, JSON.stringify(dockerConfigJson), { mode: 0o600 });
    const dest = join(this.dir, 'pulls', Math.random().toString(36).slice(2));
    return this.run(['copy', '--src-tls-verify=false', '--authfile', authfile, `docker://${host}/${repo}:v1`, `oci:${dest}:pulled`]);
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

export interface ControllerProcess {
  metricsUrl: string;
  /** SIGTERM and wait for a clean exit (in-flight reconciles finish). */
  stop(): Promise<ExitInfo>;
  output(): string;
}

/**
 * `berth controller` as a process (the CLI from source, as a local run would start it); resolves
 * once it logged "controller started" (every watch has listed).
 */
export async function startControllerProcess(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ControllerProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', BERTH_SOURCE_CLI, 'controller', '--metrics-addr', '127.0.0.1:0', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, BERTH_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = captureOutput(proc);
  const exited = trackChild(proc);
  const output = () => `--- stdout ---\n${out.stdout()}\n--- stderr ---\n${out.stderr()}`;
  let metricsUrl = '';
  const started = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`controller did not start within ${convergeTimeoutMs} ms\n${output()}`)), convergeTimeoutMs);
    void exited.then((info) => {
      clearTimeout(timer);
      reject(new Error(`controller exited (${info.code ?? info.signal}) before it started\n${output()}`));
    });
    out.onStdoutLine((line) => {
      try {
        const record = JSON.parse(line) as { msg?: string; url?: string };
        if (record.msg === 'metrics listening' && record.url) metricsUrl = record.url;
        if (record.msg === 'controller started') {
          clearTimeout(timer);
          resolve();
        }
      } catch {
        // not a log line
      }
    });
  });
  try {
    await started;
  } catch (err) {
    proc.kill('SIGKILL');
    await exited;
    throw err;
  }
  return {
    metricsUrl,
    output,
    async stop() {
      proc.kill('SIGTERM');
      return exited;
    },
  };
}
