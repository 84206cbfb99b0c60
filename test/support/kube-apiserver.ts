/**
 * A real Kubernetes API server for the controller tests: Debian's etcd and kube-apiserver v1.20.2
 * (built once by scripts/kube-apiserver/build.sh into .cache/kube/bin), on free loopback ports,
 * with a fresh PKI and data directory per start so parallel runs never share anything.
 *
 * The service-account issuer is the API server's own URL, so its discovery document and JWKS are
 * served at `<url>/.well-known/openid-configuration` and `<url>/openid/v1/jwks` (HTTPS with the
 * test CA; `anonymousDiscovery` lets unauthenticated clients such as Berth read them, as the
 * upstream docs suggest for clusters whose issuer is the API server).
 *
 * No kube-controller-manager runs: no `default` service accounts, no owner-reference garbage
 * collection, namespaces stay Terminating. Tests create what they use.
 */
import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { Agent, fetch as undiciFetch } from 'undici';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT, trackChild, type ExitInfo } from './berth-process.js';

const run = promisify(execFile);

export const kubeApiServerBinary = process.env['BERTH_KUBE_APISERVER'] ?? join(REPO_ROOT, '.cache', 'kube', 'bin', 'kube-apiserver');
/** Not an assertion: a bound on a broken start. */
const readyTimeoutMs = 60_000;

export interface KubeApiServer {
  /** `https://127.0.0.1:<port>`; also the service-account issuer. */
  url: string;
  issuer: string;
  /** PEM file of the CA that signed the serving certificate. */
  caFile: string;
  /** Admin kubeconfig (token in group system:masters). */
  kubeconfigPath: string;
  /** A client-node KubeConfig for the admin. */
  admin(): KubeConfig;
  /** A kubeconfig file that authenticates with `token` (e.g. a service account's). */
  kubeconfigForToken(token: string, name: string): Promise<string>;
  /** A request as the admin (or with `token`); JSON in and out. */
  request(method: string, path: string, body?: unknown, options?: { token?: string; contentType?: string }): Promise<{ status: number; body: unknown }>;
  /** Like request(), failing unless the status is 2xx. */
  ok(method: string, path: string, body?: unknown, options?: { token?: string; contentType?: string }): Promise<unknown>;
  /** Creates every object of a multi-document YAML file (cluster-scoped or with their namespace). */
  apply(file: string): Promise<void>;
  /** TokenRequest for a service account. */
  token(namespace: string, serviceAccount: string, audiences?: string[], expirationSeconds?: number): Promise<string>;
  /** Log tails, for failure messages. */
  logs(): Promise<string>;
  stop(): Promise<void>;
}

export interface StartKubeOptions {
  /** Bind system:service-account-issuer-discovery to system:unauthenticated. */
  anonymousDiscovery?: boolean;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function openssl(dir: string, ...args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

/** CA, serving certificate for 127.0.0.1/localhost, RSA service-account key pair, static admin token. */
async function makePki(dir: string): Promise<{ adminToken: string }> {
  await openssl(
    dir,
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=berth-test-kube-ca',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
  );
  await writeFile(
    join(dir, 'serving.ext'),
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes.default.svc',
      '',
    ].join('\n'),
  );
  await openssl(
    dir,
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    '/CN=kube-apiserver',
    '-keyout',
    'apiserver.key',
    '-out',
    'apiserver.csr',
  );
  await openssl(
    dir,
    'x509',
    '-req',
    '-in',
    'apiserver.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-sha256',
    '-extfile',
    'serving.ext',
    '-out',
    'apiserver.crt',
  );
  // Service-account tokens are RS256, as on most clusters.
  await openssl(dir, 'genrsa', '-out', 'sa.key', '2048');
  await openssl(dir, 'rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub');
  const adminToken = randomBytes(24).toString('hex');
  await writeFile(join(dir, 'tokens.csv'), `${adminToken},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });
  return { adminToken };
}

function kubeconfigYaml(url: string, caPem: string, token: string, user: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: berth-test',
    '  cluster:',
    `    server: ${url}`,
    `    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}`,
    'users:',
    `- name: ${user}`,
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: berth-test',
    '  context:',
    '    cluster: berth-test',
    `    user: ${user}`,
    'current-context: berth-test',
    '',
  ].join('\n');
}

interface Child {
  name: string;
  proc: ReturnType<typeof spawn>;
  exited: Promise<ExitInfo>;
  log: string;
}

function startChild(name: string, file: string, args: string[], logFile: string): Child {
  const fd = openSync(logFile, 'a');
  const proc = spawn(file, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return { name, proc, exited: trackChild(proc), log: logFile };
}

async function stopChild(child: Child): Promise<void> {
  if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), 10_000);
  await child.exited;
  clearTimeout(timer);
}

async function tail(file: string, lines = 30): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Starts etcd and kube-apiserver; retries once on a port taken in between. */
export async function startKubeApiServer(options: StartKubeOptions = {}): Promise<KubeApiServer> {
  if (!existsSync(kubeApiServerBinary)) {
    throw new Error(
      `kube-apiserver is not built (${kubeApiServerBinary} is missing): run \`bash scripts/kube-apiserver/build.sh\` ` +
        '(npm test runs it through scripts/ensure-test-deps.sh; about 5 minutes once)',
    );
  }
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      lastError = err;
      if (!/address already in use|bind/i.test((err as Error).message)) throw err;
    }
  }
  throw lastError;
}

