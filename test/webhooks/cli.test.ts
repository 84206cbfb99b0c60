import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { storeIdentityToken } from '../../src/client/docker-config.js';
import { verifyDelivery } from '../../src/shared/webhook-signature.js';
import { ownerName, ownerPassword, type TestServer } from '../support/server.js';
import { tokenFor } from '../auth/helpers.js';
import { failsWith, ok, runCli } from '../admin/helpers.js';
import { pushImage, Receiver, startWebhookServer, waitFor } from './helpers.js';

/** `berth webhook …` as real processes against a real server and a real receiver. */
describe('berth webhook', () => {
  let server: TestServer;
  let receiver: Receiver;
  let home = '';
  let env: NodeJS.ProcessEnv;
  let secret = '';
  const cli = (args: string[], stdin?: string) => runCli(['webhook', ...args], { env, ...(stdin !== undefined ? { stdin } : {}) });
  const forHook = () => receiver.received.filter((r) => r.path === '/cli');

  before(async () => {
    server = await startWebhookServer({ webhooks: { maxAttempts: 2 } });
    receiver = await Receiver.start();
    home = await mkdtemp(join(tmpdir(), 'berth-webhook-cli-'));
    const host = new URL(server.url).host;
    const refresh = String((await tokenFor(server.url, ownerName, ownerPassword, [], true))['refresh_token']);
    await storeIdentityToken(host, refresh, join(home, 'config.json'));
    env = { DOCKER_CONFIG: home, BERTH_REGISTRY: host };
  });
  after(async () => {
    await server.stop();
    await receiver.close();
    await rm(home, { recursive: true, force: true });
  });

  it('create prints the webhook and its secret once, with a warning', async () => {
    const result = ok(
      await cli([
        'create',
        'cli-hook',
        '--url',
        `${receiver.url}/cli`,
        '--filter',
        'cli/*',
        '--filter',
        '**:v*',
        '--header',
        'Authorization: Bearer abc',
        '--event',
        'push,delete',
      ]),
    );
    assert.match(result.stdout, /^created webhook cli-hook \(id [0-9a-f-]{36}\)$/m);
    assert.match(result.stdout, /^filters: {2}cli\/\* \*\*:v\*$/m);
    assert.match(result.stdout, /^headers: {2}Authorization$/m);
    assert.ok(!result.stdout.includes('Bearer abc'));
    secret = /^secret: (\S+)$/m.exec(result.stdout)?.[1] ?? '';
    assert.equal(secret.length, 43);
    assert.match(result.stderr, /^warning: the secret above is shown only once/);
  });

  it('list and show; --json gives the API view without secrets', async () => {
    const list = ok(await cli(['list']));
    assert.match(list.stdout, /^NAME\s+STATUS\s+EVENTS\s+FILTERS\s+FORMAT\s+URL$/m);
    assert.match(list.stdout, /^cli-hook\s+enabled\s+push,delete\s+cli\/\* \*\*:v\*\s+acr\s+http:\/\/127\.0\.0\.1:\d+\/cli$/m);
    const shown = JSON.parse(ok(await cli(['show', 'cli-hook', '--json'])).stdout);
    assert.equal(shown.name, 'cli-hook');
    assert.deepEqual(shown.headers, { Authorization: '<redacted>' });
    assert.ok(!JSON.stringify(shown).includes(secret));
  });

  it('ping waits for the first attempt; the receiver verifies it with the printed secret', async () => {
    const result = ok(await cli(['ping', 'cli-hook']));
    assert.match(result.stdout, /^sent ping event [0-9a-f-]{36} \(delivery [0-9a-f-]{36}\)$/m);
    assert.match(result.stdout, /^first attempt: ok: HTTP 200 in \d+ ms at /m);
    const ping = forHook().find((r) => r.json?.action === 'ping');
    assert.ok(ping);
    assert.equal(ping.headers['authorization'], 'Bearer abc');
    assert.equal(verifyDelivery([secret], String(ping.headers['berth-signature']), ping.body, Date.now()).ok, true);
  });

  it('deliveries lists the history; with an id it shows every attempt', async () => {
    const pushed = await pushImage(server.url, 'cli/app', 'latest');
    await waitFor('the push delivery', () => forHook().find((r) => r.json?.target?.digest === pushed.digest));
    const list = await waitFor('the delivery recorded', async () => {
      const result = ok(await cli(['deliveries', 'cli-hook']));
      return /push\s+cli\/app:latest\s+delivered/.test(result.stdout) ? result : undefined;
    });
    assert.match(list.stdout, /^DELIVERY\s+EVENT\s+ACTION\s+TARGET\s+STATUS\s+ATTEMPTS\s+LAST ATTEMPT$/m);
    assert.match(list.stdout, /ping\s+-\s+delivered\s+1\s+ok: HTTP 200/);
    const id = /^([0-9a-f-]{36})\s+\S+\s+push/m.exec(list.stdout)?.[1] ?? '';
    const detail = ok(await cli(['deliveries', 'cli-hook', id]));
    assert.match(detail.stdout, new RegExp(`^delivery: ${id}$`, 'm'));
    assert.match(detail.stdout, /^status: {3}delivered$/m);
    assert.match(detail.stdout, /^\s+0\s+1\s+\S+\s+ok HTTP 200\s+\d+ ms\s+ok$/m);
  });

  it('redeliver --failed sends every failed delivery again once the receiver works', async () => {
    receiver.mode = { kind: 'status', status: 500, body: 'broken' };
    const pushed = await pushImage(server.url, 'cli/app', 'v2');
    await waitFor('the failed delivery', async () => /cli\/app:v2\s+failed\s+2/.test(ok(await cli(['deliveries', 'cli-hook', '--status', 'failed'])).stdout));
    receiver.mode = { kind: 'ok' };
    const result = ok(await cli(['redeliver', 'cli-hook', '--failed']));
    assert.match(result.stdout, /^redelivering [0-9a-f-]{36} \(event [0-9a-f-]{36}, push cli\/app:v2\)$/m);
    await waitFor('the redelivery', async () => /cli\/app:v2\s+delivered\s+1\s+ok: HTTP 200/.test(ok(await cli(['deliveries', 'cli-hook'])).stdout));
    const sent = forHook().filter((r) => r.json?.target?.digest === pushed.digest);
    assert.equal(sent.length, 3, 'two failed attempts, then the redelivery');
    assert.equal(new Set(sent.map((r) => r.headers['berth-event-id'])).size, 1);
    const failed = ok(await cli(['deliveries', 'cli-hook', '--status', 'failed']));
    assert.equal(failed.stdout.trim(), 'no deliveries');
  });

  it('update changes only what is given; --rotate-secret prints the new secret once', async () => {
    const result = ok(await cli(['update', 'cli-hook', '--disable', '--rotate-secret', '--keep-old', '0s']));
    assert.match(result.stdout, /^status: {3}disabled$/m);
    assert.match(result.stdout, /^filters: {2}cli\/\* \*\*:v\*$/m);
    const rotated = /^secret: (\S+)$/m.exec(result.stdout)?.[1] ?? '';
    assert.ok(rotated.length === 43 && rotated !== secret);
    assert.match(result.stderr, /shown only once/);
    // Pings go even to a disabled webhook; now signed with the new secret only.
    const before = forHook().length;
    ok(await cli(['ping', 'cli-hook']));
    const ping = forHook()[before];
    assert.ok(ping);
    assert.equal(verifyDelivery([rotated], String(ping.headers['berth-signature']), ping.body, Date.now()).ok, true);
    assert.equal(verifyDelivery([secret], String(ping.headers['berth-signature']), ping.body, Date.now()).ok, false);
    const chosen = ok(await cli(['update', 'cli-hook', '--rotate-secret', '--secret-stdin', '--json'], 'my-chosen-secret-1234\n'));
    assert.equal(JSON.parse(chosen.stdout).secret, 'my-chosen-secret-1234');
  });

  it('says what is wrong in one line, exit 1', async () => {
    failsWith(await cli(['create', 'bad', '--url', `${receiver.url}/x`, '--filter', 'Upper/Case']), /filters\.0: .*not a repository pattern .*HTTP 400/);
    failsWith(await cli(['create', 'bad', '--url', `${receiver.url}/x`, '--header', 'no-colon']), /invalid header "no-colon": expected "Name: value"/);
    failsWith(await cli(['show', 'missing']), /no webhook with id or name "missing" \(HTTP 404 NAME_UNKNOWN\)/);
    failsWith(await cli(['update', 'cli-hook']), /nothing to change/);
    failsWith(await cli(['update', 'cli-hook', '--rotate-secret', '--keep-old', 'forever']), /invalid --keep-old "forever"/);
    failsWith(await cli(['redeliver', 'cli-hook']), /which deliveries\?/);
    failsWith(await cli(['create', 'cli-hook', '--url', `${receiver.url}/x`]), /already exists \(HTTP 409 NAME_INVALID\)/);
    failsWith(
      await runCli(['webhook', 'list'], { env: { DOCKER_CONFIG: join(home, 'nobody'), BERTH_REGISTRY: new URL(server.url).host } }),
      /not logged in to/,
    );
  });

  it('delete removes the webhook', async () => {
    assert.match(ok(await cli(['delete', 'cli-hook'])).stdout, /^deleted webhook cli-hook with its delivery history$/m);
    assert.equal(ok(await cli(['list'])).stdout.trim(), 'no webhooks');
  });
});
