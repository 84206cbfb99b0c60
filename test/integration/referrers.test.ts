// OCI Distribution Spec v1.1 — Listing Referrers (end-12a, end-12b) and the
// OCI-Subject response header on manifest push.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  MT,
  assertError,
  assertStatus,
  descriptorOf,
  header,
  jsonBody,
  ociIndex,
  prepareOciImage,
  pushArtifact,
  pushManifest,
  pushOciImage,
  request,
  requireHeader,
  sha256,
  sha512,
  startTestServer,
  uniqueRepo,
} from './helpers.js';
import type { Descriptor, HttpResponse, ManifestDoc, TestServer } from './helpers.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.stop();
});

interface Index {
  schemaVersion: number;
  mediaType: string;
  manifests: Descriptor[];
}

function referrersIndex(res: HttpResponse): Index {
  assertStatus(res, 200);
  assert.equal(requireHeader(res, 'content-type').split(';')[0]?.trim(), MT.ociIndex);
  const body = jsonBody(res) as Partial<Index>;
  assert.equal(body.schemaVersion, 2, 'referrers response must be an image index with schemaVersion 2');
  assert.equal(body.mediaType, MT.ociIndex);
  assert.ok(Array.isArray(body.manifests), '"manifests" must be an array');
  return body as Index;
}

async function referrers(repo: string, digest: string, query = ''): Promise<HttpResponse> {
  return request(server.url, 'GET', `/v2/${repo}/referrers/${digest}${query}`);
}

function byDigest(list: Descriptor[]): Map<string, Descriptor> {
  return new Map(list.map((d) => [d.digest, d]));
}

