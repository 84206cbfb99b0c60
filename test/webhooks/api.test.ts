import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestServer } from '../support/server.js';
import { Api, assertError } from '../admin/helpers.js';
import { startWebhookServer } from './helpers.js';

/** /api/v1/webhooks: managing subscriptions, and everything it refuses. */
describe('/api/v1/webhooks', () => {
  let server: TestServer;
  let owner: Api;

  before(async () => {
    server = await startWebhookServer();
    owner = await Api.asOwner(server.url);
  });
  after(() => server.stop());

  describe('create, show, list, update, delete', () => {
    it('creates with defaults and shows the generated secret only in that response', async () => {
      const res = await owner.post('/webhooks', { name: 'vendor-sync', url: 'http://127.0.0.1:9/hook' });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const { webhook, secret } = res.body;
      assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
      assert.match(webhook.id, /^[0-9a-f-]{36}$/);
      assert.equal(webhook.name, 'vendor-sync');
      assert.deepEqual(webhook.events, ['push', 'delete']);
      assert.deepEqual(webhook.filters, []);
      assert.deepEqual(webhook.headers, {});
      assert.equal(webhook.format, 'acr');
      assert.equal(webhook.enabled, true);
      assert.equal(webhook.previousSecretUntil, null);
      const shown = await owner.get('/webhooks/vendor-sync');
      assert.equal(shown.status, 200);
      assert.deepEqual(shown.body, webhook);
      assert.ok(!JSON.stringify(shown.body).includes(secret));
      assert.deepEqual((await owner.get(`/webhooks/${webhook.id}`)).body, webhook);
    });

    it('never shows header values, the URL password or query values again', async () => {
      const res = await owner.post('/webhooks', {
        name: 'logic-app',
        url: 'http://user:pass@127.0.0.1:9/workflows/x/triggers/manual?api-version=2016-06-01&sig=SECRETSIG',
        headers: { Authorization: 'Bearer top-secret', 'X-Api-Key': 'k-123' },
        filters: ['tripinsights/*', '**:v*'],
        events: ['push', 'push'],
        format: 'cloudevents',
        secret: 'a-chosen-secret-of-24ch',
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.secret, 'a-chosen-secret-of-24ch');
      const text = JSON.stringify((await owner.get('/webhooks')).body);
      for (const hidden of ['top-secret', 'k-123', 'SECRETSIG', ':pass@', '2016-06-01', 'a-chosen-secret'])
        assert.ok(!text.includes(hidden), `${hidden} leaked: ${text}`);
      const view = res.body.webhook;
      assert.deepEqual(view.headers, { Authorization: '<redacted>', 'X-Api-Key': '<redacted>' });
      assert.equal(view.url, 'http://user:redacted@127.0.0.1:9/workflows/x/triggers/manual?api-version=<redacted>&sig=<redacted>');
      assert.deepEqual(view.events, ['push']);
      assert.deepEqual(view.filters, ['tripinsights/*', '**:v*']);
      const audit = JSON.stringify((await owner.get('/audit?limit=5')).body);
      assert.match(audit, /admin\.webhook\.created/);
      for (const hidden of ['top-secret', 'k-123', 'SECRETSIG', 'a-chosen-secret']) assert.ok(!audit.includes(hidden), `${hidden} in audit log`);
    });

    it('lists by name; updates only what is given; renames; deletes', async () => {
      await owner.post('/webhooks', { name: 'a-first', url: 'http://127.0.0.1:9/a' });
      const names = (await owner.get('/webhooks')).body.webhooks.map((w: { name: string }) => w.name);
      assert.deepEqual(names, [...names].sort());
      assert.ok(names.includes('a-first'));

      const patched = await owner.patch('/webhooks/a-first', { enabled: false, filters: ['app:v*'] });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
      assert.equal(patched.body.enabled, false);
      assert.deepEqual(patched.body.filters, ['app:v*']);
      assert.equal(patched.body.url, 'http://127.0.0.1:9/a');
      assert.deepEqual(patched.body.events, ['push', 'delete']);

      const renamed = await owner.patch('/webhooks/a-first', { name: 'a-renamed', headers: { 'X-One': '1' } });
      assert.equal(renamed.body.name, 'a-renamed');
      assert.deepEqual(renamed.body.headers, { 'X-One': '<redacted>' });
      assertError(await owner.get('/webhooks/a-first'), 404, 'NAME_UNKNOWN', /no webhook/);
      assertError(await owner.patch('/webhooks/a-renamed', { name: 'vendor-sync' }), 409, 'NAME_INVALID', /already exists/);

      assert.equal((await owner.delete('/webhooks/a-renamed')).status, 204);
      assertError(await owner.get('/webhooks/a-renamed'), 404, 'NAME_UNKNOWN');
      assertError(await owner.delete('/webhooks/a-renamed'), 404, 'NAME_UNKNOWN');
    });

    it('refuses a second webhook with the same name', async () => {
      assertError(await owner.post('/webhooks', { name: 'vendor-sync', url: 'http://127.0.0.1:9/other' }), 409, 'NAME_INVALID', /already exists/);
    });

    it('rotates the secret, showing the new one once; the old one keeps signing for the overlap', async () => {
      const created = (await owner.post('/webhooks', { name: 'rotating', url: 'http://127.0.0.1:9/r' })).body;
      const rotated = await owner.post('/webhooks/rotating/secret', {});
      assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
      assert.notEqual(rotated.body.secret, created.secret);
      assert.ok(Date.parse(rotated.body.webhook.previousSecretUntil) > Date.now() + 23 * 3600 * 1000);
      const again = await owner.post('/webhooks/rotating/secret', { secret: 'my-own-new-secret-value', overlapMs: 0 });
      assert.equal(again.body.secret, 'my-own-new-secret-value');
      assert.equal(again.body.webhook.previousSecretUntil, null);
    });
  });

  describe('SSRF: targets the egress policy refuses', () => {
    let strict: TestServer;
    let strictOwner: Api;
    before(async () => {
      strict = await startWebhookServer({ egress: { allow: [] } });
      strictOwner = await Api.asOwner(strict.url);
    });
    after(() => strict.stop());

    const refused: Array<[string, RegExp]> = [
      ['http://127.0.0.1:8080/hook', /loopback/],
      ['http://[::1]:8080/hook', /loopback/],
      ['http://localhost:8080/hook', /loopback/],
      ['http://10.1.2.3/hook', /private/],
      ['http://192.168.0.10/hook', /private/],
      ['http://169.254.169.254/latest/meta-data', /linkLocal/],
      ['http://[::ffff:127.0.0.1]/hook', /loopback/],
      ['http://0.0.0.0/hook', /unspecified/],
    ];
    for (const [url, range] of refused) {
      it(`refuses ${url} naming the range and the setting that would allow it`, async () => {
        const res = await strictOwner.post('/webhooks', { name: 'probe', url });
        assertError(res, 400, 'UNSUPPORTED', range);
        assert.match(res.body.errors[0].message, /^url: .*egress/);
      });
    }

    it('refuses the same on update, and creates nothing', async () => {
      const res = await strictOwner.post('/webhooks', { name: 'probe', url: 'http://127.0.0.1:8080/hook' });
      assert.equal(res.status, 400);
      assert.deepEqual((await strictOwner.get('/webhooks')).body.webhooks, []);
    });
  });

  describe('bad input', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ url: 'http://127.0.0.1:9/x' }, /name: Required/],
      [{ name: 'x' }, /url: Required/],
      [{ name: '-x', url: 'http://127.0.0.1:9/x' }, /name: a webhook name is 1-64/],
      [{ name: 'a/b', url: 'http://127.0.0.1:9/x' }, /name: a webhook name/],
      [{ name: 'x', url: 'not a url' }, /url: expected an http or https URL/],
      [{ name: 'x', url: 'ftp://127.0.0.1/x' }, /url: expected an http or https URL/],
      [{ name: 'x', url: 'file:///etc/passwd' }, /url: expected an http or https URL/],
      [{ name: 'x', url: `http://127.0.0.1:9/${'a'.repeat(2100)}` }, /url: a URL is at most 2048/],
      [{ name: 'x', url: 'http://127.0.0.1:9/x', events: [] }, /events: list at least one/],
      [{ name: 'x', url: 'http://127.0.0.1:9/x', events: ['pull'] }, /events\.0: Invalid enum value/],
      [{ name: 'x', url: 'http://127.0.0.1:9/x', filters: ['Team/App'] }, /filters\.0: .*not a repository pattern/],
      [{ name: 'x', url: 'http://127.0.0.1:9/x', filters: ['app:'] }, /filters\.0: .*not a tag glob/],
      [{ name: 'x', url: 'http://127.0.0.1:9/x', filters: 'app' }, /filters: Expected array/],
      [{ name: 'x', url: 'http://127.0.0.1:9/x', headers: { 'Bad Name': 'v' } }, /headers\.Bad Name: a header name/],
      [{ name: 'x', url: 'http://127.0.0.1:9/x', headers: { 'X-A': 'line\r\nInjected: yes' } }, /headers\.X-A: a header value is printable ASCII on one line/],
      [{ name: 'x', url: 'http://127.0.0.1:9/x', headers: { 'Content-Type': 'text/plain' } }, /content-type header is set by Berth/],
      [{ name: 'x', url: 'http://127.0.0.1:9/x', headers: { 'Berth-Signature': 'x' } }, /berth-signature header is set by Berth/],
      [{ name: 'x', url: 'http://127.0.0.1:9/x', headers: { 'x-a': '1', 'X-A': '2' } }, /given twice/],
      [{ name: 'x', url: 'http://127.0.0.1:9/x', secret: 'short' }, /secret: a secret is at least 16/],
      [{ name: 'x', url: 'http://127.0.0.1:9/x', secret: 'has spaces in the secret' }, /secret: a secret is printable ASCII without spaces/],
      [{ name: 'x', url: 'http://127.0.0.1:9/x', format: 'xml' }, /format: Invalid enum value/],
      [{ name: 'x', url: 'http://127.0.0.1:9/x', enabled: 'yes' }, /enabled: Expected boolean/],
      [{ name: 'x', url: 'http://127.0.0.1:9/x', colour: 'blue' }, /Unrecognized key/],
      ['{"name": "x", ', /not valid JSON/],
      [[1, 2], /Expected object/],
    ];
    for (const [body, message] of cases) {
      it(`refuses ${JSON.stringify(body).slice(0, 90)} with 400 and says why`, async () => {
        assertError(await owner.post('/webhooks', body), 400, 'UNSUPPORTED', message);
      });
    }

    it('refuses bad updates, rotations, delivery queries and unknown deliveries, and changes nothing', async () => {
      const before = (await owner.get('/webhooks/vendor-sync')).body;
      assertError(await owner.patch('/webhooks/vendor-sync', { secret: 'x'.repeat(20) }), 400, 'UNSUPPORTED', /Unrecognized key/);
      assertError(await owner.patch('/webhooks/vendor-sync', { url: 'gopher://x' }), 400, 'UNSUPPORTED', /url: expected/);
      assertError(await owner.patch('/webhooks/vendor-sync', { events: ['push'], filters: ['UPPER'] }), 400, 'UNSUPPORTED', /filters\.0/);
      assertError(await owner.post('/webhooks/vendor-sync/secret', { overlapMs: -1 }), 400, 'UNSUPPORTED', /overlapMs/);
      assertError(await owner.post('/webhooks/vendor-sync/ping', { extra: 1 }), 400, 'UNSUPPORTED', /Unrecognized key/);
      assertError(await owner.get('/webhooks/vendor-sync/deliveries?status=lost'), 400, 'UNSUPPORTED', /status must be one of/);
      assertError(await owner.get('/webhooks/vendor-sync/deliveries?limit=0'), 400, 'UNSUPPORTED', /limit must be/);
      assertError(await owner.get('/webhooks/vendor-sync/deliveries?limit=abc'), 400, 'UNSUPPORTED', /limit must be/);
      assertError(await owner.get('/webhooks/vendor-sync/deliveries/nope'), 404, 'NAME_UNKNOWN', /no delivery "nope"/);
      assertError(await owner.post('/webhooks/vendor-sync/deliveries/nope/redeliver'), 404, 'NAME_UNKNOWN', /no delivery/);
      assertError(await owner.post('/webhooks/missing/ping'), 404, 'NAME_UNKNOWN', /no webhook/);
      assertError(await owner.post('/webhooks', 'x'.repeat(70 * 1024)), 413, 'SIZE_INVALID');
      assert.deepEqual((await owner.get('/webhooks/vendor-sync')).body, before);
    });
  });

  describe('who may call it', () => {
    it('needs a token: 401 without one', async () => {
      assertError(await new Api(server.url, undefined).get('/webhooks'), 401, 'UNAUTHORIZED');
    });

    it('needs an owner: 403 for a principal with push rights only', async () => {
      const created = await owner.post('/principals', { kind: 'user', name: 'pusher', grants: [{ pattern: '**', permission: 'push' }] });
      assert.equal(created.status, 201);
      const pusher = await Api.as(server.url, 'pusher', created.body.secret.value);
      for (const [method, path] of [
        ['GET', '/webhooks'],
        ['POST', '/webhooks'],
        ['GET', '/webhooks/vendor-sync'],
        ['PATCH', '/webhooks/vendor-sync'],
        ['DELETE', '/webhooks/vendor-sync'],
        ['POST', '/webhooks/vendor-sync/ping'],
        ['GET', '/webhooks/vendor-sync/deliveries'],
      ] as const) {
        assertError(await pusher.call(method, path, method === 'GET' ? undefined : {}), 403, 'DENIED');
      }
    });
  });
});
