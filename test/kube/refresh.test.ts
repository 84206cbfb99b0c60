/**
 * Credentials that live six seconds: the controller (`berth controller` as a process, the way a
 * local run starts it) replaces them before they expire, says so when Berth stops issuing them, and
 * converges after a restart with changes made while it was down.
 *
 * Berth caps every registry token bought with a service-account token at 6 s
 * (federation.lifetimeCapMs), so with the default refresh fraction of 0.5 the controller refreshes
 * every 3 s; Kubernetes itself refuses TokenRequests under 600 s. This Berth trusts the cluster with a
 * static JWKS read from the API server (`kubectl get --raw /openid/v1/jwks`), the path for issuers
 * Berth cannot reach.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startKubeApiServer, type KubeApiServer } from '../support/kube-apiserver.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { Cluster, dockerConfig, eventually, federatedPuller, installController, SkopeoBox, startControllerProcess, type ControllerProcess } from './helpers.js';

const lifetimeMs = 6000;

describe('refresh, failure and restart (credentials living 6 s)', () => {
  let kube: KubeApiServer;
  let cluster: Cluster;
  let berth: TestServer;
  let host = '';
  let skopeo: SkopeoBox;
  let kubeconfig = '';
  let controller: ControllerProcess | undefined;
  let pullerId = '';
  const ns = 'web';

  const start = () =>
    startControllerProcess(['--kubeconfig', kubeconfig, '--allowed-registry', host, '--workers', '2'], {
      BERTH_BACKOFF_BASE_MS: '200',
      BERTH_BACKOFF_MAX_MS: '2000',
    });

  before(async () => {
    kube = await startKubeApiServer();
    cluster = new Cluster(kube);
    kubeconfig = await installController(kube);
    const jwks = (await kube.ok('GET', '/openid/v1/jwks')) as { keys: unknown[] };
    berth = await startTestServer({ auth: true, federationIssuers: [{ issuer: kube.issuer, jwks }], federationLifetimeCapMs: lifetimeMs });
    host = new URL(berth.url).host;
    skopeo = await SkopeoBox.create('kube-refresh');
    await skopeo.push(host, 'team/app');
    pullerId = await federatedPuller(berth, kube, 'web-puller', [{ pattern: 'team/*', permission: 'pull' }], ns, 'puller');
    await cluster.namespace(ns);
    await cluster.serviceAccount(ns, 'puller');
    await cluster.serviceAccount(ns, 'default');
    controller = await start();
  });

  after(async () => {
    await controller?.stop();
    await skopeo?.dispose();
    await berth?.stop();
    await kube?.stop();
  });

  const bind = (name: string) =>
    cluster.createBinding(ns, name, {
      registry: { server: host, scopes: ['repository:team/app:pull'] },
      auth: { workloadIdentity: { serviceAccountRef: 'puller' } },
    });

  it('replaces the credentials before they expire, and pulls keep working past the first expiry', async () => {
    await bind('app');
    const first = await cluster.condition(ns, 'app', 'Ready', 'True');
    const refreshedAt = Date.parse(first.status?.lastTokenRefreshTime ?? '');
    const expiresAt = Date.parse(first.status?.tokenExpirationTime ?? '');
    assert.ok(expiresAt - refreshedAt <= lifetimeMs, 'Berth capped the lifetime');
    const firstSecret = await cluster.secret(ns, 'app-berth-pull');
    assert.ok(firstSecret);

    const next = await eventually('a second refresh', async () => {
      const binding = await cluster.binding(ns, 'app');
      return Date.parse(binding?.status?.lastTokenRefreshTime ?? '') > refreshedAt ? binding : undefined;
    });
    assert.ok(Date.parse(next.status?.lastTokenRefreshTime ?? '') < expiresAt, 'refreshed before the previous credentials expired');
    assert.ok(Date.parse(next.status?.tokenExpirationTime ?? '') > expiresAt);
    assert.equal(next.status?.conditions?.find((c) => c.type === 'ExpiringSoon')?.status, 'False');

    // Past the first credentials' expiry, what the Secret holds now still pulls.
    await eventually('the first credentials have expired', async () => (Date.now() > expiresAt ? true : undefined));
    const secret = await cluster.secret(ns, 'app-berth-pull');
    assert.ok(secret);
    assert.notEqual(dockerConfig(secret).auths[host]?.password, dockerConfig(firstSecret).auths[host]?.password);
    const pulled = await skopeo.pull(host, 'team/app', dockerConfig(secret));
    assert.equal(pulled.code, 0, pulled.stderr);

    const metrics = await (await fetch(`${controller?.metricsUrl}/metrics`)).text();
    assert.ok(Number(/^berth_controller_token_refreshes_total (\S+)$/m.exec(metrics)?.[1]) >= 2, metrics);
    const untilExpiry = Number(/^berth_controller_seconds_until_earliest_expiry (\S+)$/m.exec(metrics)?.[1]);
    assert.ok(untilExpiry > 0 && untilExpiry <= lifetimeMs / 1000, metrics);
  });

  it('turns Ready False with a clear reason when the Berth principal is disabled, and recovers when it is enabled', async () => {
    await berth.app.auth.principals.setDisabled(pullerId, true);
    const failed = await cluster.condition(ns, 'app', 'Ready', 'False', 'ExchangeRefused');
    const ready = failed.status?.conditions?.find((c) => c.type === 'Ready');
    assert.equal(ready?.message, 'Berth refused the service-account token: principal is disabled');
    assert.equal(failed.status?.conditions?.find((c) => c.type === 'TokenRefreshFailed')?.status, 'True');
    // The Secret's credentials were revoked with the principal and run out: ExpiringSoon says so.
    await cluster.condition(ns, 'app', 'ExpiringSoon', 'True', 'Expired');
    const events = await cluster.events(ns, 'app');
    const warning = events.find((e) => e.type === 'Warning' && e.reason === 'ExchangeRefused');
    assert.ok(warning, JSON.stringify(events));
    const metrics = await (await fetch(`${controller?.metricsUrl}/metrics`)).text();
    assert.ok(Number(/^berth_controller_token_refresh_failures_total\{reason="ExchangeRefused"\} (\S+)$/m.exec(metrics)?.[1]) >= 1, metrics);

    await berth.app.auth.principals.setDisabled(pullerId, false);
    const recovered = await cluster.condition(ns, 'app', 'Ready', 'True');
    assert.equal(recovered.status?.conditions?.find((c) => c.type === 'ExpiringSoon')?.status, 'False');
    const secret = await cluster.secret(ns, 'app-berth-pull');
    assert.ok(secret);
    assert.equal((await skopeo.pull(host, 'team/app', dockerConfig(secret))).code, 0);
  });

  it('restarted after changes made while it was down, converges', async () => {
    await bind('kept');
    await cluster.condition(ns, 'kept', 'Ready', 'True');
    const exit = await controller?.stop();
    controller = undefined;
    assert.equal(exit?.code, 0, 'SIGTERM ends it cleanly');

    // While no controller runs: one binding deleted (its finalizer holds it), one created, one
    // Secret deleted, and the pods' service account stripped of its pull secrets.
    await cluster.deleteBinding(ns, 'app');
    await bind('late');
    await kube.ok('DELETE', `/api/v1/namespaces/${ns}/secrets/kept-berth-pull`);
    await kube.ok('PATCH', `/api/v1/namespaces/${ns}/serviceaccounts/default`, { imagePullSecrets: [] }, { contentType: 'application/merge-patch+json' });
    const terminating = await cluster.binding(ns, 'app');
    assert.ok(terminating?.metadata.deletionTimestamp, 'held by the finalizer while the controller is down');

    controller = await start();
    await eventually('the deleted binding is finalized', async () => ((await cluster.binding(ns, 'app')) === undefined ? true : undefined));
    assert.equal(await cluster.secret(ns, 'app-berth-pull'), undefined);
    await cluster.condition(ns, 'late', 'Ready', 'True');
    await eventually('kept has its Secret again', async () => cluster.secret(ns, 'kept-berth-pull'));
    await eventually('the service account lists exactly the live bindings', async () => {
      const names = (await cluster.pullSecretNames(ns, 'default')).sort();
      return names.join() === 'kept-berth-pull,late-berth-pull' ? names : undefined;
    });
    const late = await cluster.secret(ns, 'late-berth-pull');
    assert.ok(late);
    assert.equal((await skopeo.pull(host, 'team/app', dockerConfig(late))).code, 0);
  });
});
