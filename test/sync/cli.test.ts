import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { storeIdentityToken } from '../../src/client/docker-config.js';
import { tokenFor } from '../auth/helpers.js';
import { failsWith, ok, runCli } from '../admin/helpers.js';
import { ownerName, ownerPassword, type TestServer } from '../support/server.js';
import { Api, buildMultiArchImage, headDigest, pullToken, pushImage, pushToken, startBerth, waitFor, type BuiltImage } from './helpers.js';

/** `berth sync …` as real processes against a real customer Berth syncing from a real vendor Berth. */
describe('berth sync', () => {
  let vendor: TestServer;
  let customer: TestServer;
  let image: BuiltImage;
  let home = '';
  let passwordFile = '';
  let env: NodeJS.ProcessEnv = {};

  const berth = (args: string[]) => runCli(args, { env });

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'berth-sync-cli-'));
    // The password file is in the directory the customer's operator lets rules read from.
    [vendor, customer] = await Promise.all([startBerth(), startBerth({ secrets: { fileDir: home } })]);
    image = await buildMultiArchImage('cli');
    const host = new URL(customer.url).host;
    const refresh = String((await tokenFor(customer.url, ownerName, ownerPassword, [], true))['refresh_token']);
    await storeIdentityToken(host, refresh, join(home, 'docker', 'config.json'));
    env = { DOCKER_CONFIG: join(home, 'docker'), BERTH_REGISTRY: host };
    const token = await (
      await Api.asOwner(vendor.url)
    ).post('/principals', { kind: 'token', name: 'customer-cli', grants: [{ pattern: 'tripinsights/**', permission: 'pull' }] });
    passwordFile = join(home, 'vendor-password');
    await writeFile(passwordFile, `${token.body.secret.value}\n`);
  });

  after(async () => {
    await Promise.all([vendor?.stop(), customer?.stop()]);
    await image?.dispose();
    await rm(home, { recursive: true, force: true });
  });

  it('rule create prints the rule, its webhook URL and the generated secret once', async () => {
    const result = ok(
      await berth([
        'sync',
        'rule',
        'create',
        'vendor',
        '--source',
        vendor.url,
        '--source-username',
        'customer-cli',
        '--source-password-file',
        passwordFile,
        '--repository',
        'tripinsights/api', // named: this vendor credential may not read the catalog
        '--include',
        'v*',
        '--prefix',
        'vendor',
        '--webhook',
      ]),
    );
    assert.match(result.stdout, new RegExp(`^created sync rule vendor: ${vendor.url} tripinsights/api \\[\\+v\\*\\] -> vendor/; webhook, on demand$`, 'm'));
    assert.match(result.stdout, new RegExp(`^webhook URL: +${customer.url}/api/v1/sync/rules/vendor/webhook$`, 'm'));
    assert.match(result.stdout, /^webhook secret: [A-Za-z0-9_-]{43}$/m);
    assert.match(result.stderr, /shown only once/);
  });

  it('run syncs what the source has now, printing each image, and a second run copies nothing', async () => {
    // A new rule backfills in the background; the image is pushed after that, so only the run copies it.
    const api = await Api.asOwner(customer.url);
    await waitFor('the rule’s backfill', async () => {
      const status = (await api.get('/sync/rules/vendor/status')).body;
      return status.rule.state.backfilledAt !== null && !status.rule.state.reconciling && status.queue.pending === 0 ? true : undefined;
    });
    await pushImage(vendor.url, await pushToken(vendor.url, 'tripinsights/api'), 'tripinsights/api', 'v1', image.dir, image.index.index);
    const first = ok(await berth(['sync', 'run', 'vendor']));
    assert.match(first.stdout, /^syncing vendor: /m);
    assert.match(first.stdout, /^ {2}copied tripinsights\/api:v1 -> vendor\/tripinsights\/api:v1 \(sha256:/m);
    assert.match(first.stdout, /^done: 1 checked, 1 copied, 0 failed$/m);
    const token = await pullToken(customer.url, 'vendor/tripinsights/api');
    assert.equal(await headDigest(customer.url, token, 'vendor/tripinsights/api', 'v1'), image.index.index.digest);

    const second = ok(await berth(['sync', 'run', 'vendor']));
    assert.doesNotMatch(second.stdout, /copied tripinsights/);
    assert.match(second.stdout, /^done: 1 checked, 0 copied, 0 failed$/m);

    const one = ok(await berth(['sync', 'run', 'vendor', '--image', 'tripinsights/api:v1']));
    assert.match(one.stdout, /^done: 1 checked, 0 copied, 0 failed$/m);
  });

  it("status shows the rule and a row per image; --json the API's document", async () => {
    const table = ok(await berth(['sync', 'status', 'vendor']));
    assert.match(table.stdout, /^rule vendor \(enabled\): /m);
    assert.match(table.stdout, /^ {2}backfilled: +\d{4}-/m);
    assert.match(table.stdout, /^ {2}queue: +0 pending, 0 running, 0 retrying$/m);
    assert.match(table.stdout, /^IMAGE +DESTINATION +DIGEST +LAST SYNC +LAST CHECKED +COPIES +LAST ERROR$/m);
    assert.match(table.stdout, /^tripinsights\/api:v1 +vendor\/tripinsights\/api:v1 +sha256:[0-9a-f]{12}… +\S+ +\S+ +1 +-$/m);
    const json = JSON.parse(ok(await berth(['sync', 'status', 'vendor', '--json'])).stdout) as { images: Array<{ copies: number; digest: string }> };
    assert.equal(json.images[0]?.copies, 1);
    assert.equal(json.images[0]?.digest, image.index.index.digest);
  });

  it('rule list, show and update', async () => {
    const list = ok(await berth(['sync', 'rule', 'list']));
    assert.match(list.stdout, /^NAME +STATUS +SOURCE +REPOSITORIES +DESTINATION +TRIGGERS +LAST SYNC +LAST ERROR$/m);
    assert.match(list.stdout, /^vendor +enabled +http:\/\/127\.0\.0\.1:\d+ +tripinsights\/api +vendor\/… +webhook, on demand +\d{4}-\S+ +-$/m);
    const show = ok(await berth(['sync', 'rule', 'show', 'vendor']));
    assert.match(
      show.stdout,
      new RegExp(`^source: +${vendor.url} \\(basic: customer-cli, password from file ${passwordFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)$`, 'm'),
    );
    assert.doesNotMatch(show.stdout, /secret: /);

    const updated = ok(await berth(['sync', 'rule', 'update', 'vendor', '--exclude', '*-rc*', '--poll', '1h', '--rps', '5']));
    assert.match(updated.stdout, /^updated sync rule vendor: .* \[\+v\* -\*-rc\*\] -> vendor\/; webhook, poll 1h, on demand$/m);
    assert.doesNotMatch(updated.stdout, /webhook secret/);
    const rotated = ok(await berth(['sync', 'rule', 'update', 'vendor', '--rotate-webhook-secret']));
    assert.match(rotated.stdout, /^webhook secret: [A-Za-z0-9_-]{43}$/m);
    assert.match(rotated.stderr, /shown only once/);
    const rule = JSON.parse(ok(await berth(['sync', 'rule', 'show', 'vendor', '--json'])).stdout) as {
      limits: { requestsPerSecond: number };
      triggers: { pollIntervalMs: number };
    };
    assert.equal(rule.limits.requestsPerSecond, 5);
    assert.equal(rule.triggers.pollIntervalMs, 3_600_000);
    ok(await berth(['sync', 'rule', 'update', 'vendor', '--no-poll', '--clear-exclude']));
    const after = JSON.parse(ok(await berth(['sync', 'rule', 'show', 'vendor', '--json'])).stdout) as {
      tags: { exclude: string[] };
      triggers: { pollIntervalMs: number | null };
    };
    assert.deepEqual(after.tags.exclude, []);
    assert.equal(after.triggers.pollIntervalMs, null);
  });

  it('run exits 1 with the reason when the source cannot be used', async () => {
    ok(
      await berth([
        'sync',
        'rule',
        'create',
        'broken',
        '--source',
        vendor.url,
        '--source-username',
        'customer-cli',
        '--source-password-file',
        join(home, 'missing'),
        '--repository',
        'tripinsights/api',
      ]),
    );
    // The reason (ENOENT here) is only logged: an answer never tells whether a file exists.
    failsWith(
      await berth(['sync', 'run', 'broken']),
      /^berth: the sync of broken had errors: source\.credentials\.passwordFile ".*missing": there is no readable file of that name in secrets\.fileDir/m,
    );
  });

  it('fails with one line that says what to do', async () => {
    failsWith(await berth(['sync', 'rule', 'create', 'x', '--repository', 'a/*']), /--source URL is required/);
    failsWith(await berth(['sync', 'rule', 'create', 'x', '--source', vendor.url]), /at least one --repository GLOB is required/);
    failsWith(
      await berth(['sync', 'rule', 'create', 'x', '--source', vendor.url, '--repository', 'a/*', '--source-username', 'u']),
      /needs one of --source-password-file/,
    );
    failsWith(
      await berth(['sync', 'rule', 'create', 'x', '--source', vendor.url, '--repository', 'a/*', '--include', 'regex:(']),
      /tags\.include\.0: invalid regular expression "\(": missing closing \) \(RE2 syntax: no backreferences or lookaround\) \(HTTP 400 UNSUPPORTED\)/,
    );
    failsWith(await berth(['sync', 'rule', 'update', 'vendor']), /nothing to change/);
    failsWith(await berth(['sync', 'status', 'nope']), /no sync rule named "nope" \(HTTP 404 NAME_UNKNOWN\)/);
    failsWith(await berth(['sync', 'run', 'vendor', '--image', 'no-tag']), /--image takes REPOSITORY:TAG/);
    failsWith(
      await runCli(['sync', 'rule', 'list'], { env: { DOCKER_CONFIG: join(home, 'nobody'), BERTH_REGISTRY: new URL(customer.url).host } }),
      /not logged in to .*berth login/,
    );
  });

  it('rule delete removes the rule; the copied images stay', async () => {
    const result = ok(await berth(['sync', 'rule', 'delete', 'vendor']));
    assert.match(result.stdout, /^deleted sync rule vendor \(images already copied stay\)$/m);
    failsWith(await berth(['sync', 'rule', 'show', 'vendor']), /no sync rule named "vendor"/);
    const token = await pullToken(customer.url, 'vendor/tripinsights/api');
    assert.equal(await headDigest(customer.url, token, 'vendor/tripinsights/api', 'v1'), image.index.index.digest);
  });
});
