/**
 * Another Berth (token auth) as the upstream, with rules managed through /api/v1 and `berth cache`:
 * a rule logging in with a scoped token's secret (a password file), a keyless rule (an OIDC token
 * file the upstream's federated credential trusts), pull grants on the prefix (and a challenge that
 * names the local repository), the rule checks of the API (config rules read-only, conflicts
 * refused), refresh and entries, and the same through the CLI.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { urls } from '../../src/api/urls.js';
import { storeIdentityToken } from '../../src/client/docker-config.js';
import { failsWith, ok, runCli, Api, assertError } from '../admin/helpers.js';
import { bearer, tokenFor } from '../auth/helpers.js';
import { startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';
import { pushToken } from '../sync/helpers.js';
import { buildMultiArchImage, cacheState, loopbackEgress, manifestPath, pushLayout, registryGet, startCacheServer, type BuiltImage } from './helpers.js';

describe('pull-through cache: a Berth upstream with token auth', () => {
  let issuer: OidcIssuer;
  let vendor: TestServer;
  let berth: TestServer;
  let image: BuiltImage;
  let dir = '';
  let api: Api;
  let env: NodeJS.ProcessEnv = {};

  before(async () => {
    issuer = await startOidcIssuer();
    vendor = await startTestServer({ auth: true, federationIssuers: [{ issuer: issuer.issuer }], config: { egress: loopbackEgress } });
    dir = await mkdtemp(join(tmpdir(), 'berth-cache-vendor-'));
    berth = await startCacheServer({
      auth: true,
      // A rule from the configuration file, alongside those the API creates.
      rules: [{ name: 'configured', prefix: 'configured', upstream: { url: vendor.url } }],
      // Rules made through the API may name secret files only in the operator's directory (issue 11).
      config: { secrets: { fileDir: dir } },
    });
    image = await buildMultiArchImage('berth-upstream');
    await pushLayout(vendor.url, await pushToken(vendor.url, 'team/app'), 'team/app', 'v1', image.dir, image.index.index);

    const vendorApi = await Api.asOwner(vendor.url);
    const token = await vendorApi.post('/principals', { kind: 'token', name: 'cache-puller', grants: [{ pattern: 'team/**', permission: 'pull' }] });
    assert.equal(token.status, 201, JSON.stringify(token.body));
    await writeFile(join(dir, 'password'), `${token.body.secret.value}\n`);
    const service = await vendor.app.auth.principals.createPrincipal('service', 'cache-keyless', {
      grants: [{ pattern: 'team/**', permission: 'pull' }],
      withoutSecret: true,
    });
    await vendor.app.metadata.auth.federatedCredentials.put({
      id: 'fc-cache',
      principalId: service.principal.id,
      name: 'cluster',
      issuer: issuer.issuer,
      audiences: ['berth'],
      subject: 'system:serviceaccount:registry:berth',
      conditions: [],
      createdAt: Date.now(),
    });
    await writeFile(join(dir, 'token'), await issuer.kubernetes({ namespace: 'registry', serviceAccount: 'berth' }));

    api = await Api.asOwner(berth.url);
    const home = join(dir, 'home');
    const refresh = String((await tokenFor(berth.url, ownerName, ownerPassword, [], true))['refresh_token']);
    await storeIdentityToken(new URL(berth.url).host, refresh, join(home, 'docker', 'config.json'));
    env = { DOCKER_CONFIG: join(home, 'docker'), BERTH_REGISTRY: new URL(berth.url).host };
  });

  after(async () => {
    await berth?.stop();
    await vendor?.stop();
    await issuer?.stop();
    await image?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const pull = async (repository: string, reference: string, token?: string) =>
    registryGet(berth.url, manifestPath(repository, reference), { headers: token ? bearer(token) : {} });
  const pullToken = async (repository: string) => String((await tokenFor(berth.url, ownerName, ownerPassword, [`repository:${repository}:pull`]))['token']);

  it('creates a rule with a password file through the API and pulls through it with a pull grant on the prefix', async () => {
    const created = await api.post('/cache/rules', {
      name: 'vendor',
      prefix: 'vendor',
      upstream: { url: vendor.url, credentials: { kind: 'basic', username: 'cache-puller', passwordFile: join(dir, 'password') } },
      repositories: ['team/*'],
      // The configuration's rule mirrors the same upstream host already.
      mirrorOf: [],
      tagFreshnessMs: 0,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.managedBy, 'api');
    assert.deepEqual(created.body.upstream.credentials, {
      kind: 'basic',
      username: 'cache-puller',
      passwordSource: 'file',
      passwordFile: join(dir, 'password'),
      passwordEnv: null,
    });
    assert.deepEqual(created.body.mirrorOf, []);
    const configured = await api.get('/cache/rules/configured');
    assert.deepEqual(configured.body.mirrorOf, [new URL(vendor.url).host], 'by default, the upstream host');

    // Anonymous: the challenge names the local repository.
    const anonymous = await pull('vendor/team/app', 'v1');
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /scope="repository:vendor\/team\/app:pull"/);

    const token = await pullToken('vendor/team/app');
    const res = await pull('vendor/team/app', 'v1', token);
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(res.headers.get('docker-content-digest'), image.index.index.digest);
    assert.equal(cacheState(res.headers), 'miss');
    const layer = image.index.images[0]?.layers[0]?.digest as string;
    const blob = await registryGet(berth.url, urls.blob('vendor/team/app', layer), { headers: bearer(token) });
    assert.equal(blob.status, 200);

    // A principal with pull elsewhere only is denied.
    const other = await api.post('/principals', { kind: 'token', name: 'elsewhere', grants: [{ pattern: 'other/**', permission: 'pull' }] });
    const otherToken = String((await tokenFor(berth.url, 'elsewhere', other.body.secret.value, ['repository:vendor/team/app:pull']))['token']);
    assert.notEqual((await pull('vendor/team/app', 'v1', otherToken)).status, 200);
  });

  it('pulls keylessly: an OIDC token file the upstream’s federated credential trusts', async () => {
    const created = await api.post('/cache/rules', {
      name: 'keyless',
      prefix: 'keyless',
      upstream: { url: vendor.url, credentials: { kind: 'oidc', clientId: 'cache-keyless', tokenFile: join(dir, 'token') } },
      mirrorOf: ['vendor.example'],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const res = await pull('keyless/team/app', image.index.index.digest, await pullToken('keyless/team/app'));
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(cacheState(res.headers), 'miss');
  });

  it('keeps rules consistent: configuration rules are read-only, names, prefixes and mirror hosts unique', async () => {
    const list = await api.get('/cache/rules');
    assert.deepEqual(
      list.body.rules.map((r: { name: string; managedBy: string }) => [r.name, r.managedBy]),
      [
        ['configured', 'config'],
        ['keyless', 'api'],
        ['vendor', 'api'],
      ],
    );
    assertError(await api.patch('/cache/rules/configured', { repositories: ['x/*'] }), 409, 'DENIED', /configuration file/);
    assertError(await api.delete('/cache/rules/configured'), 409, 'DENIED', /configuration file/);
    assertError(await api.post('/cache/rules', { name: 'overlap', prefix: 'vendor/team', upstream: { url: vendor.url } }), 409, 'NAME_INVALID', /overlap/);
    assertError(
      await api.post('/cache/rules', { name: 'same-host', prefix: 'elsewhere', upstream: { url: vendor.url }, mirrorOf: ['vendor.example'] }),
      409,
      'NAME_INVALID',
      /both mirrors of vendor\.example/,
    );
    assertError(await api.post('/cache/rules', { name: 'vendor', prefix: 'again', upstream: { url: vendor.url }, mirrorOf: [] }), 409, 'NAME_INVALID');
    assertError(
      await api.post('/cache/rules', { name: 'private-net', prefix: 'private-net', upstream: { url: 'http://10.1.2.3:5000' } }),
      400,
      'DENIED',
      /upstream\.url: .*10\.1\.2\.3/,
    );
    assertError(await api.post('/cache/rules', { name: 'bad', prefix: 'bad', upstream: { url: 'ftp://example.com' } }), 400, 'UNSUPPORTED', /upstream/);
    assertError(await api.patch('/cache/rules/vendor', { upstream: { url: 'http://10.1.2.3:5000' } }), 400, 'UNSUPPORTED', /never sent over plain HTTP/);
    assertError(await api.patch('/cache/rules/vendor', { upstream: { url: 'https://10.1.2.3:5000' } }), 400, 'DENIED', /egress policy/);
    assert.equal((await api.get('/cache/rules/vendor')).body.upstream.url, vendor.url, 'unchanged');
    const audit = await api.get('/audit?limit=20');
    assert.ok(audit.body.entries.some((e: { event: string }) => e.event === 'admin.cache_rule.created'));
  });

  it('berth apply manages API cache rules from a file, idempotently', async () => {
    const file = join(dir, 'berth.yaml');
    await writeFile(
      file,
      [
        'cache:',
        '  rules:',
        '    - name: applied',
        '      prefix: applied',
        `      upstream: { url: ${JSON.stringify(vendor.url)}, credentials: { kind: basic, username: cache-puller, passwordFile: ${JSON.stringify(join(dir, 'password'))} } }`,
        '      mirrorOf: []',
        '      repositories: ["team/*"]',
        '      tagFreshnessMs: 120000',
        '',
      ].join('\n'),
    );
    const first = ok(await runCli(['apply', '-f', file], { env }));
    assert.match(first.stdout, /\+ create cache rule applied: applied\/ <- http:\/\/127\.0\.0\.1:\d+ \(team\/\*\)/);
    assert.match(ok(await runCli(['apply', '-f', file], { env })).stdout, /no changes/);
    const res = await pull('applied/team/app', 'v1', await pullToken('applied/team/app'));
    assert.equal(res.status, 200, res.body.toString());
    await writeFile(file, (await readFile(file, 'utf8')).replace('120000', '60000'));
    assert.match(ok(await runCli(['apply', '-f', file], { env })).stdout, /~ cache rule applied: tagFreshnessMs 120000 -> 60000/);
    assert.equal((await api.get('/cache/rules/applied')).body.tagFreshnessMs, 60_000);
    assert.equal((await api.delete('/cache/rules/applied')).status, 204);
  });

  it('berth cache: list, show, refresh, entries, update and delete', async () => {
    const berthCli = (args: string[]) => runCli(args, { env });
    const listed = ok(await berthCli(['cache', 'rule', 'list']));
    assert.match(listed.stdout, /vendor\s+vendor\/\s+http:\/\/127\.0\.0\.1:\d+/);
    assert.match(listed.stdout, /configured\s+configured\/.*config/);
    assert.match(ok(await berthCli(['cache', 'rule', 'show', 'vendor'])).stdout, /basic as cache-puller \(password in .*password\)/);
    const refreshed = ok(await berthCli(['cache', 'refresh', 'vendor', 'team/app:v1']));
    assert.match(refreshed.stdout, /team\/app:v1 is unchanged \(sha256:/);
    assert.match(ok(await berthCli(['cache', 'refresh', 'vendor'])).stdout, /1 cached tag\(s\) of rule vendor will be checked/);
    const entries = ok(await berthCli(['cache', 'entries', 'vendor', '--json']));
    const tags = JSON.parse(entries.stdout).tags;
    assert.equal(tags.length, 1);
    assert.equal(tags[0].upstreamRepository, 'team/app');
    assert.equal(tags[0].digest, image.index.index.digest);
    assert.match(ok(await berthCli(['cache', 'rule', 'update', 'vendor', '--freshness', '5m', '--evict-after', '30d'])).stdout, /updated cache rule vendor/);
    const shown = JSON.parse(ok(await berthCli(['cache', 'rule', 'show', 'vendor', '--json'])).stdout);
    assert.equal(shown.tagFreshnessMs, 300_000);
    assert.equal(shown.evictAfterMs, 30 * 86_400_000);
    failsWith(await berthCli(['cache', 'rule', 'update', 'configured', '--freshness', '1m']), /configuration file/);
    ok(await berthCli(['cache', 'rule', 'delete', 'keyless']));
    assertError(await api.get('/cache/rules/keyless'), 404, 'NAME_UNKNOWN');
    // What the deleted rule cached stays, as an ordinary repository (now open to pushes).
    const token = String((await tokenFor(berth.url, ownerName, ownerPassword, ['repository:keyless/team/app:pull']))['token']);
    assert.equal((await pull('keyless/team/app', image.index.index.digest, token)).status, 200);
  });
});
