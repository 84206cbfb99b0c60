// Sparse manifests: manifests whose references are partly absent from the repository, accepted in
// repositories the configuration names (`registry.sparseIndexes`, `registry.sparseImages`) or when
// a server-side writer asks (`ManifestService.put(..., { allowMissing })`, for the pull-through
// cache).
//
// The spec permits them (v1.1, "Push"): "A registry MAY reject a manifest uploaded to the manifest
// endpoint with descriptors in other fields that reference a manifest or blob that does not exist
// in the registry. When a manifest is rejected for this reason, it MUST result in one or more
// `MANIFEST_BLOB_UNKNOWN` errors." The conformance suite tests them in its `data.sparse` setting
// ("manifest where some descriptors have not been pushed"): an image missing a layer and an index
// whose arm64 entry was never pushed; pulls of what was pushed must work, and "If the manifest is
// not found in the repository, the response code MUST be `404 Not Found`" ("Pulling manifests").

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { urls } from '../../src/api/urls.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { parseDigest } from '../../src/oci/digest.js';
import {
  MT,
  assertError,
  assertErrorBody,
  assertStatus,
  blobOf,
  descriptorOf,
  ociIndex,
  ociManifest,
  prepareOciImage,
  pushBlob,
  pushManifest,
  randomBlob,
  request,
  startTestServer,
  uniqueRepo,
} from './helpers.js';
import type { Blob, Descriptor, HttpResponse, ManifestDoc, PushedImage, TestServer } from './helpers.js';

const hour = 3600 * 1000;
/** A clock the GC test moves forward, so "pushed an hour ago" needs no waiting. */
const clock = { offset: 0, now: () => Date.now() + clock.offset };

let server: TestServer;
before(async () => {
  server = await startTestServer({
    clock,
    config: { registry: { sparseIndexes: ['mirror/**', 'single/*'], sparseImages: ['lazy/**'] } },
  });
});
after(async () => {
  await server.stop();
});

const accept = { Accept: [MT.ociManifest, MT.ociIndex].join(', ') };

function get(repo: string, kind: 'manifests' | 'blobs', ref: string, method: 'GET' | 'HEAD' = 'GET'): Promise<HttpResponse> {
  return request(server.url, method, kind === 'manifests' ? urls.manifest(repo, ref) : urls.blob(repo, ref), { headers: accept });
}

function platform(doc: ManifestDoc, architecture: string): Descriptor {
  return { ...descriptorOf(MT.ociManifest, doc), platform: { architecture, os: 'linux' } };
}

/** An index over an image pushed to `repo` (amd64) and one that was never pushed anywhere (arm64). */
async function sparseIndex(repo: string): Promise<{ present: PushedImage; absent: ManifestDoc; index: ManifestDoc }> {
  const present = await prepareOciImage(server, repo);
  assertStatus(await pushManifest(server, repo, present.manifest.digest, present.manifest.bytes, MT.ociManifest), 201);
  const absent = ociManifest({ config: descriptorOf(MT.ociConfig, randomBlob(20)), layers: [descriptorOf(MT.ociLayer, randomBlob(30))] });
  return { present, absent, index: ociIndex([platform(present.manifest, 'amd64'), platform(absent, 'arm64')]) };
}

/** An image manifest over a config in `repo` and a layer that is not. */
async function imageMissingLayer(repo: string): Promise<{ config: Blob; layer: Blob; manifest: ManifestDoc }> {
  const config = await pushBlob(server, repo, blobOf(JSON.stringify({ os: 'linux', architecture: 'amd64', n: Math.random() })));
  const layer = randomBlob(400);
  return { config, layer, manifest: ociManifest({ config: descriptorOf(MT.ociConfig, config), layers: [descriptorOf(MT.ociLayer, layer)] }) };
}

