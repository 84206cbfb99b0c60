/**
 * One interface over skopeo and podman for the scenarios both can perform, so
 * each such scenario is written once (shared-scenarios.ts) and run per client.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Podman, Skopeo } from '../support/clients.js';
import type { PlatformSelector } from '../support/clients.js';
import { blobPath, collectDigests, resolveRef } from '../support/oci-layout.js';

export interface PulledImage {
  /** Manifest digests the client recorded for what it pulled (index and/or image manifest). */
  manifestDigests: string[];
  /** Digest of the image config: the image's identity (podman's image ID). */
  configDigest: string;
}

export interface ClientDriver {
  readonly name: ClientName;
  /**
   * Whether manifests reach the registry byte-for-byte as in the source.
   * skopeo streams blobs and manifests unchanged. podman pushes from its own
   * storage, where layers are kept uncompressed: it recompresses them (new
   * layer and manifest digests) unless it can reuse blobs the registry already
   * has, so only the config (the image ID) is guaranteed to survive.
   */
  readonly preservesManifestBytes: boolean;
  /**
   * Pushes `layoutRef` of the OCI layout at `layoutDir` to `dest`
   * (`HOST/repo:tag`) and returns the manifest digest the client reports.
   * Leaves no local copy behind, so later pulls must hit the registry.
   */
  pushFromLayout(layoutDir: string, layoutRef: string, dest: string): Promise<string>;
  /** Pulls `HOST/repo@digest` or `HOST/repo:tag` (one platform of an index if `platform`). */
  pull(ref: string, platform?: PlatformSelector): Promise<PulledImage>;
  /** Copies `src` to `dest` within the registry (both `HOST/repo...`). */
  copyWithinRegistry(src: string, dest: string): Promise<void>;
  listTags(repo: string): Promise<string[]>;
  dispose(): Promise<void>;
}

export type ClientName = 'skopeo' | 'podman';

export interface DriverFactory {
  name: ClientName;
  /** A driver whose config marks `registryHost` as plain-HTTP. */
  create(registryHost: string): Promise<ClientDriver>;
}

export const skopeoDriver: DriverFactory = { name: 'skopeo', create: createSkopeoDriver };
export const podmanDriver: DriverFactory = { name: 'podman', create: createPodmanDriver };

async function createSkopeoDriver(registryHost: string): Promise<ClientDriver> {
  const skopeo = await Skopeo.create([registryHost]);
  const pullDir = await mkdtemp(join(tmpdir(), 'berth-e2e-skopeo-pull-'));
  let pulls = 0;
  return {
    name: 'skopeo',
    preservesManifestBytes: true,
    pushFromLayout: (layoutDir, layoutRef, dest) => skopeo.copy(`oci:${layoutDir}:${layoutRef}`, `docker://${dest}`),
    async pull(ref, platform) {
      // Pull into a fresh OCI layout; collectDigests re-hashes every blob written.
      const layout = join(pullDir, `pull-${++pulls}`);
      await skopeo.copy(`docker://${ref}`, `oci:${layout}:pulled`, platform === undefined ? {} : { platform });
      const manifest = await resolveRef(layout, 'pulled');
      await collectDigests(layout, manifest.digest);
      const doc = JSON.parse(await readFile(blobPath(layout, manifest.digest), 'utf8')) as {
        config?: { digest: string };
      };
      if (doc.config === undefined) throw new Error(`skopeo pulled ${ref} but its manifest has no config`);
      return { manifestDigests: [manifest.digest], configDigest: doc.config.digest };
    },
    async copyWithinRegistry(src, dest) {
      await skopeo.copy(`docker://${src}`, `docker://${dest}`);
    },
    listTags: (repo) => skopeo.listTags(`docker://${repo}`),
    async dispose() {
      await skopeo.dispose();
      await rm(pullDir, { recursive: true, force: true });
    },
  };
}

async function createPodmanDriver(registryHost: string): Promise<ClientDriver> {
  const podman = await Podman.create([registryHost]);
  return {
    name: 'podman',
    preservesManifestBytes: false,
    async pushFromLayout(layoutDir, layoutRef, dest) {
      // podman pushes from its own storage: import the layout first.
      const id = await podman.pull(`oci:${layoutDir}:${layoutRef}`);
      const digest = await podman.push(id, dest);
      await podman.rmi(id);
      return digest;
    },
    async pull(ref, platform) {
      const id = await podman.pull(ref, platform);
      const image = await podman.inspectImage(id);
      const repoDigests = image.RepoDigests.map((r) => r.slice(r.indexOf('@') + 1));
      return { manifestDigests: [image.Digest, ...repoDigests], configDigest: `sha256:${id}` };
    },
    async copyWithinRegistry(src, dest) {
      const id = await podman.pull(src);
      await podman.push(id, dest);
    },
    listTags: (repo) => podman.listTags(repo),
    dispose: () => podman.dispose(),
  };
}
