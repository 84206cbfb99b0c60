/**
 * Last-pull based eviction: a rule with `evictAfterMs` drops, in its background sweep, the cached
 * manifests not pulled within it (tags with them); GC then removes their blobs like any
 * unreferenced content. What was pulled recently stays; an evicted image is fetched again on its
 * next pull.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { urls } from '../../src/api/urls.js';
import { parseDigest } from '../../src/oci/digest.js';
import { makeImage } from '../import/fixtures.js';
import type { ReferenceRegistry } from '../support/reference-registry.js';
import type { TestServer } from '../support/server.js';
import { cacheState, ManualClock, manifestPath, publish, registryGet, startCacheServer, startUpstream } from './helpers.js';

const hour = 3600 * 1000;

describe('pull-through cache: eviction by last pull', () => {
  let upstream: ReferenceRegistry;
  let berth: TestServer;
  const clock = new ManualClock();

  before(async () => {
    upstream = await startUpstream();
    berth = await startCacheServer({
      clock,
      rules: [{ name: 'dist', prefix: 'dist', upstream: { url: upstream.url }, evictAfterMs: 24 * hour }],
      // Sweeps fall due as the test's clock moves; the runner looks every 100 ms.
      cache: { eviction: { intervalMs: 100 } },
    });
  });

  after(async () => {
    await berth?.stop();
    await upstream?.stop();
  });

  it('evicts what was not pulled within evictAfterMs, keeps what was, and GC removes the evicted blobs', async () => {
    const old = makeImage({ platforms: 0 });
    const recent = makeImage({ platforms: 0 });
    await publish(upstream, 'team/old', 'v1', old);
    await publish(upstream, 'team/recent', 'v1', recent);
    for (const [repository, image] of [
      ['dist/team/old', old],
      ['dist/team/recent', recent],
    ] as const) {
      assert.equal((await registryGet(berth.url, manifestPath(repository, 'v1'))).status, 200);
      for (const blob of image.blobs) assert.equal((await registryGet(berth.url, urls.blob(repository, blob.digest))).status, 200);
    }

    // The rule's sweep is scheduled (one interval after the runner first saw the rule) before time moves.
    await waitFor(async () => (await berth.app.metadata.cache.sweeps.get('dist')) !== undefined);
    clock.advance(20 * hour);
    // Pulled again (by digest, as containerd does after resolving): its clock restarts.
    assert.equal(cacheState((await registryGet(berth.url, manifestPath('dist/team/recent', recent.root.digest))).headers), 'hit');
    clock.advance(5 * hour);

    const manifests = berth.app.registry.manifests;
    // This clock stands still between moves. A sweep that began before the move above finishes after
    // it and falls due again one interval later, which a still clock never reaches: so the wait lets
    // the clock run on, 100 ms a poll (the recent image has 4 hours of slack, 144,000 polls away).
    await waitFor(async () => {
      clock.advance(100);
      return !(await manifests.has('dist/team/old', old.root.digest));
    });
    assert.equal(await manifests.digestOfTag('dist/team/old', 'v1'), undefined, 'its tag went with it');
    assert.equal(await manifests.has('dist/team/recent', recent.root.digest), true);
    const evicted = await berth.app.metrics.registry.getSingleMetricAsString('berth_cache_evictions_total');
    assert.match(evicted, /berth_cache_evictions_total\{rule="dist"\} 1/);

    const report = await berth.app.registry.collectGarbage({ dryRun: false, graceMs: 0 });
    const removed = new Set(report.blobs.map((b) => b.digest));
    for (const blob of old.blobs) assert.ok(removed.has(blob.digest), `${blob.digest} collected`);
    for (const blob of recent.blobs) {
      assert.ok(!removed.has(blob.digest));
      assert.equal(await berth.app.registry.blobs.has('dist/team/recent', parseDigest(blob.digest)), true);
    }

    // The evicted image comes back on its next pull.
    const again = await registryGet(berth.url, manifestPath('dist/team/old', 'v1'));
    assert.equal(again.status, 200);
    assert.equal(cacheState(again.headers), 'miss');
    assert.equal(again.headers.get('docker-content-digest'), old.root.digest);
  });
});

/** Polls `probe` until true (a bound on a broken run, not a timing assertion). */
async function waitFor(probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the eviction sweep');
    await sleep(50);
  }
}
