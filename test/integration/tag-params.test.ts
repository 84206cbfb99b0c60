// OCI Distribution Spec, next version (main; the conformance suite tests it with OCI_VERSION=dev,
// `apis.manifests.tagParam`) — "Pushing Manifests": `PUT /v2/<name>/manifests/<digest>?tag=a&tag=b`.
//
// The spec text (opencontainers/distribution-spec#600, "Update spec language to support pushing
// multiple tags at once"): "When pushing a manifest by digest, the registry MAY support the pushing
// of tags specified by addition of `tag` query parameters. If a registry supports this, it:
// 1. SHOULD support pushing at least 10 tags per request. 2. MAY return a `414 Request-URI Too
// Long` status if too many tags are included in the request. 3. MUST include an `OCI-Tag` response
// header, in accordance with RFC 9110 (section 5) semantics, for each accepted tag."
// The conformance suite checks each tag in the `OCI-Tag` values (comma-separated or repeated).
// Berth sets every tag of a request, or none of them (one metadata transaction), for sha256 and
// sha512 digests alike; a non-canonical digest can only be tagged this way.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { urls } from '../../src/api/urls.js';
import { maxTagsPerPush } from '../../src/registry/manifests.js';
import { Api } from '../admin/helpers.js';
import { bearer } from '../auth/helpers.js';
import { ownerToken, pushBlob as pushBlobWithToken, Receiver, sha256 as sha256Of, startWebhookServer, waitFor } from '../webhooks/helpers.js';
import {
  MT,
  assertError,
  assertStatus,
  blobOf,
  descriptorOf,
  header,
  jsonBody,
  ociIndex,
  ociManifest,
  prepareOciImage,
  pushBlob,
  pushManifest,
  randomBlob,
  request,
  requireHeader,
  sha512,
  startTestServer,
  uniqueRepo,
} from './helpers.js';
import type { HttpResponse, ManifestDoc, TestServer } from './helpers.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.stop();
});

const accept = { Accept: [MT.ociManifest, MT.ociIndex].join(', ') };

function putWithTags(repo: string, reference: string, doc: ManifestDoc, tags: string[]): Promise<HttpResponse> {
  return request(server.url, 'PUT', urls.manifest(repo, reference, tags), { headers: { 'Content-Type': doc.mediaType }, body: doc.bytes });
}

