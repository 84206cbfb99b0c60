/**
 * deploy/kubernetes/registry: both overlays build with kustomize and a real kube-apiserver accepts
 * every object (`kubectl apply --dry-run=server --validate=strict`), with a ServiceMonitor CRD
 * installed (fixtures/servicemonitor-crd.yaml). The objects have what the issue asks for: probes
 * on /healthz and /readyz, resource requests, a PVC for the single replica, and for the N-replica
 * overlay PostgreSQL + S3, a PodDisruptionBudget and a ServiceMonitor that scrapes the metrics port.
 *
 * The test API server is Kubernetes 1.20 (Debian's, scripts/kube-apiserver/build.sh), which
 * predates policy/v1 (1.21): the PodDisruptionBudget, shipped as policy/v1 for today's clusters, is
 * sent to it as policy/v1beta1, whose fields are the same for what the manifest uses
 * (maxUnavailable, selector).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { REPO_ROOT } from '../support/berth-process.js';
import { startKubeApiServer, type KubeApiServer } from '../support/kube-apiserver.js';

const run = promisify(execFile);
const registryDir = join(REPO_ROOT, 'deploy', 'kubernetes', 'registry');
const namespace = 'berth-registry';

type Doc = Record<string, any>;

describe('deploy/kubernetes/registry', () => {
  let kube: KubeApiServer;
  before(async () => {
    kube = await startKubeApiServer();
    await kube.apply(join(REPO_ROOT, 'test', 'packaging', 'fixtures', 'servicemonitor-crd.yaml'));
    await kube.ok('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  });
  after(async () => kube?.stop());

  async function build(overlay: string): Promise<Doc[]> {
    const { stdout } = await run('kubectl', ['kustomize', join(registryDir, 'overlays', overlay)], { maxBuffer: 16 * 1024 * 1024 });
    return parseAllDocuments(stdout)
      .map((d) => d.toJS() as Doc | null)
      .filter((d): d is Doc => d !== null);
  }

  /** What the test server takes (see the module comment); everything else is sent as built. */
  const forTestServer = (doc: Doc): Doc => (doc['kind'] === 'PodDisruptionBudget' ? { ...doc, apiVersion: 'policy/v1beta1' } : doc);

  async function dryRun(docs: Doc[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const input = docs.map((doc) => stringify(forTestServer(doc))).join('---\n');
    return new Promise((resolve) => {
      const child = execFile(
        'kubectl',
        ['--kubeconfig', kube.kubeconfigPath, 'apply', '--dry-run=server', '--validate=strict', '-n', namespace, '-o', 'name', '-f', '-'],
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      child.stdin?.end(input);
    });
  }

  const find = (docs: Doc[], kind: string) => {
    const found = docs.find((d) => d['kind'] === kind);
    assert.ok(found, `a ${kind}`);
    return found;
  };

  /**
   * The Berth configuration an overlay mounts, loaded as Berth loads it: the file, and the
   * Deployment's environment (Secret values stand in as placeholders).
   */
  const configOf = async (docs: Doc[]) => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-kube-config-'));
    try {
      const file = join(dir, 'config.yaml');
      await writeFile(file, find(docs, 'ConfigMap')['data']['config.yaml']);
      const env: Record<string, string> = {};
      for (const entry of find(docs, 'Deployment')['spec']['template']['spec']['containers'][0]['env'] as Doc[]) {
        env[entry['name']] = entry['value'] ?? (entry['name'] === 'BERTH_METADATA_URL' ? 'postgres://berth@postgres:5432/berth' : 'from-a-secret');
      }
      return loadConfig({ file, env: { ...env, BERTH_CONFIG: file } });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  for (const overlay of ['single', 'ha']) {
    it(`${overlay}: the API server accepts every object (server-side dry run, strict validation)`, async () => {
      const docs = await build(overlay);
      const result = await dryRun(docs);
      assert.equal(result.code, 0, `kubectl apply --dry-run=server failed:\n${result.stderr}\n${result.stdout}`);
      const applied = result.stdout.trim().split('\n').sort();
      const expected = docs
        .map((d) => `${String(d['kind']).toLowerCase()}${d['apiVersion'].includes('/') ? `.${d['apiVersion'].split('/')[0]}` : ''}/${d['metadata']['name']}`)
        .sort();
      assert.deepEqual(
        applied.map((line) => line.replace(/ \(server dry run\)$/, '')),
        expected,
      );
    });
  }

  it('single: one replica on a PVC with files + SQLite, probes and resource requests', async () => {
    const docs = await build('single');
    const deployment = find(docs, 'Deployment');
    assert.equal(deployment['spec']['replicas'], 1);
    assert.equal(deployment['spec']['strategy']['type'], 'Recreate', 'a ReadWriteOnce volume: never two pods at once');
    const pod = deployment['spec']['template']['spec'];
    const container = pod['containers'][0];
    assert.equal(container['readinessProbe']['httpGet']['path'], '/readyz');
    assert.equal(container['livenessProbe']['httpGet']['path'], '/healthz');
    assert.ok(container['resources']['requests']['cpu'] && container['resources']['requests']['memory']);
    assert.equal(pod['securityContext']['runAsNonRoot'], true);
    const pvc = find(docs, 'PersistentVolumeClaim');
    assert.ok(pod['volumes'].some((v: Doc) => v['persistentVolumeClaim']?.['claimName'] === pvc['metadata']['name']));
    const config = await configOf(docs);
    assert.equal(config.metadata.driver, 'sqlite');
    assert.equal(config.storage.driver, 'filesystem');
    assert.equal(config.dataDir, pod['containers'][0]['volumeMounts'].find((m: Doc) => m['name'] === 'data')['mountPath']);
  });

  it('ha: N replicas on PostgreSQL + S3, a PodDisruptionBudget and a ServiceMonitor on the metrics port', async () => {
    const docs = await build('ha');
    const deployment = find(docs, 'Deployment');
    assert.ok(deployment['spec']['replicas'] >= 2);
    const config = await configOf(docs);
    assert.equal(config.metadata.driver, 'postgres');
    assert.equal(config.storage.driver, 's3');
    assert.ok(config.metrics.tokenFile, 'scrapes need the token');
    const env = deployment['spec']['template']['spec']['containers'][0]['env'].map((e: Doc) => e['name']);
    for (const name of ['BERTH_METADATA_URL', 'PGPASSWORD', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) assert.ok(env.includes(name), name);
    const podLabels = deployment['spec']['template']['metadata']['labels'];
    const pdb = find(docs, 'PodDisruptionBudget');
    assert.deepEqual(pdb['spec']['selector']['matchLabels'], podLabels, 'the PDB selects exactly the registry pods');
    const service = find(docs, 'Service');
    const monitor = find(docs, 'ServiceMonitor');
    assert.deepEqual(monitor['spec']['selector']['matchLabels'], service['metadata']['labels']);
    const port = monitor['spec']['endpoints'][0]['port'];
    assert.ok(service['spec']['ports'].some((p: Doc) => p['name'] === port));
    assert.equal(monitor['spec']['endpoints'][0]['path'], '/metrics');
  });

  it('the dry run does validate: a misspelt field is refused', async () => {
    const docs = await build('ha');
    const monitor = find(docs, 'ServiceMonitor');
    monitor['spec']['endpoints'][0]['pathh'] = '/metrics';
    const result = await dryRun(docs);
    assert.notEqual(result.code, 0, 'strict validation refuses an unknown field');
    assert.match(result.stderr, /pathh/);
  });
});