describe('sparse indexes (registry.sparseIndexes)', () => {
  it('accepts an index listing a child manifest the repository does not hold, and serves what it holds', async () => {
    const repo = `mirror/${uniqueRepo('sp')}`;
    const { present, absent, index } = await sparseIndex(repo);
    assertStatus(await pushManifest(server, repo, 'multi', index.bytes, MT.ociIndex), 201);
    for (const ref of ['multi', index.digest]) {
      const res = await get(repo, 'manifests', ref);
      assertStatus(res, 200);
      assert.ok(res.body.equals(index.bytes), 'the index is served byte for byte (its digest is kept)');
    }
    assertStatus(await get(repo, 'manifests', present.manifest.digest), 200);
    assertStatus(await get(repo, 'blobs', present.layers[0]!.digest), 200);
    // The missing child is not found: 404, as for any manifest the repository does not hold.
    assertError(await get(repo, 'manifests', absent.digest), 404, 'MANIFEST_UNKNOWN');
    assertError(await get(repo, 'manifests', absent.digest, 'HEAD'), 404);
  });

  it('becomes whole when the missing child is pushed later: the index is untouched and serves it', async () => {
    const repo = `mirror/${uniqueRepo('sp')}`;
    const child = await prepareOciImage(server, repo); // blobs pushed, manifest not yet
    const index = ociIndex([platform(child.manifest, 'riscv64')]);
    assertStatus(await pushManifest(server, repo, 'later', index.bytes, MT.ociIndex), 201);
    assertError(await get(repo, 'manifests', child.manifest.digest), 404, 'MANIFEST_UNKNOWN');
    assertStatus(await pushManifest(server, repo, child.manifest.digest, child.manifest.bytes, MT.ociManifest), 201);
    assertStatus(await get(repo, 'manifests', child.manifest.digest), 200);
    const served = await get(repo, 'manifests', 'later');
    assertStatus(served, 200);
    assert.ok(served.body.equals(index.bytes), 'the index keeps its bytes and digest');
    assertStatus(await get(repo, 'blobs', child.layers[0]!.digest), 200);
  });

  it('refuses the same index outside the configured patterns with 400 MANIFEST_BLOB_UNKNOWN naming the child', async () => {
    const repo = uniqueRepo('strict');
    const { absent, index } = await sparseIndex(repo);
    const res = await pushManifest(server, repo, 'multi', index.bytes, MT.ociIndex);
    assertError(res, 400, 'MANIFEST_BLOB_UNKNOWN');
    const [error] = assertErrorBody(res);
    assert.deepEqual((error?.detail as { missing: string[] }).missing, [absent.digest]);
    assertError(await get(repo, 'manifests', 'multi'), 404, 'MANIFEST_UNKNOWN');
  });

  it('matches the patterns with the grants grammar: `*` within one path component, `**` across', async () => {
    const one = `single/${uniqueRepo('sp').replace('/', '-')}`;
    assertStatus(await pushManifest(server, one, 'multi', (await sparseIndex(one)).index.bytes, MT.ociIndex), 201);
    const deeper = `single/${uniqueRepo('sp')}`; // two components under single/: not matched by `single/*`
    assertError(await pushManifest(server, deeper, 'multi', (await sparseIndex(deeper)).index.bytes, MT.ociIndex), 400, 'MANIFEST_BLOB_UNKNOWN');
    const deep = `mirror/a/b/${uniqueRepo('sp')}`;
    assertStatus(await pushManifest(server, deep, 'multi', (await sparseIndex(deep)).index.bytes, MT.ociIndex), 201);
  });

  it('does not excuse the missing layers of an image manifest (that is registry.sparseImages)', async () => {
    const repo = `mirror/${uniqueRepo('sp')}`;
    const { manifest } = await imageMissingLayer(repo);
    assertError(await pushManifest(server, repo, 'img', manifest.bytes, MT.ociManifest), 400, 'MANIFEST_BLOB_UNKNOWN');
  });
});

describe('sparse images (registry.sparseImages)', () => {
  it('accepts an image manifest naming a layer the repository does not hold; the layer is 404 until pushed', async () => {
    const repo = `lazy/${uniqueRepo('sp')}`;
    const { config, layer, manifest } = await imageMissingLayer(repo);
    assertStatus(await pushManifest(server, repo, 'v1', manifest.bytes, MT.ociManifest), 201);
    assertStatus(await get(repo, 'manifests', 'v1'), 200);
    assertStatus(await get(repo, 'blobs', config.digest), 200);
    assertError(await get(repo, 'blobs', layer.digest), 404, 'BLOB_UNKNOWN');
    await pushBlob(server, repo, layer);
    const res = await get(repo, 'blobs', layer.digest);
    assertStatus(res, 200);
    assert.ok(res.body.equals(layer.data));
  });

  it('refuses it elsewhere with 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const repo = uniqueRepo('strict');
    const { layer, manifest } = await imageMissingLayer(repo);
    const res = await pushManifest(server, repo, 'v1', manifest.bytes, MT.ociManifest);
    assertError(res, 400, 'MANIFEST_BLOB_UNKNOWN');
    assert.deepEqual((assertErrorBody(res)[0]?.detail as { missing: string[] }).missing, [layer.digest]);
  });
});

