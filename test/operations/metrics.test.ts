/**
 * `/metrics` after a scripted session on a real Berth: a push and a pull, a failed login, a
 * federated exchange (and a refused one) against a real OIDC issuer, a webhook delivered to a real
 * receiver, a sync copy from a second Berth, an audit export and a `berth gc` run; every family the
 * session should move is checked against the scrape before it. Then: the metric names the Grafana
 * dashboard and the Prometheus alert rules in deploy/ use all exist in that scrape, and the
 * separate metrics listener with a token.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { gc } from '../../src/cli/gc.js';
import { Api } from '../admin/helpers.js';
import { basic, postForm, tokenFor } from '../auth/helpers.js';
import { startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.js';
import { REPO_ROOT } from '../support/berth-process.js';
import { testBackend } from '../support/backends.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';
import { Receiver } from '../webhooks/helpers.js';
import { parseScrape, pullSmallImage, pushSmallImage, sample, scrape, total, waitFor, type Scrape } from './helpers.js';

const loopback = { allow: ['127.0.0.1/32', '::1/128'] };

describe('metrics after a scripted session', () => {
  let issuer: OidcIssuer;
  let receiver: Receiver;
  let source: TestServer;
  let server: TestServer;
  let owner: Api;
  let before_: Scrape;
  let after_: Scrape;

  before(async () => {
    issuer = await startOidcIssuer();
    receiver = await Receiver.start();
    source = await startTestServer();
    await pushSmallImage(source.url, undefined, 'upstream/tool', 'v1');
    server = await startTestServer({
      auth: true,
      federationIssuers: [{ issuer: issuer.issuer }],
      config: {
        egress: loopback,
        webhooks: { pollIntervalMs: 200, timeoutMs: 3000, backoff: { baseMs: 20, maxMs: 200 } },
        sync: { workerIntervalMs: 100, minPollIntervalMs: 50, leaseMs: 10_000, retry: { initialDelayMs: 200, maxDelayMs: 1000, maxAttempts: 3 } },
        audit: { export: { sinks: [{ name: 'siem', type: 'cloudevents', url: `${receiver.url}/audit` }], pollIntervalMs: 200 } },
      },
    });
    owner = await Api.asOwner(server.url);
    const ci = await server.app.auth.principals.createPrincipal('service', 'ci', { grants: [{ pattern: 'acme/**', permission: 'push' }], withoutSecret: true });
    await server.app.metadata.auth.federatedCredentials.put({
      id: randomUUID(),
      principalId: ci.principal.id,
      name: 'github-main',
      issuer: issuer.issuer,
      audiences: ['berth'],
      subject: 'repo:acme/app:*',
      conditions: [],
      createdAt: Date.now(),
    });
    const hook = await owner.post('/webhooks', { name: 'notify', url: `${receiver.url}/hook` });
    assert.equal(hook.status, 201, JSON.stringify(hook.body));
    before_ = await scrape(server.url);

    // The session.
    const token = String((await tokenFor(server.url, ownerName, ownerPassword, ['repository:team/app:pull,push']))['token']);
    await pushSmallImage(server.url, token, 'team/app', 'v1');
    await pullSmallImage(server.url, token, 'team/app', 'v1');
    const failed = await fetch(`${server.url}/oauth2/token?service=berth`, { headers: { Authorization: basic(ownerName, 'not-the-password') } });
    assert.equal(failed.status, 401);
    const assertion = (jwt: string) => ({
      grant_type: 'client_credentials',
      client_id: 'ci',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: jwt,
      service: 'berth',
      scope: 'repository:acme/app:push',
    });
    const federated = await postForm(server.url, '/oauth2/token', assertion(await issuer.github({ repository: 'acme/app' })));
    assert.equal(federated.status, 200, await federated.clone().text());
    const refused = await postForm(server.url, '/oauth2/token', assertion(await issuer.github({ repository: 'other/app' })));
    assert.equal(refused.status, 401);
    await waitFor('the webhook delivery', () => receiver.received.some((r) => r.path === '/hook'));
    const rule = await owner.post('/sync/rules', {
      name: 'mirror',
      source: { url: source.url },
      repositories: ['upstream/*'],
      triggers: { pollIntervalMs: 300 },
    });
    assert.equal(rule.status, 201, JSON.stringify(rule.body));
    await waitFor('the sync copy', async () => {
      const status = (await owner.get('/sync/rules/mirror/status')).body;
      return status.images.some((image: { copies: number }) => image.copies > 0);
    });
    await waitFor('the audit export', () => receiver.received.some((r) => r.path === '/audit'));
    // `berth gc` in this process, on the server's backends: it records its run for the servers' metrics.
    const dir = await mkdtemp(join(tmpdir(), 'berth-gc-config-'));
    try {
      const config = join(dir, 'berth.json');
      await writeFile(config, JSON.stringify(await serverConfig(server)));
      await gc({ config });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // Database state is read at most once a second: wait for a scrape that has read it since.
    after_ = await waitFor('a scrape showing the sync copy, the export and the GC run', async () => {
      const taken = await scrape(server.url);
      const done =
        sample(taken, 'berth_sync_copies_total', { rule: 'mirror', result: 'copied' }) >= 1 &&
        total(taken, 'berth_audit_exported_total') > 0 &&
        sample(taken, 'berth_gc_runs_total', { status: 'succeeded' }) >= 1;
      return done ? taken : undefined;
    });
  });
  after(async () => {
    await server?.stop();
    await source?.stop();
    await receiver?.close();
    await issuer?.stop();
  });

  const moved = (name: string, labels: Record<string, string> = {}) => total(after_, name, labels) - total(before_, name, labels);

  it('counts HTTP requests by route template, method and status class, with latency and in-flight', () => {
    assert.equal(moved('berth_http_requests_total', { route: 'manifest', method: 'PUT', status: '2xx' }), 1);
    assert.ok(moved('berth_http_requests_total', { route: 'manifest', method: 'GET', status: '2xx' }) >= 1);
    assert.ok(moved('berth_http_requests_total', { route: 'token', method: 'GET', status: '4xx' }) >= 1, 'the failed login');
    assert.ok(moved('berth_http_request_duration_seconds_count', { route: 'blob', method: 'GET' }) >= 1);
    assert.ok(after_.samples.has('berth_http_requests_in_flight{}'));
    // Never a repository name, a digest or a raw path as a label value.
    for (const key of after_.samples.keys()) assert.ok(!/team\/app|upstream\/tool|sha256:/.test(key), `no repository or digest in ${key}`);
  });

  it('counts bytes on blob routes and the registry pushes and pulls', () => {
    assert.ok(moved('berth_http_blob_received_bytes_total', { route: 'upload' }) > 4000, 'the layer went up');
    assert.ok(moved('berth_http_blob_sent_bytes_total', { route: 'blob' }) > 4000, 'the layer came down');
    assert.equal(moved('berth_registry_pushes_total', { kind: 'manifest' }), 1);
    assert.equal(moved('berth_registry_pushes_total', { kind: 'blob' }), 2);
    assert.equal(moved('berth_registry_pulls_total', { kind: 'manifest' }), 1);
    assert.equal(moved('berth_registry_pulls_total', { kind: 'blob' }), 1);
    assert.ok(after_.families.has('berth_registry_upload_sessions_open'));
  });

  it('counts token requests by grant and result, refusals by reason, federated exchanges by issuer, credential and check', () => {
    assert.ok(moved('berth_token_requests_total', { endpoint: 'token', grant: 'password', result: 'refused' }) >= 1);
    assert.ok(moved('berth_token_refusals_total', { endpoint: 'token', grant: 'password', reason: 'invalid_grant' }) >= 1);
    assert.equal(moved('berth_token_requests_total', { endpoint: 'token', grant: 'client_credentials', result: 'issued' }), 1);
    assert.equal(moved('berth_federation_exchanges_total', { issuer: issuer.issuer, credential: 'github-main', result: 'ok' }), 1);
    assert.equal(moved('berth_federation_exchanges_total', { issuer: issuer.issuer, credential: 'none', result: 'subject' }), 1);
    assert.ok(moved('berth_federation_key_fetches_total', { issuer: issuer.issuer, kind: 'discovery', result: 'ok' }) >= 1);
    assert.ok(moved('berth_federation_key_fetches_total', { issuer: issuer.issuer, kind: 'jwks', result: 'ok' }) >= 1);
    assert.ok(moved('berth_audit_events_total', { event: 'login.failed' }) >= 1);
    assert.ok(moved('berth_audit_events_total', { event: 'token.refused' }) >= 1);
  });

  it('counts webhook deliveries and background job runs, and reports the outbox', () => {
    assert.ok(moved('berth_webhook_deliveries_total', { result: 'delivered' }) >= 1);
    assert.ok(moved('berth_jobs_runs_total', { kind: 'webhook delivery', outcome: 'done' }) >= 1);
    assert.ok(moved('berth_jobs_run_duration_seconds_count', { kind: 'webhook delivery' }) >= 1);
    assert.ok(after_.samples.has('berth_webhook_outbox_pending{stage="delivery"}'));
    assert.ok(after_.samples.has('berth_webhook_outbox_oldest_pending_age_seconds{}'));
    assert.ok(after_.families.has('berth_jobs_lease_takeovers_total'));
  });

  it('counts sync copies per rule and reports its queue and lag', () => {
    assert.ok(moved('berth_sync_copies_total', { rule: 'mirror', result: 'copied' }) >= 1);
    assert.ok(moved('berth_jobs_runs_total', { kind: 'sync copy', outcome: 'done' }) >= 1);
    assert.ok(after_.samples.has('berth_sync_queue_depth{rule="mirror"}'));
    assert.ok(after_.samples.has('berth_sync_lag_seconds{rule="mirror"}'));
    assert.equal(sample(after_, 'berth_sync_images_failing', { rule: 'mirror' }), 0);
    assert.ok(sample(after_, 'berth_sync_last_success_timestamp_seconds', { rule: 'mirror' }) > 0);
  });

  it('reports the audit export, import jobs by state and garbage collection', () => {
    assert.ok(moved('berth_audit_exported_total', { sink: 'siem' }) > 0);
    assert.ok(after_.samples.has('berth_audit_export_pending{sink="siem"}'));
    assert.ok(after_.samples.has('berth_import_jobs{state="succeeded"}'));
    assert.equal(moved('berth_gc_runs_total', { status: 'succeeded' }), 1);
    assert.ok(sample(after_, 'berth_gc_last_success_timestamp_seconds') > 0);
    assert.ok(after_.families.has('berth_gc_freed_bytes_total'));
  });

  it('times storage and database operations by driver and operation, and has the process metrics', () => {
    const driver = server.app.storage.name;
    assert.ok(moved('berth_storage_operation_duration_seconds_count', { driver, operation: 'move' }) >= 3);
    assert.ok(moved('berth_metadata_operation_duration_seconds_count', { operation: 'manifests.put' }) >= 1);
    assert.ok(moved('berth_metadata_operation_duration_seconds_count', { operation: 'manifests.getByTag' }) >= 1);
    assert.ok(after_.families.has('berth_process_cpu_user_seconds_total'));
    assert.ok(after_.families.has('berth_nodejs_eventloop_lag_seconds'));
  });

  it('uses only metric names the server exports in the Grafana dashboard and the alert rules', async () => {
    const names = await deployedMetricNames();
    assert.ok(names.size >= 8, `the dashboard and rules use metrics (${[...names].join(', ')})`);
    const exported = new Set([...after_.families, ...[...after_.samples.keys()].map((key) => key.slice(0, key.indexOf('{')))]);
    // The PostgreSQL pool's gauges exist only on PostgreSQL (scripts/test.sh runs this file there too).
    const postgresOnly = (name: string) => name.startsWith('berth_metadata_pool_') && !testBackend().postgres;
    const missing = [...names].filter((name) => !postgresOnly(name) && !exported.has(name) && !exported.has(name.replace(/_(bucket|sum|count)$/, '')));
    assert.deepEqual(missing, [], 'every metric name in deploy/ is in a real scrape');
  });
});

describe('the metrics endpoint', () => {
  let server: TestServer;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-metrics-token-'));
    await writeFile(join(dir, 'token'), 'scrape-secret\n');
    server = await startTestServer({ config: { metrics: { addr: '127.0.0.1:0', tokenFile: join(dir, 'token') } } });
  });
  after(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('on a separate metrics.addr: only there, only with the token; the probes answer on both listeners', async () => {
    const metricsUrl = server.app.metricsUrl();
    assert.ok(metricsUrl, 'the metrics listener is up');
    assert.equal((await fetch(`${server.url}/metrics`)).status, 404, 'not on the main listener');
    const denied = await fetch(`${metricsUrl}/metrics`);
    assert.equal(denied.status, 401);
    assert.match(denied.headers.get('www-authenticate') ?? '', /^Bearer /);
    assert.equal((await fetch(`${metricsUrl}/metrics`, { headers: { Authorization: 'Bearer wrong' } })).status, 401);
    const scraped = parseScrape(await (await fetch(`${metricsUrl}/metrics`, { headers: { Authorization: 'Bearer scrape-secret' } })).text());
    assert.ok(scraped.families.has('berth_http_requests_total'));
    for (const base of [server.url, metricsUrl]) {
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
    }
    assert.equal((await fetch(`${metricsUrl}/v2/`)).status, 404, 'the metrics listener serves nothing else');
  });
});

/** The `metadata` and `storage` sections the test server runs on (for `berth gc` on the same backends). */
async function serverConfig(server: TestServer): Promise<Record<string, unknown>> {
  const { backendConfig } = await import('../support/backends.js');
  return { dataDir: server.dataDir, ...(await backendConfig(server.dataDir)) };
}

/** Every `berth_…` metric name used by the dashboards and alert rules in deploy/. */
async function deployedMetricNames(): Promise<Set<string>> {
  const names = new Set<string>();
  const collect = (expr: string) => {
    for (const [name] of expr.matchAll(/\bberth_[a-z0-9_]+/g)) names.add(name);
  };
  const grafana = join(REPO_ROOT, 'deploy', 'grafana');
  for (const file of await readdir(grafana)) {
    if (!file.endsWith('.json')) continue;
    const walk = (value: unknown): void => {
      if (Array.isArray(value)) value.forEach(walk);
      else if (value && typeof value === 'object') {
        for (const [key, inner] of Object.entries(value)) {
          if (key === 'expr' && typeof inner === 'string') collect(inner);
          else walk(inner);
        }
      }
    };
    walk(JSON.parse(await readFile(join(grafana, file), 'utf8')));
  }
  const rules = parseYaml(await readFile(join(REPO_ROOT, 'deploy', 'prometheus', 'berth-alerts.yaml'), 'utf8')) as {
    groups: Array<{ rules: Array<{ expr: string }> }>;
  };
  for (const group of rules.groups) for (const rule of group.rules) collect(rule.expr);
  return names;
}
