/**
 * podman (Debian's) against a real registry process, as root with private vfs
 * storage. Containers cannot run in this sandbox, so images are compared by
 * digest and image ID (== config digest) instead of by running them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Podman } from '../support/clients.js';
import { podmanDriver } from './client-drivers.js';
import { describeResponse, getManifest, uniqueRepo, useE2eContext } from './harness.js';
import { describeSharedClientScenarios } from './shared-scenarios.js';

describe('podman against the registry under test', () => {
  const ctx = useE2eContext('podman');

  describeSharedClientScenarios(podmanDriver, ctx);

  describe('podman: local storage round trip through the registry', () => {
    let podman: Podman | undefined;
    const repo = uniqueRepo('podman', 'storage');
    /** Filled in step by step: each test builds on the previous one. */
    let imageId: string | undefined;
    let pushed: string | undefined;

    before(async () => {
      podman = await Podman.create([ctx().target.host]);
    });
    after(async () => {
      await podman?.dispose();
    });
    const client = (): Podman => {
      assert.ok(podman, 'podman wrapper was not created');
      return podman;
    };

    it('imports oci:<layout> into vfs storage with the config digest as image ID', async () => {
      const { fixtures } = ctx();
      imageId = await client().pull(`oci:${fixtures.dir}:${fixtures.refs.image}`);
      assert.equal(`sha256:${imageId}`, fixtures.image.config.digest);
    });

    it('pushes the image and the registry serves the tag with the digest podman reported', async () => {
      assert.ok(imageId, 'depends on the import test');
      const { target } = ctx();
      pushed = await client().push(imageId, `${target.host}/${repo}:v1`);
      const head = await getManifest(target, repo, 'v1', 'HEAD');
      assert.equal(head.status, 200, describeResponse(`HEAD /v2/${repo}/manifests/v1`, head));
      assert.equal(head.headers.get('docker-content-digest'), pushed);
    });

    it('after rmi, pulls HOST/repo@digest back to the same image ID and records that digest', async () => {
      assert.ok(imageId && pushed, 'depends on the push test');
      const { target } = ctx();
      await client().rmi(imageId);
      assert.equal(await client().imageExists(imageId), false, 'rmi left the image in storage');

      const ref = `${target.host}/${repo}@${pushed}`;
      assert.equal(await client().pull(ref), imageId);
      const image = await client().inspectImage(imageId);
      assert.equal(image.Digest, pushed);
      assert.ok(image.RepoDigests.includes(ref), `RepoDigests ${image.RepoDigests.join(', ')} lack ${ref}`);
    });

    it('pulls by tag and resolves the tag to the pushed digest', async () => {
      assert.ok(imageId && pushed, 'depends on the push test');
      const { target } = ctx();
      await client().rmi(imageId);
      assert.equal(await client().pull(`${target.host}/${repo}:v1`), imageId);
      const image = await client().inspectImage(imageId);
      assert.equal(image.Digest, pushed);
    });
  });
});