describe('sparse manifests asked for by a server-side writer (ManifestService.put allowMissing)', () => {
  it('stores an index with absent children in any repository and reports which were absent', async () => {
    const repo = uniqueRepo('cache');
    const { absent, index } = await sparseIndex(repo);
    const { manifests } = server.app.registry;
    const reference = { kind: 'digest' as const, digest: parseDigest(index.digest) };
    await assert.rejects(manifests.put(repo, reference, index.bytes, MT.ociIndex), /unknown blob\(s\) or manifest\(s\)/);
    const result = await manifests.put(repo, reference, index.bytes, MT.ociIndex, undefined, undefined, {
      allowMissing: { manifests: true },
      tags: ['upstream'],
    });
    assert.deepEqual(result, { digest: index.digest, subject: undefined, tags: ['upstream'], missing: [absent.digest] });
    assertStatus(await get(repo, 'manifests', 'upstream'), 200);
    assertError(await get(repo, 'manifests', absent.digest), 404, 'MANIFEST_UNKNOWN');
  });

  it('reports nothing missing for a whole manifest', async () => {
    const repo = uniqueRepo('cache');
    const img = await prepareOciImage(server, repo);
    const result = await server.app.registry.manifests.put(repo, { kind: 'tag', tag: 'v1' }, img.manifest.bytes, MT.ociManifest, undefined, undefined, {
      allowMissing: { blobs: true, manifests: true },
    });
    assert.deepEqual(result.missing, []);
  });
});

describe('the registry configuration section', () => {
  it('refuses a pattern outside the repository pattern grammar, naming the field', () => {
    for (const bad of ['Upper/case', 'trailing/', '../up', '']) {
      assert.throws(
        () => loadConfig({ env: {}, overrides: { registry: { sparseIndexes: ['ok/**', bad] } } }),
        (err: unknown) => err instanceof ConfigError && /registry\.sparseIndexes\.1/.test(err.message),
        bad,
      );
    }
    assert.deepEqual(loadConfig({ env: {}, overrides: {} }).registry, { sparseIndexes: [], sparseImages: [] });
  });
});

// Last: GC looks at the whole server.
describe('garbage collection with sparse manifests', () => {
  it('keeps what the present parts reference, and a missing part pushed later', async () => {
    clock.offset = 0;
    const repo = `mirror/${uniqueRepo('gc')}`;
    const { present, index } = await sparseIndex(repo);
    assertStatus(await pushManifest(server, repo, 'multi', index.bytes, MT.ociIndex), 201);
    const lazy = `lazy/${uniqueRepo('gc')}`;
    const { config, layer, manifest } = await imageMissingLayer(lazy);
    assertStatus(await pushManifest(server, lazy, 'v1', manifest.bytes, MT.ociManifest), 201);
    await pushBlob(server, lazy, layer); // the missing layer arrives
    const orphan = await pushBlob(server, uniqueRepo('gc'), randomBlob(123));

    clock.offset = 3 * hour;
    const report = await server.app.registry.collectGarbage({ dryRun: false, graceMs: hour });
    const collected = new Set(report.blobs.map((b) => b.digest));
    assert.ok(collected.has(orphan.digest), 'GC ran and collected an unreferenced blob');
    for (const kept of [present.config.digest, ...present.layers.map((l) => l.digest), config.digest, layer.digest]) {
      assert.ok(!collected.has(kept), `${kept} is referenced and must be kept`);
    }
    assertStatus(await get(repo, 'blobs', present.layers[0]!.digest), 200);
    assertStatus(await get(lazy, 'blobs', layer.digest), 200);
    assertStatus(await get(repo, 'manifests', 'multi'), 200);
  });
});