async function startOnce(options: StartKubeOptions): Promise<KubeApiServer> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-kube-'));
  const { adminToken } = await makePki(dir);
  const caFile = join(dir, 'ca.crt');
  const caPem = await readFile(caFile, 'utf8');
  const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const url = `https://127.0.0.1:${apiPort}`;
  const children: Child[] = [];
  const stopAll = async () => {
    for (const child of [...children].reverse()) await stopChild(child);
  };
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  children.push(
    startChild(
      'etcd',
      'etcd',
      [
        '--name',
        'berth-etcd',
        '--data-dir',
        join(dir, 'etcd'),
        '--listen-client-urls',
        etcdUrl,
        '--advertise-client-urls',
        etcdUrl,
        '--listen-peer-urls',
        peerUrl,
        '--initial-advertise-peer-urls',
        peerUrl,
        '--initial-cluster',
        `berth-etcd=${peerUrl}`,
        '--listen-metrics-urls',
        '',
        '--log-level',
        'warn',
        '--logger',
        'zap',
      ],
      join(dir, 'etcd.log'),
    ),
  );
  const dispatcher = new Agent({ connect: { ca: caPem } });
  const describeFailure = async (what: string) =>
    `${what}\n--- etcd.log ---\n${await tail(join(dir, 'etcd.log'))}\n--- kube-apiserver.log ---\n${await tail(join(dir, 'kube-apiserver.log'))}`;
  try {
    await waitFor(async () => (await fetch(`${etcdUrl}/health`)).ok, children, 'etcd /health');
    children.push(
      startChild(
        'kube-apiserver',
        kubeApiServerBinary,
        [
          '--bind-address=127.0.0.1',
          '--advertise-address=127.0.0.1',
          `--secure-port=${apiPort}`,
          '--insecure-port=0',
          `--etcd-servers=${etcdUrl}`,
          `--tls-cert-file=${join(dir, 'apiserver.crt')}`,
          `--tls-private-key-file=${join(dir, 'apiserver.key')}`,
          `--client-ca-file=${caFile}`,
          `--token-auth-file=${join(dir, 'tokens.csv')}`,
          `--service-account-issuer=${url}`,
          `--service-account-key-file=${join(dir, 'sa.pub')}`,
          `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
          `--api-audiences=${url}`,
          '--authorization-mode=RBAC',
          '--service-cluster-ip-range=10.0.0.0/24',
          // Without kube-controller-manager no pod gets a token volume; admission would refuse them.
          '--disable-admission-plugins=ServiceAccount',
          // 127.0.0.1 cannot be an Endpoints address.
          '--endpoint-reconciler-type=none',
          '--profiling=false',
          '--v=1',
        ],
        join(dir, 'kube-apiserver.log'),
      ),
    );
    await waitFor(
      async () => {
        const res = await undiciFetch(`${url}/readyz`, { dispatcher, headers: { Authorization: `Bearer ${adminToken}` } });
        return res.ok && (await res.text()) === 'ok';
      },
      children,
      'kube-apiserver /readyz',
    );
  } catch (err) {
    const message = await describeFailure((err as Error).message);
    await stopAll();
    await rm(dir, { recursive: true, force: true });
    throw new Error(message, { cause: err });
  }

  const kubeconfigPath = join(dir, 'kubeconfig');
  await writeFile(kubeconfigPath, kubeconfigYaml(url, caPem, adminToken, 'admin'), { mode: 0o600 });

  const request: KubeApiServer['request'] = async (method, path, body, opts = {}) => {
    const res = await undiciFetch(`${url}${path}`, {
      method,
      dispatcher,
      headers: {
        Authorization: `Bearer ${opts.token ?? adminToken}`,
        Accept: 'application/json, application/jwk-set+json;q=0.9, */*;q=0.5',
        ...(body !== undefined ? { 'Content-Type': opts.contentType ?? 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON (e.g. /readyz)
    }
    return { status: res.status, body: parsed };
  };
  const ok: KubeApiServer['ok'] = async (method, path, body, opts) => {
    const res = await request(method, path, body, opts);
    if (res.status < 200 || res.status > 299) throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(res.body)}`);
    return res.body;
  };

  const server: KubeApiServer = {
    url,
    issuer: url,
    caFile,
    kubeconfigPath,
    admin() {
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfigPath);
      return kc;
    },
    async kubeconfigForToken(token, name) {
      const file = join(dir, `kubeconfig-${name}`);
      await writeFile(file, kubeconfigYaml(url, caPem, token, name), { mode: 0o600 });
      return file;
    },
    request,
    ok,
    async apply(file) {
      const docs = parseAllDocuments(await readFile(file, 'utf8')).map((d) => d.toJS() as Record<string, unknown> | null);
      for (const doc of docs) {
        if (!doc) continue;
        await ok('POST', collectionPath(doc), doc);
        if (doc['kind'] === 'CustomResourceDefinition') {
          await waitEstablished(request, (doc['metadata'] as { name: string }).name, children);
          await waitPublished(request, doc, children);
        }
      }
    },
    async token(namespace, serviceAccount, audiences, expirationSeconds = 600) {
      const body = (await ok('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`, {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { ...(audiences ? { audiences } : {}), expirationSeconds },
      })) as { status: { token: string } };
      return body.status.token;
    },
    async logs() {
      return describeFailure('kube-apiserver logs');
    },
    async stop() {
      await stopAll();
      await dispatcher.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  if (options.anonymousDiscovery) {
    await ok('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'service-account-issuer-discovery-anonymous' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:service-account-issuer-discovery' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:unauthenticated' }],
    });
  }
  return server;
}

