/**
 * The audit log as operators read it, and the logs: registry pushes, deletes and (as configured)
 * pulls are audited with their repository; `GET /api/v1/audit` and `berth audit` filter by
 * principal, repository, event or prefix and time range, page by page; every response carries a
 * request id that is also on the request's log lines; the log level changes at run time through the
 * management API (owners only, audited).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { urls } from '../../src/api/urls.js';
import { bearer, tokenFor } from '../auth/helpers.js';
import { Api, ok, runCli } from '../admin/helpers.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';
import { pullSmallImage, pushSmallImage } from './helpers.js';

type Entry = { id: number; at: string; event: string; principalName: string | null; repository: string | null; detail: any };

describe('the audit log of registry changes, and its filters', () => {
  let server: TestServer;
  let owner: Api;
  let pushed: { digest: string };

  before(async () => {
    server = await startTestServer({ auth: true, config: { audit: { pulls: 'full' } } });
    owner = await Api.asOwner(server.url);
    const token = String(
      (await tokenFor(server.url, ownerName, ownerPassword, ['repository:audited/app:pull,push,delete', 'repository:other/app:pull,push']))['token'],
    );
    pushed = await pushSmallImage(server.url, token, 'audited/app', 'v1');
    await pushSmallImage(server.url, token, 'other/app', 'v1');
    await pullSmallImage(server.url, token, 'audited/app', 'v1');
    const deleted = await fetch(`${server.url}${urls.manifest('audited/app', 'v1')}`, { method: 'DELETE', headers: bearer(token) });
    assert.equal(deleted.status, 202);
  });
  after(async () => server?.stop());

  const audit = async (query: string): Promise<{ entries: Entry[]; next: number | null }> => {
    const res = await owner.get(`/audit?${query}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  };

  it('records pushes, pulls and deletes with the repository, the principal and what was pushed', async () => {
    const { entries } = await audit('repository=audited/app&limit=50');
    assert.deepEqual(
      entries.map((e) => e.event),
      ['registry.delete', 'registry.pull', 'registry.push'],
      'newest first, only this repository',
    );
    const push = entries.find((e) => e.event === 'registry.push') as Entry;
    assert.equal(push.principalName, ownerName);
    assert.equal(push.repository, 'audited/app');
    assert.equal(push.detail.reference, 'v1');
    assert.equal(push.detail.digest, pushed.digest);
    assert.match(push.detail.requestId, /^[0-9a-f-]{36}$/);
  });

  it('filters by event, event prefix, principal and time range, and pages with next', async () => {
    assert.ok((await audit('event=registry.push')).entries.every((e) => e.event === 'registry.push'));
    const registry = (await audit('event=registry.&limit=1000')).entries;
    assert.equal(registry.length, 4, 'two pushes, a pull and a delete, and nothing else under registry.');
    assert.ok(registry.every((e) => e.event.startsWith('registry.')));
    assert.ok((await audit(`principal=${ownerName}&limit=1000`)).entries.every((e) => e.principalName === ownerName));
    const newest = registry[0] as Entry;
    const since = (await audit(`since=${encodeURIComponent(newest.at)}&event=registry.`)).entries;
    assert.ok(since.length >= 1 && since.every((e) => e.at >= newest.at));
    assert.deepEqual((await audit(`until=${encodeURIComponent('2000-01-01T00:00:00Z')}`)).entries, []);
    const first = await audit('event=registry.&limit=2');
    assert.equal(first.entries.length, 2);
    assert.equal(first.next, first.entries[1]?.id);
    const second = await audit(`event=registry.&limit=2&before=${first.next}`);
    assert.ok(second.entries.every((e) => e.id < (first.next as number)));
    assert.deepEqual(
      [...first.entries, ...second.entries].map((e) => e.id),
      registry.slice(0, 4).map((e) => e.id),
    );
  });

  it('refuses malformed filters with 400', async () => {
    for (const query of ['event=Admin*', 'since=yesterday', 'before=0', 'limit=1001', 'colour=blue']) {
      const res = await owner.get(`/audit?${query}`);
      assert.equal(res.status, 400, `${query}: ${JSON.stringify(res.body)}`);
    }
  });

  it('berth audit filters the same way', async () => {
    const home = await mkdtemp(join(tmpdir(), 'berth-audit-cli-'));
    try {
      const env = { DOCKER_CONFIG: home, BERTH_REGISTRY: new URL(server.url).host };
      const args = ['audit', '--repository', 'audited/app', '--event', 'registry.', '--json', '--username', ownerName, '--password-stdin'];
      const result = JSON.parse(ok(await runCli(args, { env, stdin: `${ownerPassword}\n` })).stdout) as { entries: Entry[] };
      assert.deepEqual(
        result.entries.map((e) => e.event),
        ['registry.delete', 'registry.pull', 'registry.push'],
      );
      const table = ok(
        await runCli(['audit', '--event', 'registry.push', '--limit', '1', '--username', ownerName, '--password-stdin'], { env, stdin: `${ownerPassword}\n` }),
      );
      assert.match(table.stdout, /^TIME\s+EVENT\s+PRINCIPAL\s+ADDRESS\s+REPOSITORY\s+DETAIL$/m);
      assert.match(table.stdout, /registry\.push\s+owner\s+\S+\s+other\/app/);
      assert.match(table.stdout, /\(more: --before \d+, or --all\)/);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});

describe('pulls are not audited unless configured', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ auth: true });
  });
  after(async () => server?.stop());

  it('records the push, not the pulls (audit.pulls: off, the default)', async () => {
    const token = String((await tokenFor(server.url, ownerName, ownerPassword, ['repository:quiet/app:pull,push']))['token']);
    await pushSmallImage(server.url, token, 'quiet/app', 'v1');
    for (let i = 0; i < 3; i++) await pullSmallImage(server.url, token, 'quiet/app', 'v1');
    const owner = await Api.asOwner(server.url);
    const events = ((await owner.get('/audit?repository=quiet/app')).body.entries as Entry[]).map((e) => e.event);
    assert.deepEqual(events, ['registry.push']);
  });
});

describe('request ids and the run-time log level', () => {
  const lines: string[] = [];
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ auth: true, logLines: lines });
  });
  after(async () => server?.stop());

  const logged = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);

  it('answers with X-Request-Id, keeps a well-formed incoming one, and logs the request under it', async () => {
    const fresh = await fetch(`${server.url}/v2/`);
    const id = fresh.headers.get('x-request-id') ?? '';
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const kept = await fetch(`${server.url}/v2/`, { headers: { 'X-Request-Id': 'proxy-abc.123' } });
    assert.equal(kept.headers.get('x-request-id'), 'proxy-abc.123');
    const replaced = await fetch(`${server.url}/v2/`, { headers: { 'X-Request-Id': 'bad id with spaces' } });
    assert.notEqual(replaced.headers.get('x-request-id'), 'bad id with spaces');
    const notFound = await fetch(`${server.url}/nowhere`, { headers: { 'X-Request-Id': 'trace-me-1' } });
    assert.equal(notFound.status, 404);
    assert.equal(notFound.headers.get('x-request-id'), 'trace-me-1', 'errors carry it too');
    const line = logged().find((entry) => entry['requestId'] === 'trace-me-1');
    assert.ok(line, 'the request is logged with its id');
    assert.equal(line['route'], 'unmatched');
    assert.equal(line['status'], 404);
    assert.ok(!logged().some((entry) => entry['route'] === 'healthz'), 'probes are not logged');
    await fetch(`${server.url}/healthz`);
    assert.ok(!logged().some((entry) => entry['route'] === 'healthz'), 'probes are not logged');
  });

  it('changes the log level at run time: owners only, audited', async () => {
    const owner = await Api.asOwner(server.url);
    assert.deepEqual((await owner.get('/settings/log-level')).body, { level: 'debug' });
    assert.equal((await owner.put('/settings/log-level', { level: 'loud' })).status, 400);
    const puller = await server.app.auth.principals.createPrincipal('user', 'puller', {
      grants: [{ pattern: '**', permission: 'pull' }],
      secret: 'puller-password-1',
    });
    const notOwner = await Api.as(server.url, puller.principal.name, 'puller-password-1');
    assert.equal((await notOwner.put('/settings/log-level', { level: 'info' })).status, 403);
    assert.deepEqual((await owner.put('/settings/log-level', { level: 'info' })).body, { previous: 'debug', level: 'info' });
    const before = lines.length;
    await fetch(`${server.url}/v2/`, { headers: { 'X-Request-Id': 'quiet-now' } });
    assert.ok(!lines.slice(before).some((line) => line.includes('quiet-now')), 'no debug request lines at info');
    const changed = (await owner.get('/audit?event=admin.log_level.changed')).body.entries as Entry[];
    assert.equal(changed.length, 1);
    assert.deepEqual(changed[0]?.detail, { previous: 'debug', level: 'info' });
    assert.equal(changed[0]?.principalName, ownerName);
    await owner.put('/settings/log-level', { level: 'debug' });
    await fetch(`${server.url}/v2/`, { headers: { 'X-Request-Id': 'loud-again' } });
    assert.ok(logged().some((entry) => entry['requestId'] === 'loud-again'));
  });
});
