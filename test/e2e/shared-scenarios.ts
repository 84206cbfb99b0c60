/**
 * Scenarios every supported client can perform, written once and registered
 * per client by skopeo.test.ts and podman.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Skopeo } from '../support/clients.js';
import { MEDIA_TYPES } from '../support/oci-layout.js';
import type { ImageFixture } from '../support/oci-layout.js';
import type { ClientDriver, DriverFactory } from './client-drivers.js';
import { describeResponse, getManifest, httpGet, sha256, uniqueRepo } from './harness.js';
import type { E2eContext, Target } from './harness.js';

export function describeSharedClientScenarios(factory: DriverFactory, ctx: () => E2eContext): void {
  describeSingleImageRoundTrip(factory, ctx);
  describeMultiArchPull(factory, ctx);
}

/** Push from a layout, pull back by digest, list tags, copy to another tag and repository. */
function describeSingleImageRoundTrip(factory: DriverFactory, ctx: () => E2eContext): void {
  describe(`${factory.name}: a single-platform image`, () => {
    let client: ClientDriver | undefined;
    const repo = uniqueRepo(factory.name, 'single');
    const otherRepo = uniqueRepo(factory.name, 'single-copy');
    /** Set by the push test; later tests in this suite build on it. */
    let pushed: string | undefined;

    before(async () => {
      client = await factory.create(ctx().target.host);
    });
    after(async () => {
      await client?.dispose();
    });
    const use = (): { client: ClientDriver; target: Target; image: ImageFixture; digest: string } => {
      assert.ok(client, 'client driver was not created');
      assert.ok(pushed, 'depends on the push test, which did not complete');
      return { client, target: ctx().target, image: ctx().fixtures.image, digest: pushed };
    };

    it('is pushed from an OCI layout, and the registry serves the tag with the digest the client reported', async () => {
      assert.ok(client);
      const { target, fixtures } = ctx();
      pushed = await client.pushFromLayout(fixtures.dir, fixtures.refs.image, `${target.host}/${repo}:v1`);
      assert.match(pushed, /^sha256:[a-f0-9]{64}$/);
      if (client.preservesManifestBytes) assert.equal(pushed, fixtures.image.manifest.digest);

      const head = await getManifest(target, repo, 'v1', 'HEAD');
      assert.equal(head.status, 200, describeResponse(`HEAD /v2/${repo}/manifests/v1`, head));
      assert.equal(head.headers.get('docker-content-digest'), pushed);
      await assertManifestByDigest(target, repo, pushed, fixtures.image.config.digest);
    });

    it('is pulled back by digest with the same manifest digest and the same config (image ID)', async () => {
      const { client, target, image, digest } = use();
      const pulled = await client.pull(`${target.host}/${repo}@${digest}`);
      assert.ok(pulled.manifestDigests.includes(digest), `pulled ${pulled.manifestDigests.join(', ')}, want ${digest}`);
      assert.equal(pulled.configDigest, image.config.digest);
    });

    it('is tagged again within the repository, and both tags are listed', async () => {
      const { client, target, image, digest } = use();
      await client.copyWithinRegistry(`${target.host}/${repo}@${digest}`, `${target.host}/${repo}:v2`);
      const v2 = await resolveTag(target, repo, 'v2', image.config.digest);
      if (client.preservesManifestBytes) assert.equal(v2, digest);
      assert.deepEqual((await client.listTags(`${target.host}/${repo}`)).sort(), ['v1', 'v2']);
    });

    it('is copied into a second repository of the same registry and resolves there to the same image', async () => {
      const { client, target, image, digest } = use();
      await client.copyWithinRegistry(`${target.host}/${repo}@${digest}`, `${target.host}/${otherRepo}:copy`);
      const copied = await resolveTag(target, otherRepo, 'copy', image.config.digest);
      if (client.preservesManifestBytes) assert.equal(copied, digest);
      assert.deepEqual(await client.listTags(`${target.host}/${otherRepo}`), ['copy']);
    });
  });
}

/** A multi-arch index is seeded with skopeo (`--all`); each client pulls one platform out of it. */
function describeMultiArchPull(factory: DriverFactory, ctx: () => E2eContext): void {
  describe(`${factory.name}: one platform of a multi-arch index`, () => {
    let client: ClientDriver | undefined;
    const repo = uniqueRepo(factory.name, 'multiarch');

    before(async () => {
      const { target, fixtures } = ctx();
      client = await factory.create(target.host);
      const seeder = await Skopeo.create([target.host]);
      try {
        const src = `oci:${fixtures.dir}:${fixtures.refs.index}`;
        await seeder.copy(src, `docker://${target.host}/${repo}:multi`, { all: true });
      } finally {
        await seeder.dispose();
      }
    });
    after(async () => {
      await client?.dispose();
    });

    for (const arch of ['amd64', 'arm64']) {
      it(`is pulled by the index digest for linux/${arch}, yielding that platform's manifest and config`, async () => {
        assert.ok(client);
        const { target, fixtures } = ctx();
        const image = fixtures.index.images.find((img) => img.platform.architecture === arch);
        assert.ok(image, `fixture has no ${arch} image`);
        const indexDigest = fixtures.index.index.digest;
        const pulled = await client.pull(`${target.host}/${repo}@${indexDigest}`, image.platform);
        assert.ok(
          pulled.manifestDigests.includes(image.manifest.digest),
          `pulled ${pulled.manifestDigests.join(', ')}, want the ${arch} manifest ${image.manifest.digest}`,
        );
        assert.equal(pulled.configDigest, image.config.digest);
      });
    }
  });
}

// ---------------------------------------------------------------------------

/**
 * GET the manifest by digest: 200, body hashes to the digest, OCI content
 * type, and its config blob is served with the expected digest.
 */
export async function assertManifestByDigest(target: Target, repo: string, digest: string, configDigest: string): Promise<void> {
  const res = await getManifest(target, repo, digest);
  const label = `GET /v2/${repo}/manifests/${digest}`;
  assert.equal(res.status, 200, describeResponse(label, res));
  assert.equal(sha256(res.body), digest, `${label}: body does not hash to its digest`);
  assert.equal(res.headers.get('content-type'), MEDIA_TYPES.imageManifest, describeResponse(label, res));
  const manifest = JSON.parse(res.body.toString('utf8')) as { config: { digest: string } };
  assert.equal(manifest.config.digest, configDigest);

  const blob = await httpGet(`${target.url}/v2/${repo}/blobs/${configDigest}`, '*/*');
  assert.equal(blob.status, 200, describeResponse(`GET /v2/${repo}/blobs/${configDigest}`, blob));
  assert.equal(sha256(blob.body), configDigest);
}

/** HEAD a tag, check its manifest's config, and return the digest it resolves to. */
async function resolveTag(target: Target, repo: string, tag: string, configDigest: string): Promise<string> {
  const head = await getManifest(target, repo, tag, 'HEAD');
  assert.equal(head.status, 200, describeResponse(`HEAD /v2/${repo}/manifests/${tag}`, head));
  const digest = head.headers.get('docker-content-digest');
  assert.ok(digest, describeResponse(`HEAD /v2/${repo}/manifests/${tag} has no Docker-Content-Digest`, head));
  await assertManifestByDigest(target, repo, digest, configDigest);
  return digest;
}