/** The tags of the `OCI-Tag` field (its lines joined, split at commas, as RFC 9110 reads a list field). */
function ociTags(res: HttpResponse): string[] {
  return (header(res, 'oci-tag') ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

async function tagList(repo: string): Promise<string[]> {
  const res = await request(server.url, 'GET', urls.tags(repo));
  if (res.status === 404) return [];
  assertStatus(res, 200);
  return (jsonBody(res) as { tags: string[] }).tags;
}

async function assertTagServes(repo: string, tag: string, doc: ManifestDoc, digest = doc.digest): Promise<void> {
  const res = await request(server.url, 'GET', urls.manifest(repo, tag), { headers: accept });
  assertStatus(res, 200);
  assert.ok(res.body.equals(doc.bytes), `${res.request}: body must be the pushed manifest`);
  assert.equal(requireHeader(res, 'docker-content-digest'), digest);
}

describe('PUT /v2/<name>/manifests/<digest>?tag=…', () => {
  it('stores the manifest by digest and points every tag at it, naming each in OCI-Tag', async () => {
    const repo = uniqueRepo('tp');
    const img = await prepareOciImage(server, repo);
    const tags = ['1.2.3', '1.2', '1', 'latest'];
    const res = await putWithTags(repo, img.manifest.digest, img.manifest, tags);
    assertStatus(res, 201);
    assert.deepEqual(ociTags(res), tags);
    assert.equal(requireHeader(res, 'docker-content-digest'), img.manifest.digest);
    assert.equal(requireHeader(res, 'location'), urls.manifest(repo, img.manifest.digest));
    assert.deepEqual(await tagList(repo), [...tags].sort());
    for (const tag of tags) await assertTagServes(repo, tag, img.manifest);
  });

  it('tags a manifest pushed by a sha512 digest (which a push by tag cannot: that hashes with sha256)', async () => {
    const repo = uniqueRepo('tp');
    const config = await pushBlob(server, repo, blobOf('{"architecture":"arm64","os":"linux"}', 'sha512'));
    const layer = await pushBlob(server, repo, randomBlob(300, 'sha512'));
    const manifest = ociManifest({ config: descriptorOf(MT.ociConfig, config), layers: [descriptorOf(MT.ociLayer, layer)] });
    const digest512 = sha512(manifest.bytes);
    const child = await putWithTags(repo, digest512, manifest, ['image-512']);
    assertStatus(child, 201);
    assert.deepEqual(ociTags(child), ['image-512']);
    const index = ociIndex([{ ...descriptorOf(MT.ociManifest, { digest: digest512, size: manifest.size }), platform: { architecture: 'arm64', os: 'linux' } }]);
    const index512 = sha512(index.bytes);
    const res = await putWithTags(repo, index512, index, ['tag-param-sha512', 'tag-param-sha512-0']);
    assertStatus(res, 201);
    assert.deepEqual(ociTags(res), ['tag-param-sha512', 'tag-param-sha512-0']);
    assert.equal(requireHeader(res, 'docker-content-digest'), index512);
    await assertTagServes(repo, 'image-512', manifest, digest512);
    await assertTagServes(repo, 'tag-param-sha512', index, index512);
    await assertTagServes(repo, 'tag-param-sha512-0', index, index512);
  });

  it('also takes tag parameters on a push by tag, setting the path tag with them', async () => {
    const repo = uniqueRepo('tp');
    const img = await prepareOciImage(server, repo);
    const res = await putWithTags(repo, 'v1', img.manifest, ['stable', 'v1']);
    assertStatus(res, 201);
    assert.deepEqual(ociTags(res), ['v1', 'stable'], 'each tag once, the path tag first');
    assert.deepEqual(await tagList(repo), ['stable', 'v1']);
  });

  it('names the tag of a plain push by tag in OCI-Tag, and none for a push by digest alone', async () => {
    const repo = uniqueRepo('tp');
    const img = await prepareOciImage(server, repo);
    const byTag = await pushManifest(server, repo, 'only', img.manifest.bytes, MT.ociManifest);
    assertStatus(byTag, 201);
    assert.deepEqual(ociTags(byTag), ['only']);
    const other = await prepareOciImage(server, repo);
    const byDigest = await pushManifest(server, repo, other.manifest.digest, other.manifest.bytes, MT.ociManifest);
    assertStatus(byDigest, 201);
    assert.equal(header(byDigest, 'oci-tag'), undefined);
  });

  it('moves tags that pointed at another manifest, all together', async () => {
    const repo = uniqueRepo('tp');
    const first = await prepareOciImage(server, repo);
    assertStatus(await putWithTags(repo, first.manifest.digest, first.manifest, ['a', 'b']), 201);
    const second = await prepareOciImage(server, repo);
    assertStatus(await putWithTags(repo, second.manifest.digest, second.manifest, ['b', 'c', 'a']), 201);
    for (const tag of ['a', 'b', 'c']) await assertTagServes(repo, tag, second.manifest);
  });

  it('sends a repeated tag once', async () => {
    const repo = uniqueRepo('tp');
    const img = await prepareOciImage(server, repo);
    const res = await putWithTags(repo, img.manifest.digest, img.manifest, ['dup', 'dup', 'other', 'dup']);
    assertStatus(res, 201);
    assert.deepEqual(ociTags(res), ['dup', 'other']);
  });

  it(`accepts ${maxTagsPerPush} tags of the longest form in one request (the spec asks for at least 10)`, async () => {
    const repo = uniqueRepo('tp');
    const img = await prepareOciImage(server, repo);
    const tags = Array.from({ length: maxTagsPerPush }, (_, i) => `${String(i).padStart(3, '0')}${'x'.repeat(125)}`);
    const res = await putWithTags(repo, img.manifest.digest, img.manifest, tags);
    assertStatus(res, 201);
    assert.deepEqual(ociTags(res), tags);
    assert.equal((await tagList(repo)).length, maxTagsPerPush);
  });

  describe('all tags or none', () => {
    it('refuses the whole push with 400 MANIFEST_INVALID when one tag is invalid, writing nothing', async () => {
      const repo = uniqueRepo('tp');
      const img = await prepareOciImage(server, repo);
      for (const bad of ['-dash', '.INVALID_MANIFEST_NAME', 'a'.repeat(129), 'has!bang', '']) {
        const res = await putWithTags(repo, img.manifest.digest, img.manifest, ['good', bad, 'also-good']);
        assertError(res, 400, 'MANIFEST_INVALID');
        assert.equal(header(res, 'oci-tag'), undefined);
      }
      assert.deepEqual(await tagList(repo), []);
      assertError(await request(server.url, 'GET', urls.manifest(repo, img.manifest.digest), { headers: accept }), 404, 'MANIFEST_UNKNOWN');
    });

    it(`answers more than ${maxTagsPerPush} tags with 414, writing nothing (the spec's "MAY return a 414 Request-URI Too Long")`, async () => {
      const repo = uniqueRepo('tp');
      const img = await prepareOciImage(server, repo);
      const tags = Array.from({ length: maxTagsPerPush + 1 }, (_, i) => `t${i}`);
      const res = await putWithTags(repo, img.manifest.digest, img.manifest, tags);
      assertError(res, 414, 'UNSUPPORTED');
      assert.deepEqual(await tagList(repo), []);
    });

    it('sets no tag, and moves none, when the manifest itself is refused (MANIFEST_BLOB_UNKNOWN)', async () => {
      const repo = uniqueRepo('tp');
      const kept = await prepareOciImage(server, repo);
      assertStatus(await putWithTags(repo, kept.manifest.digest, kept.manifest, ['existing']), 201);
      const config = await pushBlob(server, repo, blobOf('{"n":"broken"}'));
      const broken = ociManifest({ config: descriptorOf(MT.ociConfig, config), layers: [descriptorOf(MT.ociLayer, randomBlob(40))] });
      const res = await putWithTags(repo, broken.digest, broken, ['new-one', 'existing', 'new-two']);
      assertError(res, 400, 'MANIFEST_BLOB_UNKNOWN');
      assert.deepEqual(await tagList(repo), ['existing']);
      await assertTagServes(repo, 'existing', kept.manifest);
    });

    it('refuses a push whose digest does not match the body before setting any tag', async () => {
      const repo = uniqueRepo('tp');
      const img = await prepareOciImage(server, repo);
      const wrong = `sha256:${'0'.repeat(64)}`;
      assertError(await putWithTags(repo, wrong, img.manifest, ['x', 'y']), 400, 'DIGEST_INVALID');
      assert.deepEqual(await tagList(repo), []);
    });
  });

  it('records one push per tag in the repository history', async () => {
    const repo = uniqueRepo('tp');
    const img = await prepareOciImage(server, repo);
    assertStatus(await putWithTags(repo, img.manifest.digest, img.manifest, ['h1', 'h2']), 201);
    const history = await server.app.registry.reads.history(repo, { limit: 10 });
    assert.deepEqual(history.map((p) => p.tag).sort(), ['h1', 'h2']);
    assert.ok(history.every((p) => p.digest === img.manifest.digest));
  });
});

describe('tag parameters and webhooks', () => {
  let hooked: TestServer;
  let receiver: Receiver;

  before(async () => {
    hooked = await startWebhookServer();
    receiver = await Receiver.start();
    const owner = await Api.asOwner(hooked.url);
    const res = await owner.post('/webhooks', { name: 'tags', url: `${receiver.url}/hook/tags` });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  });
  after(async () => {
    await hooked.stop();
    await receiver.close();
  });

  it('delivers one push event per tag of the request', async () => {
    const repo = 'hooks/tagged';
    const token = await ownerToken(hooked.url, [`repository:${repo}:pull,push`]);
    const config = await pushBlobWithToken(hooked.url, token, repo, Buffer.from('{"os":"linux","architecture":"amd64","n":"hook"}'));
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.ociConfig, ...config }, layers: [] }));
    const digest = sha256Of(manifest);
    const res = await fetch(`${hooked.url}${urls.manifest(repo, digest, ['one', 'two', 'three'])}`, {
      method: 'PUT',
      headers: { ...bearer(token), 'Content-Type': MT.ociManifest },
      body: manifest,
    });
    assert.equal(res.status, 201, await res.text());
    assert.equal(res.headers.get('oci-tag'), 'one, two, three');
    const pushes = await waitFor('three push deliveries', () => {
      const found = receiver.received.filter((r) => r.json?.action === 'push' && r.json?.target?.digest === digest);
      return found.length >= 3 && found;
    });
    assert.deepEqual(pushes.map((r) => r.json.target.tag as string).sort(), ['one', 'three', 'two']);
    assert.equal(new Set(pushes.map((r) => r.json.id as string)).size, 3, 'three distinct events');
  });
});