/** The collection URL an object is created in, for the kinds the deploy manifests hold. */
function collectionPath(doc: Record<string, unknown>): string {
  const apiVersion = String(doc['apiVersion']);
  const kind = String(doc['kind']);
  const namespace = (doc['metadata'] as { namespace?: string } | undefined)?.namespace;
  const lower = kind.toLowerCase();
  const plural = lower.endsWith('y') ? `${lower.slice(0, -1)}ies` : lower.endsWith('s') ? `${lower}es` : `${lower}s`;
  const prefix = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  return namespace ? `${prefix}/namespaces/${namespace}/${plural}` : `${prefix}/${plural}`;
}

async function waitEstablished(request: KubeApiServer['request'], name: string, children: Child[]): Promise<void> {
  await waitFor(
    async () => {
      const res = await request('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      const conditions = (res.body as { status?: { conditions?: Array<{ type: string; status: string }> } }).status?.conditions ?? [];
      return conditions.some((c) => c.type === 'Established' && c.status === 'True');
    },
    children,
    `CRD ${name} established`,
  );
}

/**
 * Waits until the API server's OpenAPI document describes the CRD's kind. The server publishes it
 * asynchronously, some time after Established; until then a client-side `--validate=strict` (what
 * kubectl does against this 1.20 server, which predates server-side field validation) skips the
 * kind's objects instead of checking them.
 */
async function waitPublished(request: KubeApiServer['request'], crd: Record<string, unknown>, children: Child[]): Promise<void> {
  const spec = crd['spec'] as { group: string; names: { kind: string } };
  await waitFor(
    async () => {
      const res = await request('GET', '/openapi/v2');
      const definitions =
        (res.body as { definitions?: Record<string, { 'x-kubernetes-group-version-kind'?: Array<{ group: string; kind: string }> }> }).definitions ?? {};
      return Object.values(definitions).some((d) =>
        (d['x-kubernetes-group-version-kind'] ?? []).some((gvk) => gvk.group === spec.group && gvk.kind === spec.names.kind),
      );
    },
    children,
    `the OpenAPI schema of ${spec.names.kind}`,
  );
}

async function waitFor(check: () => Promise<boolean>, children: Child[], what: string): Promise<void> {
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    for (const child of children) {
      if (child.proc.exitCode !== null || child.proc.signalCode !== null) throw new Error(`${child.name} exited while waiting for ${what}`);
    }
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what} not ready within ${readyTimeoutMs} ms`);
}
