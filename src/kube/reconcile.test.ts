/**
 * The reconciler's clock-driven decisions, with the Kubernetes API and Berth replaced by an
 * in-memory map and a function (the end-to-end behaviour is tested against a real API server and a
 * real Berth in test/kube). Here: when it refreshes, when it writes, and what ExpiringSoon says.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { ConflictError, type ClusterApi, type Secret, type ServiceAccount } from './cluster.js';
import { ExchangeError, type Exchanger } from './exchange.js';
import { ControllerMetrics } from './metrics.js';
import { Reconciler } from './reconcile.js';
import type { PullBinding, PullBindingStatus } from './types.js';

class MemoryCluster implements ClusterApi {
  bindings = new Map<string, PullBinding>();
  secrets = new Map<string, Secret>();
  accounts = new Map<string, ServiceAccount>();
  writes: string[] = [];
  tokens: Array<{ audience: string; seconds: number }> = [];
  private version = 1;

  private rv(): string {
    return String(++this.version);
  }

  async getBinding(namespace: string, name: string) {
    return structuredClone(this.bindings.get(`${namespace}/${name}`));
  }
  async setFinalizers(binding: PullBinding, finalizers: string[]) {
    const stored = this.bindings.get(`${binding.metadata.namespace}/${binding.metadata.name}`);
    if (!stored || stored.metadata.resourceVersion !== binding.metadata.resourceVersion) throw new ConflictError('changed');
    stored.metadata.finalizers = finalizers;
    stored.metadata.resourceVersion = this.rv();
    this.writes.push('finalizers');
    return structuredClone(stored);
  }
  async updateStatus(binding: PullBinding, status: PullBindingStatus) {
    const stored = this.bindings.get(`${binding.metadata.namespace}/${binding.metadata.name}`);
    if (stored) stored.status = structuredClone(status);
    this.writes.push('status');
  }
  async getServiceAccount(namespace: string, name: string) {
    return structuredClone(this.accounts.get(`${namespace}/${name}`));
  }
  async setImagePullSecrets(account: ServiceAccount, secrets: Array<{ name: string }>) {
    const stored = this.accounts.get(`${account.metadata.namespace}/${account.metadata.name}`);
    if (!stored || stored.metadata.resourceVersion !== account.metadata.resourceVersion) throw new ConflictError('changed');
    stored.imagePullSecrets = secrets;
    stored.metadata.resourceVersion = this.rv();
    this.writes.push('serviceaccount');
  }
  async getSecret(namespace: string, name: string) {
    return structuredClone(this.secrets.get(`${namespace}/${name}`));
  }
  async createSecret(secret: Secret) {
    this.secrets.set(`${secret.metadata.namespace}/${secret.metadata.name}`, {
      ...structuredClone(secret),
      metadata: { ...secret.metadata, uid: 's-uid', resourceVersion: this.rv() },
    });
    this.writes.push('secret');
  }
  async replaceSecret(secret: Secret) {
    const key = `${secret.metadata.namespace}/${secret.metadata.name}`;
    if (this.secrets.get(key)?.metadata.resourceVersion !== secret.metadata.resourceVersion) throw new ConflictError('changed');
    this.secrets.set(key, { ...structuredClone(secret), metadata: { ...secret.metadata, uid: 's-uid', resourceVersion: this.rv() } });
    this.writes.push('secret');
  }
  async deleteSecret(namespace: string, name: string) {
    this.secrets.delete(`${namespace}/${name}`);
    this.writes.push('delete-secret');
  }
  async requestToken(_namespace: string, _serviceAccount: string, audience: string, seconds: number) {
    this.tokens.push({ audience, seconds });
    return { token: 'sa-token', expiresAt: now + seconds * 1000 };
  }
  async recordEvent() {}
}

let now = Date.parse('2026-01-01T00:00:00Z');
const lifetimeMs = 60 * 60_000;

describe('Reconciler', () => {
  let cluster: MemoryCluster;
  let exchange: Exchanger;
  let reconciler: Reconciler;

  beforeEach(() => {
    now = Date.parse('2026-01-01T00:00:00Z');
    cluster = new MemoryCluster();
    exchange = async (_server, _token, _clientId, scopes) => ({
      refreshToken: `rt-${now}`,
      issuedAt: now,
      expiresAt: now + lifetimeMs,
      granted: scopes,
      missing: [],
    });
    cluster.bindings.set('shop/app', {
      apiVersion: 'berth.dev/v1',
      kind: 'PullBinding',
      metadata: { name: 'app', namespace: 'shop', uid: 'b-uid', generation: 1, resourceVersion: '1' },
      spec: { registry: { server: 'reg.example.com', scopes: ['repository:team/app:pull'] }, auth: { workloadIdentity: { serviceAccountRef: 'puller' } } },
    });
    cluster.accounts.set('shop/default', { metadata: { name: 'default', namespace: 'shop', resourceVersion: '1' }, imagePullSecrets: [{ name: 'theirs' }] });
    reconciler = new Reconciler({
      api: cluster,
      exchange: (...args) => exchange(...args),
      now: () => now,
      options: { audience: 'berth', tokenExpirationSeconds: 3600, refreshFraction: 0.5, allowedServers: ['reg.example.com'], resyncMs: 10 * 60_000 },
      metrics: new ControllerMetrics(() => now),
      logger: pino({ level: 'silent' }),
    });
  });

  it('writes the Secret, the entry and the status once, then nothing until the refresh time', async () => {
    const first = await reconciler.reconcile('shop/app');
    assert.deepEqual(cluster.writes, ['finalizers', 'secret', 'serviceaccount', 'status']);
    assert.deepEqual(cluster.tokens, [{ audience: 'berth', seconds: 3600 }]);
    assert.equal(first.requeueAfterMs, 10 * 60_000, 'the resync comes before the refresh at 30 min');
    assert.deepEqual(cluster.accounts.get('shop/default')?.imagePullSecrets, [{ name: 'theirs' }, { name: 'app-berth-pull' }]);

    cluster.writes = [];
    now += 20 * 60_000;
    const second = await reconciler.reconcile('shop/app');
    assert.deepEqual(cluster.writes, [], 'nothing changed, nothing written');
    assert.equal(second.requeueAfterMs, 10 * 60_000);

    now += 10 * 60_000; // half the lifetime
    await reconciler.reconcile('shop/app');
    assert.deepEqual(cluster.writes, ['secret', 'status']);
    assert.equal(cluster.tokens.length, 2);
  });

  it('refreshes at once when the spec changes', async () => {
    await reconciler.reconcile('shop/app');
    cluster.writes = [];
    const binding = cluster.bindings.get('shop/app');
    assert.ok(binding);
    binding.spec.registry.scopes = ['repository:team/app:pull', 'repository:team/base:pull'];
    binding.metadata.generation = 2;
    now += 1000;
    await reconciler.reconcile('shop/app');
    assert.deepEqual(cluster.writes, ['secret', 'status']);
    assert.equal(cluster.bindings.get('shop/app')?.status?.observedGeneration, 2);
  });

  it('after failed refreshes, says RefreshOverdue and then Expired, keeping the Secret', async () => {
    await reconciler.reconcile('shop/app');
    exchange = async () => {
      throw new ExchangeError('unreachable', 'cannot reach http://reg.example.com: ECONNREFUSED');
    };
    now += 40 * 60_000;
    const failed = await reconciler.reconcile('shop/app');
    assert.deepEqual(failed, { retry: true });
    const conditions = () => Object.fromEntries((cluster.bindings.get('shop/app')?.status?.conditions ?? []).map((c) => [c.type, `${c.status} ${c.reason}`]));
    assert.deepEqual(conditions(), { Ready: 'False RegistryUnreachable', TokenRefreshFailed: 'True RegistryUnreachable', ExpiringSoon: 'True RefreshOverdue' });
    now += 30 * 60_000;
    await reconciler.reconcile('shop/app');
    assert.equal(conditions()['ExpiringSoon'], 'True Expired');
    assert.ok(cluster.secrets.has('shop/app-berth-pull'));
  });

  it('without a configured audience, requests service-account tokens for the one the registry advertises', async () => {
    const asked: string[] = [];
    const advertising = new Reconciler({
      api: cluster,
      exchange: (...args) => exchange(...args),
      audienceOf: async (server) => {
        asked.push(server);
        return 'urn:berth:reg-a';
      },
      now: () => now,
      options: { audience: undefined, tokenExpirationSeconds: 3600, refreshFraction: 0.5, allowedServers: ['reg.example.com'], resyncMs: 10 * 60_000 },
      metrics: new ControllerMetrics(() => now),
      logger: pino({ level: 'silent' }),
    });
    await advertising.reconcile('shop/app');
    assert.deepEqual(asked, ['reg.example.com']);
    assert.deepEqual(cluster.tokens, [{ audience: 'urn:berth:reg-a', seconds: 3600 }]);
  });

  it('lets a conflict through for a plain retry from a fresh read', async () => {
    const stale = cluster.accounts.get('shop/default');
    assert.ok(stale);
    const api = cluster;
    const original = api.setImagePullSecrets.bind(api);
    api.setImagePullSecrets = async (account, secrets) => {
      stale.metadata.resourceVersion = 'moved-on';
      return original(account, secrets);
    };
    await assert.rejects(reconciler.reconcile('shop/app'), ConflictError);
  });
});
