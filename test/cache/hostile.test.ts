/**
 * An upstream that lies or pushes back (the import tests' hostile registry): a blob whose bytes do
 * not match its digest is cut off before the client has it all and nothing is cached; a manifest
 * that does not match its digest is refused; `429` with `Retry-After` is honoured (the upstream is
 * left alone until then, cached tags are served stale, and an uncached pull is told to wait).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { urls } from '../../src/api/urls.js';
import { parseDigest } from '../../src/oci/digest.js';
import { makeImage, sha256 } from '../import/fixtures.js';
import { startHostileRegistry, type HostileRegistry } from '../import/hostile-registry.js';
import type { TestServer } from '../support/server.js';
import { cacheState, ManualClock, manifestPath, registryGet, startCacheServer } from './helpers.js';

describe('pull-through cache: a hostile upstream', () => {
  let upstream: HostileRegistry;
  let berth: TestServer;
  const clock = new ManualClock();
  const image = makeImage({ platforms: 0, layers: 1, layerBytes: 1024 * 1024 });
  const layer = image.blobs.find((b) => b.size === 1024 * 1024) as (typeof image.blobs)[0];

  before(async () => {
    upstream = await startHostileRegistry();
    upstream.serve('team/app', image, ['v1']);
    berth = await startCacheServer({
      clock,
      rules: [{ name: 'evil', prefix: 'evil', upstream: { url: upstream.url }, tagFreshnessMs: 60_000, staleIfErrorMs: 3_600_000 }],
    });
  });

  after(async () => {
    await berth?.stop();
    await upstream?.stop();
  });

  it('cuts off a blob whose bytes do not match its digest, and caches nothing', async () => {
    const forged = Buffer.from(layer.bytes);
    forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 0xff;
    upstream.intercept = (req, res, path) => {
      if (path !== urls.blob('team/app', layer.digest) || req.method !== 'GET') return false;
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': forged.length, 'Docker-Content-Digest': layer.digest });
      res.end(forged);
      return true;
    };
    try {
      for (let attempt = 1; attempt <= 2; attempt++) {
        const res = await request(`${berth.url}${urls.blob('evil/team/app', layer.digest)}`);
        assert.equal(res.statusCode, 200, 'the response started streaming before the digest was known');
        const received: Buffer[] = [];
        await assert.rejects(async () => {
          for await (const chunk of res.body) received.push(chunk as Buffer);
        }, 'the client connection is aborted');
        assert.ok(Buffer.concat(received).length < layer.size, 'the client never got the whole (forged) body');
        assert.equal(await berth.app.registry.blobs.has('evil/team/app', parseDigest(layer.digest)), false, 'nothing cached');
      }
      assert.equal(upstream.count('GET', urls.blob('team/app', layer.digest)), 2, 'each pull asked again: nothing was kept');
    } finally {
      upstream.intercept = undefined;
    }
    // Once the upstream is honest, the blob is cached.
    const honest = await registryGet(berth.url, urls.blob('evil/team/app', layer.digest));
    assert.equal(honest.status, 200);
    assert.equal(sha256(honest.body), layer.digest);
  });

  it('refuses a manifest whose bytes do not match its digest', async () => {
    const forged = Buffer.from(image.root.bytes.toString('utf8').replace('"schemaVersion":2', '"schemaVersion":2 '));
    upstream.intercept = (req, res, path) => {
      if (path !== urls.manifest('team/app', image.root.digest)) return false;
      res.writeHead(200, { 'Content-Type': image.root.mediaType, 'Content-Length': forged.length });
      res.end(req.method === 'HEAD' ? undefined : forged);
      return true;
    };
    try {
      const res = await registryGet(berth.url, manifestPath('evil/team/app', image.root.digest));
      assert.equal(res.status, 502, res.body.toString());
      assert.equal(JSON.parse(res.body.toString()).errors[0].code, 'MANIFEST_INVALID');
      assert.match(JSON.parse(res.body.toString()).errors[0].message, /corrupt or tampered with/);
      assert.equal(await berth.app.registry.manifests.has('evil/team/app', image.root.digest), false);
      // By tag: HEAD names the digest, the manifest fetched by it does not match: refused as well.
      const byTag = await registryGet(berth.url, manifestPath('evil/team/app', 'v1'));
      assert.equal(byTag.status, 502);
      assert.equal(await berth.app.registry.manifests.digestOfTag('evil/team/app', 'v1'), undefined);
    } finally {
      upstream.intercept = undefined;
    }
  });

  it('honours 429 with Retry-After: serves the cached tag stale, tells an uncached pull to wait, and leaves the upstream alone meanwhile', async () => {
    const cached = await registryGet(berth.url, manifestPath('evil/team/app', 'v1'));
    assert.equal(cached.status, 200, cached.body.toString());
    const other = makeImage({ platforms: 0 });
    upstream.serve('team/other', other, ['v1']);

    let limited = 0;
    upstream.intercept = (_req, res, path) => {
      if (!path.startsWith('/v2/team/')) return false;
      limited++;
      res.writeHead(429, { 'Retry-After': '120', 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'slow down' }] }));
      return true;
    };
    try {
      clock.advance(5 * 60_000);
      const stale = await registryGet(berth.url, manifestPath('evil/team/app', 'v1'));
      assert.equal(stale.status, 200);
      assert.equal(cacheState(stale.headers), 'stale');
      assert.equal(stale.headers.get('docker-content-digest'), image.root.digest);
      assert.equal(limited, 1);

      const uncached = await registryGet(berth.url, manifestPath('evil/team/other', 'v1'));
      assert.equal(uncached.status, 429);
      assert.equal(JSON.parse(uncached.body.toString()).errors[0].code, 'TOOMANYREQUESTS');
      const wait = Number(uncached.headers.get('retry-after'));
      assert.ok(wait > 0 && wait <= 120, `Retry-After ${wait}`);
      assert.equal(limited, 1, 'the upstream was not asked again before its Retry-After');
      const rule = await berth.app.services.cache.getRule('evil');
      assert.ok(rule.state.upstreamBlockedUntil !== null);

      // After the wait the upstream is asked again.
      upstream.intercept = undefined;
      clock.advance(121_000);
      const later = await registryGet(berth.url, manifestPath('evil/team/other', 'v1'));
      assert.equal(later.status, 200, later.body.toString());
      assert.equal(cacheState(later.headers), 'miss');
    } finally {
      upstream.intercept = undefined;
    }
  });
});
