/**
 * The pull-through cache in front of CNCF Distribution (Debian's docker-registry), pulled with
 * skopeo and raw registry GETs: cold pulls by tag and by digest of a multi-arch index (digests equal
 * the upstream's, platforms fetched only when pulled), a tag moved upstream (seen after the window,
 * or at once after a refresh), the allow-list, pushes refused, provenance, and a Basic-auth
 * upstream. What the cache asked the upstream is read from Distribution's access log.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { urls } from '../../src/api/urls.js';
import { basic, makeImage, MT, sha256 } from '../import/fixtures.js';
import { Skopeo } from '../support/clients.js';
import type { ReferenceRegistry } from '../support/reference-registry.js';
import type { TestServer } from '../support/server.js';
import {
  blobsOf,
  buildMultiArchImage,
  cacheState,
  ManualClock,
  manifestPath,
  publish,
  pushLayout,
  registryGet,
  served,
  startCacheServer,
  startUpstream,
} from './helpers.js';

const minute = 60_000;

describe('pull-through cache: CNCF Distribution upstream', () => {
  let upstream: ReferenceRegistry;
  let berth: TestServer;
  let skopeo: Skopeo;
  let work: string;
  const clock = new ManualClock();
  const host = () => new URL(berth.url).host;

  before(async () => {
    upstream = await startUpstream();
    berth = await startCacheServer({
      clock,
      rules: [
        {
          name: 'dist',
          prefix: 'dist',
          upstream: { url: upstream.url },
          repositories: ['team/**'],
          tagFreshnessMs: 10 * minute,
          staleIfErrorMs: 60 * minute,
        },
      ],
    });
    skopeo = await Skopeo.create([host(), upstream.host]);
    work = await mkdtemp(join(tmpdir(), 'berth-cache-test-'));
  });

  after(async () => {
    await skopeo?.dispose();
    await berth?.stop();
    await upstream?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('serves a cold pull of a multi-arch index by tag with the upstream digest, and fetches only the platform pulled', async () => {
    const image = await buildMultiArchImage('cold-by-tag');
    try {
      await pushLayout(upstream.url, undefined, 'team/app', 'v1', image.dir, image.index.index);
      const [indexDigest, amd64, arm64] = image.digests as [string, string, string];

      const first = await registryGet(berth.url, manifestPath('dist/team/app', 'v1'));
      assert.equal(first.status, 200, first.body.toString());
      assert.equal(cacheState(first.headers), 'miss');
      assert.equal(first.headers.get('docker-content-digest'), indexDigest);
      assert.equal(sha256(first.body), indexDigest, 'the exact index bytes');
      assert.match(first.headers.get('berth-cache') ?? '', new RegExp(`rule=dist; upstream=${upstream.host}`));
      // The index is kept whole; its platforms are not fetched until pulled.
      assert.equal(await berth.app.registry.manifests.has('dist/team/app', amd64), false);

      // skopeo pulls one platform: the index (cached), that platform's manifest and its blobs.
      const digest = await skopeo.copy(`docker://${host()}/dist/team/app:v1`, `oci:${join(work, 'one')}:v1`, {
        platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
      });
      assert.equal(digest, arm64);
      assert.equal(await berth.app.registry.manifests.has('dist/team/app', arm64), true);
      assert.equal(await berth.app.registry.manifests.has('dist/team/app', amd64), false);
      assert.equal(served(upstream, 'GET', urls.manifest('team/app', amd64)), 0, 'the other platform was never fetched');

      const again = await registryGet(berth.url, manifestPath('dist/team/app', 'v1'));
      assert.equal(cacheState(again.headers), 'hit');
      assert.equal(served(upstream, 'HEAD', urls.manifest('team/app', 'v1')), 1, 'within its window the tag is not re-checked');
    } finally {
      await image.dispose();
    }
  });

  it('serves a cold pull by digest of a whole index (skopeo copy --all) with every digest equal to the upstream', async () => {
    const image = await buildMultiArchImage('cold-by-digest');
    try {
      await pushLayout(upstream.url, undefined, 'team/bydigest', 'v1', image.dir, image.index.index);
      const root = image.index.index.digest;
      const digest = await skopeo.copy(`docker://${host()}/dist/team/bydigest@${root}`, `oci:${join(work, 'all')}:all`, { all: true });
      assert.equal(digest, root);
      const stored = new Set(await readdir(join(work, 'all', 'blobs', 'sha256')));
      for (const item of [...image.digests, ...blobsOf(image)]) assert.ok(stored.has(item.slice(7)), `${item} pulled`);
      for (const blob of blobsOf(image)) {
        assert.equal(served(upstream, 'GET', urls.blob('team/bydigest', blob)), 1, `blob ${blob} fetched once`);
      }
      // Pulled again: everything from the cache.
      await skopeo.copy(`docker://${host()}/dist/team/bydigest@${root}`, `oci:${join(work, 'again')}:all`, { all: true });
      for (const blob of blobsOf(image)) assert.equal(served(upstream, 'GET', urls.blob('team/bydigest', blob)), 1);
      const head = await registryGet(berth.url, manifestPath('dist/team/bydigest', root), { method: 'HEAD' });
      assert.equal(cacheState(head.headers), 'hit');
    } finally {
      await image.dispose();
    }
  });

  it('sees a tag moved upstream after its freshness window, or at once after a refresh', async () => {
    const one = makeImage({ platforms: 0 });
    const two = makeImage({ platforms: 0 });
    const three = makeImage({ platforms: 0 });
    await publish(upstream, 'team/moving', 'latest', one);
    const path = manifestPath('dist/team/moving', 'latest');
    assert.equal((await registryGet(berth.url, path)).headers.get('docker-content-digest'), one.root.digest);

    await publish(upstream, 'team/moving', 'latest', two);
    const within = await registryGet(berth.url, path);
    assert.equal(within.headers.get('docker-content-digest'), one.root.digest, 'still fresh: the cached tag');
    assert.equal(cacheState(within.headers), 'hit');

    clock.advance(10 * minute);
    const after = await registryGet(berth.url, path);
    assert.equal(after.headers.get('docker-content-digest'), two.root.digest, 'past the window: re-checked');
    assert.equal(cacheState(after.headers), 'miss');

    // A refresh moves it at once (the management API; `berth cache refresh` calls the same).
    await publish(upstream, 'team/moving', 'latest', three);
    const refreshed = await berth.app.services.cache.refresh(actor, 'dist', { repository: 'team/moving', tag: 'latest' });
    assert.deepEqual(refreshed.checked, { previous: two.root.digest, current: three.root.digest, changed: true });
    assert.equal((await registryGet(berth.url, path)).headers.get('docker-content-digest'), three.root.digest);

    // A refresh of the whole rule marks every tag: the next pull asks the upstream (unchanged: a hit).
    const heads = served(upstream, 'HEAD', urls.manifest('team/moving', 'latest'));
    const marked = await berth.app.services.cache.refresh(actor, 'dist', {});
    assert.ok(marked.expired >= 1);
    const checked = await registryGet(berth.url, path);
    assert.equal(cacheState(checked.headers), 'hit');
    assert.equal(served(upstream, 'HEAD', urls.manifest('team/moving', 'latest')), heads + 1);
  });

  it('follows a tag deleted upstream: the check answers 404 and the cached tag goes, the manifest stays by digest', async () => {
    const image = makeImage({ platforms: 0 });
    await publish(upstream, 'team/deleted', 'v1', image);
    assert.equal((await registryGet(berth.url, manifestPath('dist/team/deleted', 'v1'))).status, 200);
    const del = await fetch(`${upstream.url}${urls.manifest('team/deleted', image.root.digest)}`, { method: 'DELETE' });
    assert.equal(del.status, 202);
    const refreshed = await berth.app.services.cache.refresh(actor, 'dist', { repository: 'team/deleted', tag: 'v1' });
    assert.deepEqual(refreshed.checked, { previous: image.root.digest, current: null, changed: true });
    assert.equal((await registryGet(berth.url, manifestPath('dist/team/deleted', 'v1'))).status, 404, 'not served from the cache either');
    assert.equal((await registryGet(berth.url, manifestPath('dist/team/deleted', image.root.digest))).status, 200);
  });

  it('records the rule and the upstream digest as the push of cached content', async () => {
    const image = makeImage({ platforms: 0 });
    await publish(upstream, 'team/history', 'v1', image);
    await registryGet(berth.url, manifestPath('dist/team/history', 'v1'));
    const res = await registryGet(berth.url, urls.api.history('dist/team/history'));
    assert.equal(res.status, 200, res.body.toString());
    const [push] = JSON.parse(res.body.toString()).pushes;
    assert.equal(push.tag, 'v1');
    assert.equal(push.digest, image.root.digest);
    assert.equal(push.principal.name, 'proxy:dist');
    assert.deepEqual(push.provenance.proxy, { rule: 'dist', upstream: upstream.url, repository: 'team/history', reference: 'v1', digest: image.root.digest });
  });

  it('refuses repositories outside the allow-list without asking the upstream', async () => {
    const image = makeImage({ platforms: 0 });
    await publish(upstream, 'other/app', 'v1', image);
    const res = await registryGet(berth.url, manifestPath('dist/other/app', 'v1'));
    assert.equal(res.status, 403);
    assert.equal(JSON.parse(res.body.toString()).errors[0].code, 'DENIED');
    assert.match(JSON.parse(res.body.toString()).errors[0].message, /not in the repositories cache rule dist may fetch/);
    const blob = await registryGet(berth.url, urls.blob('dist/other/app', image.blobs[0]!.digest));
    assert.equal(blob.status, 403);
    assert.equal(served(upstream, 'HEAD', urls.manifest('other/app', 'v1')), 0);
    assert.equal(served(upstream, 'HEAD', urls.blob('other/app', image.blobs[0]!.digest)), 0);
  });

  it('answers 404 for what the upstream does not have, and refuses pushes under the prefix', async () => {
    const missing = await registryGet(berth.url, manifestPath('dist/team/nothing', 'v1'));
    assert.equal(missing.status, 404);
    assert.equal(JSON.parse(missing.body.toString()).errors[0].code, 'MANIFEST_UNKNOWN');

    const image = makeImage({ platforms: 0 });
    const put = await fetch(`${berth.url}${manifestPath('dist/team/app', 'pushed')}`, {
      method: 'PUT',
      headers: { 'content-type': MT.ociManifest },
      body: image.root.bytes,
    });
    assert.equal(put.status, 405);
    const error = ((await put.json()) as any).errors[0];
    assert.equal(error.code, 'UNSUPPORTED');
    assert.match(error.message, /belongs to pull-through cache rule dist/);
    const upload = await fetch(`${berth.url}${urls.uploads('dist/team/app')}`, { method: 'POST' });
    assert.equal(upload.status, 405);
    await upload.arrayBuffer();
  });

  it('serves a pull of the same repository outside the prefix as an ordinary (empty) repository', async () => {
    const res = await registryGet(berth.url, manifestPath('team/app', 'v1'));
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('berth-cache'), null);
  });
});

describe('pull-through cache: an upstream with Basic auth', () => {
  let upstream: ReferenceRegistry;
  let berth: TestServer;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-cache-secret-'));
    await writeFile(join(dir, 'password'), 'upstream-secret\n');
    upstream = await startUpstream({ htpasswd: { username: 'puller', password: 'upstream-secret' } });
    berth = await startCacheServer({
      rules: [
        {
          name: 'private',
          prefix: 'private',
          upstream: { url: upstream.url, credentials: { kind: 'basic', username: 'puller', passwordFile: join(dir, 'password') } },
        },
        {
          name: 'wrong',
          prefix: 'wrong',
          upstream: { url: upstream.url, credentials: { kind: 'basic', username: 'puller', password: 'not-it' } },
          mirrorOf: ['wrong.example'],
        },
      ],
    });
  });

  after(async () => {
    await berth?.stop();
    await upstream?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('logs in with the password file of its rule', async () => {
    const image = makeImage({ platforms: 0 });
    await publish(upstream, 'team/secret', 'v1', image, basic('puller', 'upstream-secret'));
    const res = await registryGet(berth.url, manifestPath('private/team/secret', 'v1'));
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(res.headers.get('docker-content-digest'), image.root.digest);
    for (const blob of image.blobs) {
      const got = await registryGet(berth.url, urls.blob('private/team/secret', blob.digest));
      assert.equal(got.status, 200);
      assert.ok(got.body.equals(blob.bytes));
    }
  });

  it('says the upstream refused the credentials when they are wrong', async () => {
    const res = await registryGet(berth.url, manifestPath('wrong/team/secret', 'v1'));
    assert.equal(res.status, 502);
    assert.match(JSON.parse(res.body.toString()).errors[0].message, /refused the credentials of "puller"/);
  });
});

describe('pull-through cache: the upstream stops', () => {
  let upstream: ReferenceRegistry;
  let berth: TestServer;
  let skopeo: Skopeo;
  let work: string;
  const clock = new ManualClock();
  const host = () => new URL(berth.url).host;

  before(async () => {
    upstream = await startUpstream();
    berth = await startCacheServer({
      clock,
      rules: [{ name: 'dist', prefix: 'dist', upstream: { url: upstream.url }, tagFreshnessMs: 10 * minute, staleIfErrorMs: 60 * minute }],
    });
    skopeo = await Skopeo.create([host()]);
    work = await mkdtemp(join(tmpdir(), 'berth-cache-stale-'));
  });

  after(async () => {
    await skopeo?.dispose();
    await berth?.stop();
    await upstream?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('still serves cached images, marked stale, within the stale limit; then says the upstream is unreachable', async () => {
    const image = await buildMultiArchImage('stale');
    try {
      await pushLayout(upstream.url, undefined, 'team/app', 'v1', image.dir, image.index.index);
      const root = image.index.index.digest;
      assert.equal(await skopeo.copy(`docker://${host()}/dist/team/app:v1`, `oci:${join(work, 'warm')}:v1`, { all: true }), root);
      await upstream.stop();

      // Within the freshness window nothing is asked: a plain hit.
      assert.equal(cacheState((await registryGet(berth.url, manifestPath('dist/team/app', 'v1'))).headers), 'hit');

      clock.advance(30 * minute);
      const stale = await registryGet(berth.url, manifestPath('dist/team/app', 'v1'));
      assert.equal(stale.status, 200, stale.body.toString());
      assert.equal(stale.headers.get('docker-content-digest'), root);
      assert.match(stale.headers.get('berth-cache') ?? '', /^stale; rule=dist; upstream=[^;]+; checked=\d{4}-/);
      // A whole pull still works: the index stale, everything by digest from the cache.
      assert.equal(await skopeo.copy(`docker://${host()}/dist/team/app:v1`, `oci:${join(work, 'stale')}:v1`, { all: true }), root);
      const byDigest = await registryGet(berth.url, manifestPath('dist/team/app', image.digests[1] as string));
      assert.equal(cacheState(byDigest.headers), 'hit', 'digests never go stale');

      const metrics = await berth.app.metrics.registry.getSingleMetricAsString('berth_cache_requests_total');
      assert.match(metrics, /berth_cache_requests_total\{rule="dist",kind="manifest",result="stale"\} [1-9]/);
      const rule = await berth.app.services.cache.getRule('dist');
      assert.match(rule.state.lastUpstreamError ?? '', /cannot reach/);

      // Past the stale limit the tag is not served; digests still are.
      clock.advance(60 * minute);
      const gone = await registryGet(berth.url, manifestPath('dist/team/app', 'v1'));
      assert.equal(gone.status, 502);
      assert.match(JSON.parse(gone.body.toString()).errors[0].message, /cannot reach/);
      assert.equal((await registryGet(berth.url, manifestPath('dist/team/app', root))).status, 200);
    } finally {
      await image.dispose();
    }
  });
});

const actor = { principalId: 'test', principalName: 'test', clientAddress: '127.0.0.1' };
