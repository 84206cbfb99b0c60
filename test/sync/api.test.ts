import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertError } from '../admin/helpers.js';
import type { TestServer } from '../support/server.js';
import { Api, deliver, pushEvent, startBerth } from './helpers.js';

const digest = `sha256:${'b'.repeat(64)}`;

/** /api/v1/sync/rules: validation, views, secrets shown once, audit, and the egress policy on sources. */
describe('the sync rules API', () => {
  let server: TestServer;
  let api: Api;
  let source = '';

  before(async () => {
    // Rules may name variables starting with VENDOR_ (test/sync/secret-references.test.ts covers the bounds).
    server = await startBerth({ secrets: { envPrefix: 'VENDOR_' } });
    api = await Api.asOwner(server.url);
    source = server.url; // any reachable registry does; the rules here are never run against it
  });
  after(async () => server?.stop());

  it('creates a rule: 201 with the view, the generated webhook secret shown once, defaults filled in', async () => {
    const res = await api.post('/sync/rules', {
      name: 'acme',
      source: { url: `${source}/`, credentials: { kind: 'basic', username: 'reader', password: 'vendor-password-1' } },
      repositories: ['tripinsights/*'],
      triggers: { webhook: {} },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const rule = res.body.rule;
    assert.equal(rule.name, 'acme');
    assert.equal(rule.source.url, source, 'a trailing slash is dropped');
    assert.deepEqual(rule.source.credentials, { kind: 'basic', username: 'reader', passwordSource: 'stored', passwordFile: null, passwordEnv: null });
    assert.deepEqual(rule.tags, { include: [], exclude: [] });
    assert.equal(rule.destinationPrefix, '');
    assert.deepEqual(rule.triggers, { webhook: { url: `${server.url}/api/v1/sync/rules/acme/webhook` }, pollIntervalMs: null, onDemand: true });
    assert.deepEqual(rule.limits, { requestsPerSecond: 50, concurrency: 4 });
    assert.equal(rule.includeReferrers, true);
    assert.equal(rule.enabled, true);
    assert.ok(rule.state.nextReconcileAt, 'a webhook rule is reconciled by the safety net; its backfill is due at once');
    assert.equal(res.body.webhook.url, rule.triggers.webhook.url);
    assert.match(res.body.webhook.secret, /^[A-Za-z0-9_-]{43}$/);
    // Never again: not in GET, list or status, and no inline password either.
    for (const path of ['/sync/rules/acme', '/sync/rules', '/sync/rules/acme/status']) {
      const text = JSON.stringify((await api.get(path)).body);
      assert.ok(!text.includes(res.body.webhook.secret), path);
      assert.ok(!text.includes('vendor-password-1'), path);
    }
  });

  it('lists rules by name and shows one', async () => {
    assert.equal((await api.post('/sync/rules', { name: 'beta', source: { url: source }, repositories: ['a/**'] })).status, 201);
    const list = await api.get('/sync/rules');
    assert.deepEqual(
      list.body.rules.map((r: any) => r.name),
      ['acme', 'beta'],
    );
    const beta = await api.get('/sync/rules/beta');
    assert.equal(beta.status, 200);
    assert.deepEqual(beta.body.source.credentials, { kind: 'anonymous' });
    assert.equal(beta.body.triggers.webhook, null);
    assert.equal(beta.body.state.nextReconcileAt, null, 'an on-demand rule is not scheduled');
  });

  it('refuses invalid rules with 400 naming the field', async () => {
    const base = { name: 'x', source: { url: source }, repositories: ['a/*'] };
    const cases: Array<[unknown, RegExp]> = [
      [{ ...base, name: 'Bad Name' }, /name: a rule name is/],
      [{ ...base, repositories: [] }, /repositories: list at least one/],
      [{ ...base, repositories: ['A/*'] }, /repositories\.0: .* is not a repository glob/],
      [{ ...base, tags: { include: ['regex:('] } }, /tags\.include\.0: invalid regular expression/],
      [{ ...base, tags: { exclude: ['semver:banana'] } }, /tags\.exclude\.0: .* is not a semver range/],
      [{ ...base, destinationPrefix: 'UPPER' }, /destinationPrefix/],
      [{ ...base, source: { url: 'ftp://example.com' } }, /source\.url: the source is an http\(s\) URL/],
      [{ ...base, source: { url: 'https://user:pw@example.com' } }, /without credentials/],
      [{ ...base, source: { url: source, credentials: { kind: 'basic', username: 'u' } } }, /exactly one of password, passwordFile or passwordEnv/],
      [{ ...base, source: { url: source, credentials: { kind: 'basic', username: 'u', password: 'p', passwordEnv: 'X' } } }, /exactly one of/],
      [{ ...base, source: { url: source, credentials: { kind: 'token' } } }, /source\.credentials/],
      [{ ...base, source: { url: 'http://registry.example.com', credentials: { kind: 'basic', username: 'u', password: 'p' } } }, /never sent over plain HTTP/],
      [{ ...base, triggers: { webhook: { secret: 'short' } } }, /at least 16 characters/],
      [{ ...base, triggers: { pollIntervalMs: 0 } }, /pollIntervalMs/],
      [{ ...base, limits: { concurrency: 0 } }, /limits\.concurrency/],
      [{ ...base, surprise: true }, /Unrecognized key/],
      ['{not json', /not valid JSON/],
    ];
    for (const [body, message] of cases) assertError(await api.post('/sync/rules', body), 400, 'UNSUPPORTED', message);
    assert.deepEqual(
      (await api.get('/sync/rules')).body.rules.map((r: any) => r.name),
      ['acme', 'beta'],
      'nothing was created',
    );
  });

  it('answers 409 for a taken name and 404 for an unknown rule', async () => {
    assertError(await api.post('/sync/rules', { name: 'acme', source: { url: source }, repositories: ['a/*'] }), 409, 'NAME_INVALID', /already exists/);
    assertError(await api.get('/sync/rules/nope'), 404, 'NAME_UNKNOWN', /no sync rule named "nope"/);
    assertError(await api.patch('/sync/rules/nope', { enabled: false }), 404, 'NAME_UNKNOWN');
    assertError(await api.delete('/sync/rules/nope'), 404, 'NAME_UNKNOWN');
    assertError(await api.post('/sync/rules/nope/run', {}), 404, 'NAME_UNKNOWN');
    assertError(await api.get('/sync/rules/nope/status'), 404, 'NAME_UNKNOWN');
  });

  it('updates merge one level deep: unnamed fields keep their values', async () => {
    const res = await api.patch('/sync/rules/acme', { tags: { exclude: ['*-rc*'] }, triggers: { pollIntervalMs: 600_000 }, limits: { concurrency: 2 } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const rule = res.body.rule;
    assert.deepEqual(rule.tags, { include: [], exclude: ['*-rc*'] });
    assert.equal(rule.triggers.pollIntervalMs, 600_000);
    assert.ok(rule.triggers.webhook, 'the webhook trigger stays');
    assert.deepEqual(rule.limits, { requestsPerSecond: 50, concurrency: 2 });
    assert.equal(rule.source.credentials.username, 'reader');
    assert.equal(res.body.webhook, null, 'the secret is unchanged and not shown');
    const moved = await api.patch('/sync/rules/acme', { source: { credentials: { kind: 'basic', username: 'reader', passwordEnv: 'VENDOR_PASSWORD' } } });
    assert.equal(moved.body.rule.source.url, source);
    assert.deepEqual(moved.body.rule.source.credentials, {
      kind: 'basic',
      username: 'reader',
      passwordSource: 'env',
      passwordFile: null,
      passwordEnv: 'VENDOR_PASSWORD',
    });
  });

  it('turns the webhook trigger off and on; a given secret is used and never echoed', async () => {
    const off = await api.patch('/sync/rules/beta', { triggers: { webhook: null } });
    assert.equal(off.body.rule.triggers.webhook, null);
    assertError(await deliver(server.url, 'beta', pushEvent('a/b', 'v1', digest), { secret: 'whatever-secret-1234' }), 401, 'UNAUTHORIZED');
    const on = await api.patch('/sync/rules/beta', { triggers: { webhook: { secret: 'a-secret-the-vendor-has-0001' } } });
    assert.equal(on.status, 200);
    assert.equal(on.body.webhook, null, 'a secret the caller gave is not echoed');
    const accepted = await deliver(server.url, 'beta', pushEvent('a/b', 'v1', digest), { secret: 'a-secret-the-vendor-has-0001' });
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
  });

  it('runs on demand: 202 with the request time; refused when disabled or not allowed', async () => {
    const run = await api.post('/sync/rules/beta/run', {});
    assert.equal(run.status, 202, JSON.stringify(run.body));
    assert.ok(Date.parse(run.body.requestedAt) > 0);
    const one = await api.post('/sync/rules/beta/run', { repository: 'a/b', tag: 'v1' });
    assert.equal(one.status, 202);
    assert.deepEqual(one.body.image, { repository: 'a/b', tag: 'v1' });
    assertError(await api.post('/sync/rules/beta/run', { repository: 'a/b' }), 400, 'UNSUPPORTED', /together/);
    assertError(await api.post('/sync/rules/beta/run', { repository: 'other/b', tag: 'v1' }), 400, 'UNSUPPORTED', /not selected/);
    await api.patch('/sync/rules/beta', { triggers: { onDemand: false } });
    assertError(await api.post('/sync/rules/beta/run', {}), 400, 'UNSUPPORTED', /does not allow on-demand runs/);
    await api.patch('/sync/rules/beta', { triggers: { onDemand: true }, enabled: false });
    assertError(await api.post('/sync/rules/beta/run', {}), 400, 'UNSUPPORTED', /disabled/);
  });

  it('needs an owner: 401 without a token, 403 for a principal that is not an owner', async () => {
    const anonymous = new Api(server.url, undefined);
    assertError(await anonymous.get('/sync/rules'), 401, 'UNAUTHORIZED');
    const created = await api.post('/principals', { kind: 'user', name: 'dev', grants: [{ pattern: '**', permission: 'push' }] });
    const dev = await Api.as(server.url, 'dev', created.body.secret.value);
    assertError(await dev.get('/sync/rules'), 403, 'DENIED');
    assertError(await dev.post('/sync/rules', { name: 'evil', source: { url: source }, repositories: ['a/*'] }), 403, 'DENIED');
  });

  it('records every change in the audit log, without secrets', async () => {
    const entries = (await api.get('/audit?limit=100')).body.entries as Array<{ event: string; detail: Record<string, unknown> }>;
    const events = entries.filter((e) => e.event.startsWith('admin.sync_rule.')).map((e) => e.event);
    assert.ok(events.includes('admin.sync_rule.created'));
    assert.ok(events.includes('admin.sync_rule.updated'));
    assert.ok(events.includes('admin.sync_rule.run'));
    const text = JSON.stringify(entries);
    assert.ok(!text.includes('vendor-password-1'));
    assert.ok(!text.includes('a-secret-the-vendor-has-0001'));
  });

  it('deletes a rule: 204, then it is unknown, and its receiver answers 401', async () => {
    const res = await api.delete('/sync/rules/beta');
    assert.equal(res.status, 204);
    assertError(await api.get('/sync/rules/beta'), 404, 'NAME_UNKNOWN');
    assertError(await deliver(server.url, 'beta', pushEvent('a/b', 'v1', digest), { secret: 'a-secret-the-vendor-has-0001' }), 401, 'UNAUTHORIZED');
  });
});

describe('the egress policy on sync sources', () => {
  let server: TestServer;
  let api: Api;

  before(async () => {
    server = await startBerth({ egress: false });
    api = await Api.asOwner(server.url);
  });
  after(async () => server?.stop());

  it('refuses a loopback source unless egress allows it (400 EGRESS_REFUSED naming the range)', async () => {
    const res = await api.post('/sync/rules', { name: 'local', source: { url: server.url }, repositories: ['a/*'] });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.errors[0].code, 'DENIED');
    assert.match(res.body.errors[0].message, /source\.url: refusing to connect to 127\.0\.0\.1: loopback addresses are not allowed by the egress policy/);
    assert.deepEqual((await api.get('/sync/rules')).body.rules, []);
    const moved = await api.post('/sync/rules', { name: 'public', source: { url: 'https://[::1]:5000' }, repositories: ['a/*'] });
    assert.equal(moved.status, 400);
    assert.match(moved.body.errors[0].message, /loopback/);
  });
});
