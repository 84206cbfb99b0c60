/**
 * Concurrent cold pulls through the cache share one upstream fetch per blob:
 * - two skopeo clients racing the same cold image from CNCF Distribution: every blob is fetched
 *   once (counted from Distribution's access log), and both get every byte;
 * - with an upstream that holds a blob's body half-way until both clients are reading it (the
 *   test's registry), the second client provably joins the fetch in flight, and a client that stops
 *   reading neither stalls the other nor the caching: it gets the rest from storage later;
 * - a pull that read "not cached" just before another pull's fetch ended (held there by the test)
 *   does not ask the upstream again: it finds what the other pull stored.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'undici';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { urls } from '../../src/api/urls.js';
import { parseDigest } from '../../src/oci/digest.js';
import { makeImage, sha256 } from '../import/fixtures.js';
import { startHostileRegistry, type HostileRegistry } from '../import/hostile-registry.js';
import { Skopeo } from '../support/clients.js';
import type { ReferenceRegistry } from '../support/reference-registry.js';
import type { TestServer } from '../support/server.js';
import { blobsOf, buildMultiArchImage, cacheState, pushLayout, registryGet, served, startCacheServer, startUpstream, type Fetched } from './helpers.js';

describe('pull-through cache: two clients racing the same cold pull', () => {
  let upstream: ReferenceRegistry;
  let berth: TestServer;
  let work: string;
  const skopeos: Skopeo[] = [];

  before(async () => {
    upstream = await startUpstream();
    berth = await startCacheServer({ rules: [{ name: 'dist', prefix: 'dist', upstream: { url: upstream.url } }] });
    const host = new URL(berth.url).host;
    skopeos.push(await Skopeo.create([host]), await Skopeo.create([host]));
    work = await mkdtemp(join(tmpdir(), 'berth-cache-race-'));
  });

  after(async () => {
    for (const s of skopeos) await s.dispose();
    await berth?.stop();
    await upstream?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('fetches each blob and manifest from the upstream once (skopeo copy --all twice at once)', async () => {
    const image = await buildMultiArchImage('race');
    try {
      await pushLayout(upstream.url, undefined, 'team/app', 'v1', image.dir, image.index.index);
      const host = new URL(berth.url).host;
      const digests = await Promise.all(
        skopeos.map((s, i) => s.copy(`docker://${host}/dist/team/app:v1`, `oci:${join(work, `client-${i}`)}:v1`, { all: true })),
      );
      assert.deepEqual(digests, [image.index.index.digest, image.index.index.digest]);
      for (const blob of blobsOf(image)) assert.equal(served(upstream, 'GET', urls.blob('team/app', blob)), 1, `blob ${blob}`);
      for (const manifest of image.digests) assert.equal(served(upstream, 'GET', urls.manifest('team/app', manifest)), 1, `manifest ${manifest}`);
      assert.equal(served(upstream, 'HEAD', urls.manifest('team/app', 'v1')), 1, 'the tag was resolved once');
    } finally {
      await image.dispose();
    }
  });
});

describe('pull-through cache: a blob fetch in flight', () => {
  let upstream: HostileRegistry;
  let berth: TestServer;
  const image = makeImage({ platforms: 0, layers: 1, layerBytes: 4 * 1024 * 1024 });
  const layer = image.blobs.find((b) => b.size === 4 * 1024 * 1024) as (typeof image.blobs)[0];
  let release: () => void = () => undefined;

  before(async () => {
    upstream = await startHostileRegistry();
    upstream.serve('team/app', image, ['v1']);
    // The layer's body stops half-way until the test releases it.
    upstream.intercept = (req, res, path) => {
      if (req.method !== 'GET' || path !== urls.blob('team/app', layer.digest)) return false;
      const held = new Promise<void>((resolve) => (release = resolve));
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': layer.size, 'Docker-Content-Digest': layer.digest });
      res.write(layer.bytes.subarray(0, layer.size / 2));
      void held.then(() => res.end(layer.bytes.subarray(layer.size / 2)));
      return true;
    };
    // A small window: a client that stops reading falls behind it at once.
    berth = await startCacheServer({ rules: [{ name: 'hold', prefix: 'hold', upstream: { url: upstream.url } }], cache: { fillWindowBytes: 256 * 1024 } });
  });

  after(async () => {
    release();
    await berth?.stop();
    await upstream?.stop();
  });

  it('is shared by a second client, and a client that stops reading stalls neither the other client nor the caching', async () => {
    const url = `${berth.url}${urls.blob('hold/team/app', layer.digest)}`;
    // Client A reads the first bytes, then stops reading (its socket fills up).
    const a = await request(url);
    assert.equal(a.statusCode, 200);
    assert.equal(a.headers['berth-cache'], 'miss; rule=hold; upstream=' + upstream.host);
    const aReader = a.body[Symbol.asyncIterator]();
    const firstA = await aReader.next();
    assert.ok(!firstA.done && (firstA.value as Buffer).length > 0);

    // Client B arrives while the fetch is held half-way: it joins it.
    const b = request(url).then(async (res) => ({ status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()) }));
    await waitFor(async () => /berth_cache_fill_joins_total\{rule="hold"\} 1/.test(await metric(berth, 'berth_cache_fill_joins_total')));
    release();

    // B gets every byte although A reads nothing more; the blob is stored meanwhile.
    const got = await b;
    assert.equal(got.status, 200);
    assert.equal(sha256(got.body), layer.digest);
    assert.equal(await berth.app.registry.blobs.has('hold/team/app', parseDigest(layer.digest)), true);
    assert.equal(upstream.count('GET', urls.blob('team/app', layer.digest)), 1, 'one upstream fetch for both clients');

    // A, far behind the window, gets the rest from storage.
    const rest: Buffer[] = [firstA.value as Buffer];
    for (let next = await aReader.next(); !next.done; next = await aReader.next()) rest.push(next.value as Buffer);
    assert.equal(sha256(Buffer.concat(rest)), layer.digest);
  });
});

describe('pull-through cache: a pull that found nothing cached just before another pull finished fetching it', () => {
  let upstream: HostileRegistry;
  let berth: TestServer;
  const image = makeImage({ platforms: 2, layers: 1 });
  const child = image.children[0] as (typeof image.children)[0];
  const layer = image.blobs[1] as (typeof image.blobs)[0];

  before(async () => {
    upstream = await startHostileRegistry();
    upstream.serve('team/app', image, ['v1']);
    berth = await startCacheServer({ rules: [{ name: 'late', prefix: 'late', upstream: { url: upstream.url } }] });
  });

  after(async () => {
    await berth?.stop();
    await upstream?.stop();
  });

  /**
   * Runs pull B up to its first `method(...args)` lookup and holds the answer (read then: nothing
   * cached) while pull A runs to the end and `settled` holds; then lets B go on with that answer.
   */
  async function lateLookup<T extends object, K extends keyof T & string>(
    target: T,
    method: K,
    matches: (args: unknown[]) => boolean,
    pull: () => Promise<Fetched>,
    settled: () => Promise<boolean> = async () => true,
  ): Promise<[Fetched, Fetched]> {
    const original = target[method] as (...args: unknown[]) => Promise<unknown>;
    let entered!: () => void;
    let release!: () => void;
    const reached = new Promise<void>((resolve) => (entered = resolve));
    const gate = new Promise<void>((resolve) => (release = resolve));
    let held = false;
    Object.assign(target, {
      [method]: async (...args: unknown[]) => {
        const answer = await original.apply(target, args);
        if (held || !matches(args)) return answer;
        held = true;
        entered();
        await gate;
        return answer;
      },
    });
    try {
      const b = pull();
      await reached;
      const a = await pull();
      await waitFor(settled);
      release();
      return [a, await b];
    } finally {
      release();
      delete (target as Record<string, unknown>)[method];
    }
  }

  it('by digest: the manifest is fetched once, and the late pull is served from the cache', async () => {
    const path = urls.manifest('late/team/app', child.digest);
    const [a, b] = await lateLookup(
      berth.app.registry.manifests,
      'has',
      (args) => args[1] === child.digest,
      () => registryGet(berth.url, path),
    );
    assert.deepEqual([a.status, b.status], [200, 200]);
    assert.equal(sha256(b.body), child.digest);
    assert.equal(cacheState(b.headers), 'hit');
    assert.equal(upstream.count('GET', urls.manifest('team/app', child.digest)), 1);
  });

  it('by tag: the upstream is asked once where the tag points', async () => {
    const path = urls.manifest('late/team/app', 'v1');
    const [a, b] = await lateLookup(
      berth.app.registry.manifests,
      'digestOfTag',
      (args) => args[1] === 'v1',
      () => registryGet(berth.url, path),
    );
    assert.deepEqual([a.status, b.status], [200, 200]);
    assert.equal(sha256(b.body), image.root.digest);
    assert.equal(upstream.count('HEAD', urls.manifest('team/app', 'v1')), 1);
  });

  it('a blob: the upstream is asked about it once', async () => {
    const path = urls.blob('late/team/app', layer.digest);
    const [a, b] = await lateLookup(
      berth.app.registry.blobs,
      'has',
      (args) => (args[1] as { value: string }).value === layer.digest,
      () => registryGet(berth.url, path),
      async () => /berth_cache_fills_in_flight 0/.test(await metric(berth, 'berth_cache_fills_in_flight')),
    );
    assert.deepEqual([a.status, b.status], [200, 200]);
    assert.equal(sha256(b.body), layer.digest);
    assert.equal(upstream.count('GET', urls.blob('team/app', layer.digest)), 1);
    assert.equal(upstream.count('HEAD', urls.blob('team/app', layer.digest)), 1);
  });
});

async function metric(server: TestServer, name: string): Promise<string> {
  return server.app.metrics.registry.getSingleMetricAsString(name);
}

/** Polls `probe` until true (a bound on a broken run, not a timing assertion). */
async function waitFor(probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(20);
  }
}
