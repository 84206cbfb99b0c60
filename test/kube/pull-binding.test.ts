/**
 * The pull-secret controller end to end, against a real kube-apiserver (v1.20, from
 * scripts/kube-apiserver) and a real Berth that trusts the cluster's service-account issuer through
 * OIDC discovery over HTTPS (its CA in federation.issuers[].caFile).
 *
 * The controller runs in-process with the RBAC of deploy/kubernetes/rbac.yaml: its kubeconfig holds
 * a token of the service account berth-system/berth-controller, so every call it makes is checked
 * against that role. Pulls are real skopeo pulls with the Secret's dockerconfigjson as auth file.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { refreshTokenUser } from '../../src/remote/tokens.js';
import { loadControllerSettings } from '../../src/kube/options.js';
import { runController, type RunningController } from '../../src/kube/run.js';
import { startKubeApiServer, type KubeApiServer } from '../support/kube-apiserver.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { Cluster, dockerConfig, eventually, federatedPuller, installController, SkopeoBox } from './helpers.js';

describe('PullBinding controller (real kube-apiserver, real Berth, skopeo)', () => {
  let kube: KubeApiServer;
  let cluster: Cluster;
  let berth: TestServer;
  let host = '';
  let skopeo: SkopeoBox;
  let running: RunningController;
  let controllerToken = '';
  let pullerId = '';
  const ns = 'shop';

  before(async () => {
    kube = await startKubeApiServer({ anonymousDiscovery: true });
    cluster = new Cluster(kube);
    const kubeconfig = await installController(kube);
    controllerToken = /token: (\S+)/.exec(await import('node:fs/promises').then((fs) => fs.readFile(kubeconfig, 'utf8')))?.[1] ?? '';
    berth = await startTestServer({ auth: true, federationIssuers: [{ issuer: kube.issuer, caFile: kube.caFile }] });
    host = new URL(berth.url).host;
    skopeo = await SkopeoBox.create('kube-pull-binding');
    await skopeo.push(host, 'team/app');
    await skopeo.push(host, 'team/other');
    pullerId = await federatedPuller(berth, kube, 'shop-puller', [{ pattern: 'team/app', permission: 'pull' }], ns, 'puller');
    await cluster.namespace(ns);
    await cluster.serviceAccount(ns, 'puller');
    // Without kube-controller-manager there is no `default` account: make one, with a pull secret of someone else's.
    await cluster.serviceAccount(ns, 'default', ['someone-elses']);
    await cluster.serviceAccount(ns, 'builder');
    running = await runController(
      loadControllerSettings(
        { kubeconfig, allowedRegistries: [host], metricsAddr: '127.0.0.1:0', workers: 2, backoffBaseMs: 200, backoffMaxMs: 2000, logLevel: 'silent' },
        {},
      ),
      pino({ level: process.env['BERTH_TEST_LOG'] ?? 'silent' }),
    );
  });

  after(async () => {
    await running?.stop();
    await skopeo?.dispose();
    await berth?.stop();
    await kube?.stop();
  });

  const bind = (name: string, scopes: string[], extra: Record<string, unknown> = {}) =>
    cluster.createBinding(ns, name, {
      registry: { server: host, scopes },
      auth: { workloadIdentity: { serviceAccountRef: 'puller' }, clientId: 'shop-puller' },
      ...extra,
    });

  describe('a PullBinding', () => {
    it('yields a dockerconfigjson Secret whose credentials pull the bound repository and not another', async () => {
      await bind('app', ['repository:team/app:pull']);
      const binding = await cluster.condition(ns, 'app', 'Ready', 'True', 'TokenRefreshed');
      const status = binding.status ?? {};
      assert.equal(status.observedGeneration, 1);
      assert.equal(status.secretName, 'app-berth-pull');
      assert.ok(status.lastTokenRefreshTime && status.tokenExpirationTime);
      assert.ok(Date.parse(status.tokenExpirationTime) > Date.parse(status.lastTokenRefreshTime));
      const byType = Object.fromEntries((status.conditions ?? []).map((c) => [c.type, c]));
      assert.equal(byType['TokenRefreshFailed']?.status, 'False');
      assert.equal(byType['ExpiringSoon']?.status, 'False');
      assert.equal(byType['Ready']?.observedGeneration, 1);

      const secret = await cluster.secret(ns, 'app-berth-pull');
      assert.ok(secret, 'the Secret exists');
      assert.equal(secret.type, 'kubernetes.io/dockerconfigjson');
      assert.deepEqual(
        secret.metadata.ownerReferences?.map((r) => [r.kind, r.name, r.uid, r.controller]),
        [['PullBinding', 'app', binding.metadata.uid, true]],
      );
      const annotations = secret.metadata.annotations ?? {};
      assert.equal(annotations['berth.dev/expires-at'] && Date.parse(annotations['berth.dev/expires-at']), Date.parse(status.tokenExpirationTime));
      assert.match(annotations['berth.dev/inputs-hash'] ?? '', /^[0-9a-f]{64}$/);
      const entry = dockerConfig(secret).auths[host];
      assert.ok(entry, `auths has ${host}`);
      assert.equal(entry.username, refreshTokenUser);
      assert.equal(Buffer.from(entry.auth, 'base64').toString(), `${refreshTokenUser}:${entry.password}`);
      for (const value of Object.values(annotations)) assert.ok(!value.includes(entry.password), 'no annotation carries the token');

      // The pods' service account lists it, after the entry it already had.
      assert.deepEqual(await cluster.pullSecretNames(ns, 'default'), ['someone-elses', 'app-berth-pull']);

      const pulled = await skopeo.pull(host, 'team/app', dockerConfig(secret));
      assert.equal(pulled.code, 0, `skopeo pull team/app: ${pulled.stderr}`);
      const refused = await skopeo.pull(host, 'team/other', dockerConfig(secret));
      assert.notEqual(refused.code, 0, 'team/other must not be pullable');
      assert.match(refused.stderr, /denied|unauthorized|requested access/i);

      const events = await cluster.events(ns, 'app');
      assert.ok(
        events.some((e) => e.type === 'Normal' && e.reason === 'TokenRefreshed'),
        JSON.stringify(events),
      );
    });

    it('puts back what others remove: the Secret deleted, the pull-secret entry dropped', async () => {
      const before = await cluster.secret(ns, 'app-berth-pull');
      assert.ok(before);
      await kube.ok('DELETE', `/api/v1/namespaces/${ns}/secrets/app-berth-pull`);
      await eventually('the Secret is recreated', async () => {
        const secret = await cluster.secret(ns, 'app-berth-pull');
        return secret && secret.metadata.uid !== before.metadata.uid ? secret : undefined;
      });
      const sa = await cluster.getServiceAccount(ns, 'default');
      await kube.ok(
        'PATCH',
        `/api/v1/namespaces/${ns}/serviceaccounts/default`,
        { imagePullSecrets: [{ name: 'someone-elses' }] },
        { contentType: 'application/merge-patch+json' },
      );
      assert.ok(sa.metadata.resourceVersion);
      await eventually('the entry is added again', async () => ((await cluster.pullSecretNames(ns, 'default')).includes('app-berth-pull') ? true : undefined));
      assert.deepEqual(await cluster.pullSecretNames(ns, 'default'), ['someone-elses', 'app-berth-pull']);
    });

    it('reports a scope Berth does not grant, keeps the working Secret, and recovers once it is granted', async () => {
      const before = await cluster.secret(ns, 'app-berth-pull');
      assert.ok(before);
      await cluster.patchBinding(ns, 'app', { spec: { registry: { scopes: ['repository:team/app:pull', 'repository:team/other:pull'] } } });
      const failed = await cluster.condition(ns, 'app', 'Ready', 'False', 'ScopesNotGranted');
      const ready = failed.status?.conditions?.find((c) => c.type === 'Ready');
      assert.match(ready?.message ?? '', /repository:team\/other:pull/);
      assert.equal(failed.status?.conditions?.find((c) => c.type === 'TokenRefreshFailed')?.status, 'True');
      assert.equal(failed.status?.observedGeneration, 2);
      const events = await cluster.events(ns, 'app');
      assert.ok(
        events.some((e) => e.type === 'Warning' && e.reason === 'ScopesNotGranted'),
        JSON.stringify(events),
      );
      const unchanged = await cluster.secret(ns, 'app-berth-pull');
      assert.equal(unchanged?.data['.dockerconfigjson'], before.data['.dockerconfigjson']);
      assert.equal((await skopeo.pull(host, 'team/app', dockerConfig(before))).code, 0, 'the old Secret still pulls');

      // Nothing changes in the cluster: the controller's retries (with backoff) find the new grant.
      await berth.app.auth.principals.setGrants(pullerId, [
        { pattern: 'team/app', permission: 'pull' },
        { pattern: 'team/other', permission: 'pull' },
      ]);
      await cluster.condition(ns, 'app', 'Ready', 'True');
      const secret = await cluster.secret(ns, 'app-berth-pull');
      assert.ok(secret);
      assert.notEqual(secret.data['.dockerconfigjson'], before.data['.dockerconfigjson'], 'a spec change brings new credentials');
      assert.equal((await skopeo.pull(host, 'team/other', dockerConfig(secret))).code, 0);
    });

    it("the Secret reaches only the binding's scopes, even when the principal is granted more", async () => {
      // The principal may now pull team/app and team/other; the binding goes back to team/app only.
      const before = await cluster.secret(ns, 'app-berth-pull');
      assert.ok(before);
      await cluster.patchBinding(ns, 'app', { spec: { registry: { scopes: ['repository:team/app:pull'] } } });
      const secret = await eventually('new credentials for the narrowed spec', async () => {
        const current = await cluster.secret(ns, 'app-berth-pull');
        return current && current.data['.dockerconfigjson'] !== before.data['.dockerconfigjson'] ? current : undefined;
      });
      await cluster.condition(ns, 'app', 'Ready', 'True');
      assert.equal((await skopeo.pull(host, 'team/app', dockerConfig(secret))).code, 0);
      const refused = await skopeo.pull(host, 'team/other', dockerConfig(secret));
      assert.notEqual(refused.code, 0, 'team/other is granted to the principal but not bound');
      assert.match(refused.stderr, /denied|unauthorized|requested access/i);
    });

    it('moves the Secret to another service account at once when spec.serviceAccountName changes', async () => {
      const before = await cluster.secret(ns, 'app-berth-pull');
      assert.ok(before);
      const generation = (await cluster.binding(ns, 'app'))?.metadata.generation ?? 0;
      await cluster.patchBinding(ns, 'app', { spec: { serviceAccountName: 'builder' } });
      await eventually('the Secret is on builder and off default', async () => {
        const onBuilder = (await cluster.pullSecretNames(ns, 'builder')).includes('app-berth-pull');
        const onDefault = (await cluster.pullSecretNames(ns, 'default')).includes('app-berth-pull');
        return onBuilder && !onDefault ? true : undefined;
      });
      assert.deepEqual(await cluster.pullSecretNames(ns, 'default'), ['someone-elses']);
      const binding = await cluster.condition(ns, 'app', 'Ready', 'True');
      assert.equal(binding.status?.observedGeneration, generation + 1);
      const after = await cluster.secret(ns, 'app-berth-pull');
      assert.equal(after?.metadata.annotations?.['berth.dev/service-account'], 'builder');
      assert.notEqual(after?.metadata.annotations?.['berth.dev/inputs-hash'], before.metadata.annotations?.['berth.dev/inputs-hash']);
    });

    it('deleted, leaves nothing behind: the Secret, its entry and the finalizer go', async () => {
      const binding = await cluster.binding(ns, 'app');
      assert.deepEqual(binding?.metadata.finalizers, ['berth.dev/pull-secret']);
      await cluster.deleteBinding(ns, 'app');
      await eventually('the binding is gone', async () => ((await cluster.binding(ns, 'app')) === undefined ? true : undefined));
      assert.equal(await cluster.secret(ns, 'app-berth-pull'), undefined);
      assert.deepEqual(await cluster.pullSecretNames(ns, 'builder'), []);
      assert.deepEqual(await cluster.pullSecretNames(ns, 'default'), ['someone-elses']);
    });
  });

  describe('guardrails', () => {
    it('refuses a registry that is not on the allow-list, without minting anything', async () => {
      await cluster.createBinding(ns, 'elsewhere', {
        registry: { server: 'registry.evil.example:5000', scopes: ['repository:team/app:pull'] },
        auth: { workloadIdentity: { serviceAccountRef: 'puller' } },
      });
      const binding = await cluster.condition(ns, 'elsewhere', 'Ready', 'False', 'RegistryServerNotAllowed');
      assert.match(binding.status?.conditions?.[0]?.message ?? '', /registry\.evil\.example:5000 is not in the controller's allow-list/);
      assert.equal(await cluster.secret(ns, 'elsewhere-berth-pull'), undefined);
      await cluster.deleteBinding(ns, 'elsewhere');
      await eventually('the binding is gone', async () => ((await cluster.binding(ns, 'elsewhere')) === undefined ? true : undefined));
    });

    it('the CRD schema refuses wildcards, push scopes, no scopes and bad servers; spec.serviceAccountName defaults to default', async () => {
      const attempts: Array<[string, Record<string, unknown>]> = [
        ['a wildcard', { server: host, scopes: ['repository:team/*:pull'] }],
        ['a push scope', { server: host, scopes: ['repository:team/app:pull,push'] }],
        ['no scopes', { server: host, scopes: [] }],
        ['a scheme in the server', { server: `http://${host}`, scopes: ['repository:team/app:pull'] }],
      ];
      for (const [what, registry] of attempts) {
        const res = await kube.request('POST', `/apis/berth.dev/v1/namespaces/${ns}/pullbindings`, {
          apiVersion: 'berth.dev/v1',
          kind: 'PullBinding',
          metadata: { name: 'invalid' },
          spec: { registry, auth: { workloadIdentity: { serviceAccountRef: 'puller' } } },
        });
        assert.equal(res.status, 422, `${what}: ${JSON.stringify(res.body)}`);
      }
      const created = await cluster.createBinding(ns, 'defaulted', {
        registry: { server: host, scopes: ['repository:team/app:pull'] },
        auth: { workloadIdentity: { serviceAccountRef: 'ghost' } },
      });
      assert.equal(created.spec.serviceAccountName, 'default');
    });

    it('says which service account is missing when the token cannot be requested', async () => {
      const binding = await cluster.condition(ns, 'defaulted', 'Ready', 'False', 'ServiceAccountTokenFailed');
      assert.match(binding.status?.conditions?.[0]?.message ?? '', /service account shop\/ghost .* does not exist/);
      assert.equal(binding.status?.conditions?.find((c) => c.type === 'ExpiringSoon')?.reason, 'NoCredentials');
      await cluster.deleteBinding(ns, 'defaulted');
    });

    it('never overwrites a Secret it does not own', async () => {
      await kube.ok('POST', `/api/v1/namespaces/${ns}/secrets`, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'mine-berth-pull' },
        type: 'Opaque',
        data: { keep: Buffer.from('me').toString('base64') },
      });
      await bind('mine', ['repository:team/app:pull']);
      await cluster.condition(ns, 'mine', 'Ready', 'False', 'SecretConflict');
      const secret = await cluster.secret(ns, 'mine-berth-pull');
      assert.deepEqual(secret?.data, { keep: Buffer.from('me').toString('base64') });
      await cluster.deleteBinding(ns, 'mine');
      await eventually('the binding is gone', async () => ((await cluster.binding(ns, 'mine')) === undefined ? true : undefined));
      assert.ok(await cluster.secret(ns, 'mine-berth-pull'), 'the foreign Secret survives the binding');
    });

    it('runs with the RBAC of deploy/kubernetes/rbac.yaml, which grants nothing beyond its resources', async () => {
      // Everything above ran as berth-system/berth-controller; here is what that identity may not do.
      for (const path of ['/api/v1/pods', '/api/v1/namespaces/shop/configmaps', '/apis/apps/v1/deployments']) {
        const res = await kube.request('GET', path, undefined, { token: controllerToken });
        assert.equal(res.status, 403, `${path}: ${JSON.stringify(res.body)}`);
      }
    });
  });

  it('serves metrics: refreshes, failures by reason, seconds until the earliest expiry', async () => {
    await bind('metrics', ['repository:team/app:pull']);
    await cluster.condition(ns, 'metrics', 'Ready', 'True');
    assert.ok(running.metricsUrl);
    const text = await (await fetch(`${running.metricsUrl}/metrics`)).text();
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1]);
    assert.ok(value(/^berth_controller_token_refreshes_total (\S+)$/m) >= 3, text);
    assert.ok(value(/^berth_controller_token_refresh_failures_total\{reason="ScopesNotGranted"\} (\S+)$/m) >= 1, text);
    assert.ok(value(/^berth_controller_token_refresh_failures_total\{reason="RegistryServerNotAllowed"\} (\S+)$/m) >= 1, text);
    assert.ok(value(/^berth_controller_seconds_until_earliest_expiry (\S+)$/m) > 0, text);
    assert.equal((await fetch(`${running.metricsUrl}/healthz`)).status, 200);
    assert.equal((await fetch(`${running.metricsUrl}/readyz`)).status, 200);
  });
});