describe('GET /v2/<name>/referrers/<digest>', () => {
  let repo: string;
  let subject: ManifestDoc;
  let sbom: ManifestDoc;
  let sig: ManifestDoc;
  let noType: ManifestDoc;
  const sbomAnnotations = { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z', 'org.example.sbom.format': 'json' };

  before(async () => {
    repo = uniqueRepo('ref');
    subject = (await pushOciImage(server, repo, 'latest')).manifest;
    const subj = descriptorOf(MT.ociManifest, subject);
    sbom = (await pushArtifact(server, repo, subj, { artifactType: 'application/vnd.example.sbom.v1', annotations: sbomAnnotations })).manifest;
    sig = (await pushArtifact(server, repo, subj, { artifactType: 'application/vnd.example.signature.v1' })).manifest;
    // No artifactType: the descriptor must fall back to config.mediaType.
    noType = (await pushArtifact(server, repo, subj, { configMediaType: 'application/vnd.example.config.v1+json', annotations: { k: 'v' } })).manifest;
  });

  it('returns 200 with an OCI image index (application/vnd.oci.image.index.v1+json)', async () => {
    referrersIndex(await referrers(repo, subject.digest));
  });

  it('lists a descriptor for every manifest whose subject is <digest>', async () => {
    const idx = referrersIndex(await referrers(repo, subject.digest));
    assert.deepEqual(idx.manifests.map((d) => d.digest).sort(), [sbom.digest, sig.digest, noType.digest].sort());
  });

  it('gives each descriptor the referrer mediaType, digest and size', async () => {
    const m = byDigest(referrersIndex(await referrers(repo, subject.digest)).manifests);
    for (const doc of [sbom, sig, noType]) {
      const d = m.get(doc.digest);
      assert.ok(d !== undefined);
      assert.equal(d.mediaType, MT.ociManifest);
      assert.equal(d.size, doc.size);
    }
  });

  it('copies artifactType and all annotations of the referrer into its descriptor', async () => {
    const m = byDigest(referrersIndex(await referrers(repo, subject.digest)).manifests);
    const d = m.get(sbom.digest);
    assert.ok(d !== undefined);
    assert.equal(d.artifactType, 'application/vnd.example.sbom.v1');
    assert.deepEqual(d.annotations, sbomAnnotations);
    assert.equal(m.get(sig.digest)?.artifactType, 'application/vnd.example.signature.v1');
  });

  it('sets artifactType to the config mediaType when the referrer has no artifactType', async () => {
    const d = byDigest(referrersIndex(await referrers(repo, subject.digest)).manifests).get(noType.digest);
    assert.ok(d !== undefined);
    assert.equal(d.artifactType, 'application/vnd.example.config.v1+json');
    assert.deepEqual(d.annotations, { k: 'v' });
  });

  it('returns an empty manifests list when nothing refers to <digest>', async () => {
    const idx = referrersIndex(await referrers(repo, sbom.digest));
    assert.deepEqual(idx.manifests, []);
  });

  it('returns an empty manifests list for a digest the registry has never seen', async () => {
    const idx = referrersIndex(await referrers(repo, sha256('never seen')));
    assert.deepEqual(idx.manifests, []);
  });

  it('does not answer 404 for a repository that does not exist (it must not return 404)', async () => {
    const idx = referrersIndex(await referrers(uniqueRepo('ghost'), sha256('x')));
    assert.deepEqual(idx.manifests, []);
  });

  it('answers an invalid <digest> with 400 DIGEST_INVALID', async () => {
    assertError(await referrers(repo, 'sha256:not-a-digest'), 400, 'DIGEST_INVALID');
    assertError(await referrers(repo, 'latest'), 400, 'DIGEST_INVALID');
  });

  it('lists referrers pushed before their subject existed', async () => {
    const r = uniqueRepo('ref');
    // Build the subject (blobs only), push the referrer, then the subject manifest.
    const later = await prepareOciImage(server, r);
    const art = await pushArtifact(server, r, descriptorOf(MT.ociManifest, later.manifest), { artifactType: 'application/vnd.example.early' });
    assertStatus(await pushManifest(server, r, 'late', later.manifest.bytes, MT.ociManifest), 201);
    const idx = referrersIndex(await referrers(r, later.manifest.digest));
    assert.deepEqual(
      idx.manifests.map((d) => d.digest),
      [art.manifest.digest],
    );
  });

  it('is scoped to the repository: referrers pushed to another repository are not listed', async () => {
    const other = uniqueRepo('ref');
    await pushArtifact(server, other, descriptorOf(MT.ociManifest, subject), { artifactType: 'application/vnd.example.elsewhere' });
    const idx = referrersIndex(await referrers(repo, subject.digest));
    assert.ok(!idx.manifests.some((d) => d.artifactType === 'application/vnd.example.elsewhere'));
  });

  it('no longer lists a referrer after it is deleted', async () => {
    const r = uniqueRepo('ref');
    const subj = (await pushOciImage(server, r, 'latest')).manifest;
    const a = await pushArtifact(server, r, descriptorOf(MT.ociManifest, subj), { artifactType: 'application/vnd.example.a' });
    const b = await pushArtifact(server, r, descriptorOf(MT.ociManifest, subj), { artifactType: 'application/vnd.example.b' });
    assertStatus(await request(server.url, 'DELETE', `/v2/${r}/manifests/${a.manifest.digest}`), 202);
    const idx = referrersIndex(await referrers(r, subj.digest));
    assert.deepEqual(
      idx.manifests.map((d) => d.digest),
      [b.manifest.digest],
    );
  });

  it('lists an image index that has a subject; without artifactType the descriptor omits it', async () => {
    const r = uniqueRepo('ref');
    const subj = (await pushOciImage(server, r, 'latest')).manifest;
    const child = (await pushOciImage(server, r, 'child')).manifest;
    const withType = ociIndex([descriptorOf(MT.ociManifest, child)], {
      subject: descriptorOf(MT.ociManifest, subj),
      artifactType: 'application/vnd.example.bundle',
      annotations: { idx: '1' },
    });
    const withoutType = ociIndex([descriptorOf(MT.ociManifest, child)], { subject: descriptorOf(MT.ociManifest, subj), annotations: { idx: '2' } });
    for (const doc of [withType, withoutType]) {
      const res = await pushManifest(server, r, doc.digest, doc.bytes, MT.ociIndex);
      assertStatus(res, 201);
      assert.equal(requireHeader(res, 'oci-subject'), subj.digest);
    }
    const m = byDigest(referrersIndex(await referrers(r, subj.digest)).manifests);
    const t = m.get(withType.digest);
    const u = m.get(withoutType.digest);
    assert.ok(t !== undefined && u !== undefined, 'both indexes must be listed');
    assert.equal(t.mediaType, MT.ociIndex);
    assert.equal(t.size, withType.size);
    assert.equal(t.artifactType, 'application/vnd.example.bundle');
    assert.deepEqual(t.annotations, { idx: '1' });
    assert.equal(u.mediaType, MT.ociIndex);
    assert.equal('artifactType' in u, false, 'an index without artifactType must have no artifactType in its descriptor');
    assert.deepEqual(u.annotations, { idx: '2' });
  });

  it('accepts a sha512 subject digest', async () => {
    const idx = referrersIndex(await referrers(repo, sha512('whatever')));
    assert.deepEqual(idx.manifests, []);
  });
});

describe('GET /v2/<name>/referrers/<digest>?artifactType=<artifactType>', () => {
  let repo: string;
  let subject: ManifestDoc;
  let sbom: ManifestDoc;

  before(async () => {
    repo = uniqueRepo('ref');
    subject = (await pushOciImage(server, repo, 'latest')).manifest;
    const subj = descriptorOf(MT.ociManifest, subject);
    sbom = (await pushArtifact(server, repo, subj, { artifactType: 'application/vnd.example.sbom.v1' })).manifest;
    await pushArtifact(server, repo, subj, { artifactType: 'application/vnd.example.signature.v1' });
    await pushArtifact(server, repo, subj, { configMediaType: 'application/vnd.example.cfg' });
  });

  it('returns only descriptors of that artifactType and sets OCI-Filters-Applied: artifactType', async () => {
    const res = await referrers(repo, subject.digest, `?artifactType=${encodeURIComponent('application/vnd.example.sbom.v1')}`);
    const idx = referrersIndex(res);
    assert.deepEqual(
      idx.manifests.map((d) => d.digest),
      [sbom.digest],
    );
    assert.equal(header(res, 'oci-filters-applied'), 'artifactType');
  });

  it('matches the config mediaType fallback of referrers without artifactType', async () => {
    const res = await referrers(repo, subject.digest, `?artifactType=${encodeURIComponent('application/vnd.example.cfg')}`);
    const idx = referrersIndex(res);
    assert.equal(idx.manifests.length, 1);
    assert.equal(idx.manifests[0]?.artifactType, 'application/vnd.example.cfg');
  });

  it('returns an empty list (still with OCI-Filters-Applied) when nothing matches', async () => {
    const res = await referrers(repo, subject.digest, '?artifactType=application%2Fvnd.example.none');
    assert.deepEqual(referrersIndex(res).manifests, []);
    assert.equal(header(res, 'oci-filters-applied'), 'artifactType');
  });

  it('does not set OCI-Filters-Applied when no filter is requested', async () => {
    const res = await referrers(repo, subject.digest);
    assert.equal(referrersIndex(res).manifests.length, 3);
    assert.equal(header(res, 'oci-filters-applied'), undefined);
  });
});

describe('PUT /v2/<name>/manifests/<reference> with a subject', () => {
  it('answers with OCI-Subject: <subject digest>', async () => {
    const repo = uniqueRepo('ref');
    const subject = (await pushOciImage(server, repo, 'latest')).manifest;
    const { res } = await pushArtifact(server, repo, descriptorOf(MT.ociManifest, subject), { artifactType: 'application/vnd.example.x' });
    assert.equal(requireHeader(res, 'oci-subject'), subject.digest);
  });

  it('does not send OCI-Subject for a manifest without a subject', async () => {
    const repo = uniqueRepo('ref');
    const img = await prepareOciImage(server, repo);
    const res = await pushManifest(server, repo, 'plain', img.manifest.bytes, MT.ociManifest);
    assertStatus(res, 201);
    assert.equal(header(res, 'oci-subject'), undefined);
  });
});
