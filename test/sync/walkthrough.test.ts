/**
 * docs/sync.md's walkthrough as real processes: two `berth serve` (vendor and customer), set up
 * only with the berth CLI commands the document gives. Then the customer is stopped while the
 * vendor keeps pushing: the vendor's durable webhook retries until the customer is back on the
 * same address, and the customer syncs what it missed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { storeIdentityToken } from '../../src/client/docker-config.js';
import { tokenFor } from '../auth/helpers.js';
import { ok, runCli } from '../admin/helpers.js';
import { BERTH_SOURCE_CLI, startBerth as startProcess, type BerthProcess } from '../support/berth-process.js';
import { findFreePort } from '../support/reference-registry.js';
import { ownerName, ownerPassword } from '../support/server.js';
import { buildMultiArchImage, headDigest, loopbackEgress, pullToken, pushImage, pushToken, waitFor, type BuiltImage } from './helpers.js';

describe('the vendor -> customer walkthrough with berth serve and the berth CLI', () => {
  let dir = '';
  let vendor: BerthProcess;
  let customer: BerthProcess | undefined;
  let customerPort = 0;
  let image: BuiltImage;
  let later: BuiltImage;
  let env: NodeJS.ProcessEnv = {};

  const serve = (name: string, port: number): Promise<BerthProcess> =>
    startProcess({
      auth: true,
      dataDir: join(dir, name),
      cliPath: BERTH_SOURCE_CLI,
      nodeArgs: ['--import', 'tsx'],
      args: ['--config', join(dir, 'berth.json'), '--addr', `127.0.0.1:${port}`],
      env: { BERTH_BOOTSTRAP_USER: ownerName, BERTH_BOOTSTRAP_PASSWORD: ownerPassword },
    });

  const login = async (server: BerthProcess) => {
    const refresh = String((await tokenFor(server.url, ownerName, ownerPassword, [], true))['refresh_token']);
    await storeIdentityToken(server.host, refresh, join(dir, 'docker', 'config.json'));
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-sync-walkthrough-'));
    await writeFile(
      join(dir, 'berth.json'),
      JSON.stringify({
        egress: loopbackEgress,
        webhooks: { pollIntervalMs: 200, maxAttempts: 100, backoff: { baseMs: 300, maxMs: 1000 } },
        sync: { workerIntervalMs: 200, retry: { initialDelayMs: 300, maxDelayMs: 1000 } },
        // The customer's operator lets rules read password files from this directory.
        secrets: { fileDir: dir },
      }),
    );
    customerPort = await findFreePort();
    [vendor, customer] = await Promise.all([serve('vendor', 0), serve('customer', customerPort)]);
    env = { DOCKER_CONFIG: join(dir, 'docker') };
    await login(vendor);
    await login(customer);
    [image, later] = await Promise.all([buildMultiArchImage('walkthrough'), buildMultiArchImage('walkthrough-later')]);
  });

  after(async () => {
    await Promise.all([vendor?.stop(), customer?.stop()]);
    await Promise.all([image?.dispose(), later?.dispose()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('set up with the documented commands, a vendor push arrives at the customer with its digest', async () => {
    assert.ok(customer);
    await pushImage(vendor.url, await pushToken(vendor.url, 'tripinsights/api'), 'tripinsights/api', 'v1', image.dir, image.index.index);

    // Vendor: a pull-only token for the customer.
    const token = JSON.parse(
      ok(
        await runCli(['admin', 'principal', 'create', 'token', 'customer-contoso', '--grant', 'tripinsights/**=pull', '--registry', vendor.host, '--json'], {
          env,
        }),
      ).stdout,
    ) as { secret: { value: string } };
    const passwordFile = join(dir, 'vendor-password');
    await writeFile(passwordFile, `${token.secret.value}\n`);

    // Customer: the rule; the first run backfills v1.
    const created = ok(
      await runCli(
        [
          'sync',
          'rule',
          'create',
          'vendor',
          '--registry',
          customer.host,
          '--source',
          vendor.url,
          '--source-username',
          'customer-contoso',
          '--source-password-file',
          passwordFile,
          '--repository',
          'tripinsights/*',
          '--repository',
          'tripinsights/api',
          '--exclude',
          '*-rc*',
          '--prefix',
          'vendor',
          '--webhook',
        ],
        { env },
      ),
    );
    const url = /^webhook URL: +(\S+)$/m.exec(created.stdout)?.[1] ?? '';
    const secret = /^webhook secret: +(\S+)$/m.exec(created.stdout)?.[1] ?? '';
    assert.equal(url, `${customer.url}/api/v1/sync/rules/vendor/webhook`);

    // Vendor: the webhook, signed with the customer's secret.
    ok(
      await runCli(
        ['webhook', 'create', 'contoso', '--registry', vendor.host, '--url', url, '--event', 'push', '--filter', 'tripinsights/*', '--secret-stdin'],
        {
          env,
          stdin: `${secret}\n`,
        },
      ),
    );

    const customerToken = await pullToken(customer.url, 'vendor/tripinsights/api');
    assert.equal(
      await waitFor('the backfill of v1', () => headDigest(customer?.url ?? '', customerToken, 'vendor/tripinsights/api', 'v1')),
      image.index.index.digest,
    );
    await pushImage(vendor.url, await pushToken(vendor.url, 'tripinsights/web'), 'tripinsights/web', '2.0', later.dir, later.index.index);
    const webToken = await pullToken(customer.url, 'vendor/tripinsights/web');
    assert.equal(
      await waitFor('the webhook-driven copy', () => headDigest(customer?.url ?? '', webToken, 'vendor/tripinsights/web', '2.0')),
      later.index.index.digest,
    );

    const status = ok(await runCli(['sync', 'status', 'vendor', '--registry', customer.host], { env }));
    assert.match(status.stdout, /^tripinsights\/api:v1 +vendor\/tripinsights\/api:v1 +sha256:/m);
    assert.match(status.stdout, /^tripinsights\/web:2\.0 +vendor\/tripinsights\/web:2\.0 +sha256:/m);
    const history = ok(await runCli(['history', `${customer.host}/vendor/tripinsights/web:2.0`, '--json'], { env }));
    assert.match(history.stdout, /"name": "sync:vendor"/);
  });

  it("what is pushed while the customer is down arrives once it is back (the vendor's webhook retries)", async () => {
    await customer?.stop();
    customer = undefined;
    const token = await pushToken(vendor.url, 'tripinsights/api');
    await pushImage(vendor.url, token, 'tripinsights/api', 'v2', later.dir, later.index.index);
    await pushImage(vendor.url, token, 'tripinsights/api', 'v3-rc1', later.dir, later.index.index);
    // The vendor has tried and failed at least once before the customer comes back.
    await waitFor('a failed attempt on the vendor', async () => {
      const list = JSON.parse(ok(await runCli(['webhook', 'deliveries', 'contoso', '--registry', vendor.host, '--json'], { env })).stdout) as {
        deliveries: Array<{ tags: string[]; lastAttempt: { ok: boolean } | null }>;
      };
      return list.deliveries.some((d) => d.tags.includes('v2') && d.lastAttempt && !d.lastAttempt.ok) ? true : undefined;
    });

    customer = await serve('customer', customerPort);
    const customerToken = await pullToken(customer.url, 'vendor/tripinsights/api');
    assert.equal(
      await waitFor('v2 after the restart', () => headDigest(customer?.url ?? '', customerToken, 'vendor/tripinsights/api', 'v2')),
      later.index.index.digest,
    );
    const run = ok(await runCli(['sync', 'run', 'vendor', '--registry', customer.host], { env }));
    assert.match(run.stdout, /^done: \d+ checked, 0 copied, 0 failed$/m);
    assert.equal(await headDigest(customer.url, customerToken, 'vendor/tripinsights/api', 'v3-rc1'), undefined, 'excluded by the rule');
  });
});
