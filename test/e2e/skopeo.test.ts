/**
 * skopeo (Debian's, containers/image) against a real registry process.
 * skopeo copies manifests and blobs byte-for-byte, so everything that goes in
 * from an OCI layout must come back out with identical digests.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Skopeo } from '../support/clients.js';
import { ARTIFACT_TYPE_SBOM, collectDigests, MEDIA_TYPES, resolveRef } from '../support/oci-layout.js';
import { skopeoDriver } from './client-drivers.js';
import { describeResponse, errorCodes, expectsReferrers, getManifest, httpGet, sha256, uniqueRepo, useE2eContext } from './harness.js';
import type { E2eContext } from './harness.js';
import { describeSharedClientScenarios } from './shared-scenarios.js';

describe('skopeo against the registry under test', () => {
  const ctx = useE2eContext('skopeo');

  describeSharedClientScenarios(skopeoDriver, ctx);

  describe('skopeo: OCI layout round trips', () => {
    const skopeo = useSkopeo(ctx);

    it('copies a single-platform image in and back out to a new OCI layout with identical manifest and blob digests', async () => {
      const { fixtures } = ctx();
      await assertLayoutRoundTrip(ctx(), skopeo(), fixtures.refs.image, fixtures.image.manifest.digest, false);
    });

    it('copies a multi-arch index with --all in and back out with identical index, manifest and blob digests', async () => {
      const { fixtures, target } = ctx();
      const repo = await assertLayoutRoundTrip(ctx(), skopeo(), fixtures.refs.index, fixtures.index.index.digest, true);

      const tag = fixtures.refs.index;
      const head = await getManifest(target, repo, tag, 'HEAD');
      assert.equal(head.status, 200, describeResponse(`HEAD /v2/${repo}/manifests/${tag}`, head));
      assert.equal(head.headers.get('content-type'), MEDIA_TYPES.imageIndex);
      assert.equal(head.headers.get('docker-content-digest'), fixtures.index.index.digest);
      for (const image of fixtures.index.images) {
        const child = await getManifest(target, repo, image.manifest.digest);
        assert.equal(child.status, 200, describeResponse(`GET child ${image.platform.architecture}`, child));
        assert.equal(sha256(child.body), image.manifest.digest);
      }
    });
  });

  describe('skopeo: inspect, list-tags and delete', () => {
    const skopeo = useSkopeo(ctx);
    const repo = uniqueRepo('skopeo', 'inspect');

    before(async () => {
      const { fixtures, target } = ctx();
      await skopeo().copy(`oci:${fixtures.dir}:${fixtures.refs.image}`, `docker://${target.host}/${repo}:v1`);
    });

    it('inspect --raw returns the exact manifest bytes that were pushed', async () => {
      const { fixtures, target } = ctx();
      const raw = await skopeo().inspectRaw(`docker://${target.host}/${repo}:v1`);
      assert.equal(sha256(raw), fixtures.image.manifest.digest);
    });

    it('inspect reports the digest, platform and layers of the tagged image', async () => {
      const { fixtures, target } = ctx();
      const info = await skopeo().inspect(`docker://${target.host}/${repo}:v1`);
      assert.equal(info.Digest, fixtures.image.manifest.digest);
      assert.equal(info.Architecture, 'amd64');
      assert.equal(info.Os, 'linux');
      assert.deepEqual(
        info.Layers,
        fixtures.image.layers.map((l) => l.digest),
      );
    });

    it('list-tags lists exactly the tags pushed to the repository', async () => {
      const { fixtures, target } = ctx();
      await skopeo().copy(`oci:${fixtures.dir}:${fixtures.refs.image}`, `docker://${target.host}/${repo}:latest`);
      const tags = await skopeo().listTags(`docker://${target.host}/${repo}`);
      assert.deepEqual([...tags].sort(), ['latest', 'v1']);
    });

    it('delete removes the manifest by digest from that repository only: GET then answers 404 MANIFEST_UNKNOWN', async () => {
      const { fixtures, target } = ctx();
      const digest = fixtures.image.manifest.digest;
      const doomed = uniqueRepo('skopeo', 'doomed');
      await skopeo().copy(`oci:${fixtures.dir}:${fixtures.refs.image}`, `docker://${target.host}/${doomed}:v1`);

      await skopeo().delete(`docker://${target.host}/${doomed}@${digest}`);

      const gone = await getManifest(target, doomed, digest);
      assert.equal(gone.status, 404, describeResponse(`GET /v2/${doomed}/manifests/${digest} after delete`, gone));
      assert.deepEqual(errorCodes(gone), ['MANIFEST_UNKNOWN'], describeResponse('error body', gone));
      const kept = await getManifest(target, repo, digest);
      assert.equal(kept.status, 200, describeResponse(`GET /v2/${repo}/manifests/${digest} (other repo)`, kept));
    });
  });

  describe('skopeo: an OCI 1.1 artifact with a subject', () => {
    const skopeo = useSkopeo(ctx);
    const repo = uniqueRepo('skopeo', 'artifact');

    before(async () => {
      // The subject goes first, as a client attaching an SBOM to an image would do.
      const { fixtures, target } = ctx();
      await skopeo().copy(`oci:${fixtures.dir}:${fixtures.refs.image}`, `docker://${target.host}/${repo}:v1`);
    });

    it('is copied in and back out unchanged (artifactType, empty config, subject)', async () => {
      const { fixtures } = ctx();
      await assertLayoutRoundTrip(ctx(), skopeo(), fixtures.refs.artifact, fixtures.artifact.manifest.digest, false, repo);
    });

    it(
      'is listed in the referrers of its subject with its artifactType and annotations',
      { skip: expectsReferrers() ? false : 'the reference registry (Distribution 2.8) has no referrers API' },
      async () => {
        const { fixtures, target } = ctx();
        const { artifact } = fixtures;
        const url = `${target.url}/v2/${repo}/referrers/${artifact.subject.digest}`;
        const res = await httpGet(url, MEDIA_TYPES.imageIndex);
        assert.equal(res.status, 200, describeResponse(`GET ${url}`, res));
        assert.equal(res.headers.get('content-type'), MEDIA_TYPES.imageIndex, describeResponse(`GET ${url}`, res));
        const index = JSON.parse(res.body.toString('utf8')) as ReferrersIndex;
        assert.equal(index.schemaVersion, 2);
        assert.equal(index.mediaType, MEDIA_TYPES.imageIndex);
        assert.deepEqual(index.manifests, [
          {
            mediaType: MEDIA_TYPES.imageManifest,
            digest: artifact.manifest.digest,
            size: artifact.manifest.size,
            artifactType: ARTIFACT_TYPE_SBOM,
            annotations: artifact.annotations,
          },
        ]);
      },
    );

    it(
      'honours or ignores an artifactType filter on the referrers query, as OCI-Filters-Applied declares',
      { skip: expectsReferrers() ? false : 'the reference registry (Distribution 2.8) has no referrers API' },
      async () => {
        const { fixtures, target } = ctx();
        const { artifact } = fixtures;
        for (const artifactType of [ARTIFACT_TYPE_SBOM, 'application/vnd.example.other']) {
          const query = `?artifactType=${encodeURIComponent(artifactType)}`;
          const url = `${target.url}/v2/${repo}/referrers/${artifact.subject.digest}${query}`;
          const res = await httpGet(url, MEDIA_TYPES.imageIndex);
          assert.equal(res.status, 200, describeResponse(`GET ${url}`, res));
          const index = JSON.parse(res.body.toString('utf8')) as ReferrersIndex;
          // A registry MAY ignore the filter, but then must not claim it in OCI-Filters-Applied.
          const applied = (res.headers.get('oci-filters-applied') ?? '').split(',').map((s) => s.trim());
          const matches = !applied.includes('artifactType') || artifactType === ARTIFACT_TYPE_SBOM;
          const expected = matches ? [artifact.manifest.digest] : [];
          assert.deepEqual(
            index.manifests.map((m) => m.digest),
            expected,
            describeResponse(`GET ${url}`, res),
          );
        }
      },
    );

    it(
      'answers the referrers of a digest nobody refers to with an empty index',
      { skip: expectsReferrers() ? false : 'the reference registry (Distribution 2.8) has no referrers API' },
      async () => {
        const { fixtures, target } = ctx();
        const url = `${target.url}/v2/${repo}/referrers/${fixtures.index.index.digest}`;
        const res = await httpGet(url, MEDIA_TYPES.imageIndex);
        assert.equal(res.status, 200, describeResponse(`GET ${url}`, res));
        const index = JSON.parse(res.body.toString('utf8')) as ReferrersIndex;
        assert.deepEqual(index.manifests, []);
      },
    );
  });
});

interface ReferrersIndex {
  schemaVersion: number;
  mediaType: string;
  manifests: { mediaType: string; digest: string; size: number; artifactType?: string }[];
}

/** A Skopeo wrapper for the enclosing describe, created in before() and disposed in after(). */
function useSkopeo(ctx: () => E2eContext): () => Skopeo {
  let skopeo: Skopeo | undefined;
  before(async () => {
    skopeo = await Skopeo.create([ctx().target.host]);
  });
  after(async () => {
    await skopeo?.dispose();
  });
  return () => {
    assert.ok(skopeo, 'skopeo wrapper was not created');
    return skopeo;
  };
}

/**
 * skopeo copy oci:<fixtures>:<ref> -> docker://HOST/<repo>:<ref> -> oci:<new layout>:out,
 * then asserts the copy-out names `digest` and holds exactly the same blobs
 * (each re-hashed). Returns the repository used.
 */
async function assertLayoutRoundTrip(
  context: E2eContext,
  skopeo: Skopeo,
  layoutRef: string,
  digest: string,
  all: boolean,
  repo = uniqueRepo('skopeo', layoutRef),
): Promise<string> {
  const { fixtures, target } = context;
  const remote = `docker://${target.host}/${repo}:${layoutRef}`;
  const pushed = await skopeo.copy(`oci:${fixtures.dir}:${layoutRef}`, remote, { all });
  assert.equal(pushed, digest, 'skopeo reported a different digest for the push');

  const out = await context.tempDir('copy-out');
  const pulled = await skopeo.copy(remote, `oci:${out}:out`, { all });
  assert.equal(pulled, digest, 'skopeo reported a different digest for the copy-out');
  assert.equal((await resolveRef(out, 'out')).digest, digest);
  assert.deepEqual([...(await collectDigests(out, digest))].sort(), [...(await collectDigests(fixtures.dir, digest))].sort());
  return repo;
}
