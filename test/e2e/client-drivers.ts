/**
 * One interface over skopeo and podman for the scenarios both can perform, so
 * each such scenario is written once (shared-scenarios.ts) and run per client:
 * `ClientDriver` against a registry without auth, `LoginDriver` for the ways a
 * client logs in to Berth with auth on and then pushes and pulls.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientBox } from '../support/client-box.js';
import { Podman, Skopeo } from '../support/clients.js';
import type { PlatformSelector } from '../support/clients.js';
import type { ExecResult } from '../support/exec.js';
import { blobPath, collectDigests, resolveRef } from '../support/oci-layout.js';
import type { FixtureLayout } from '../support/oci-layout.js';

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

// ---------------------------------------------------------------------------
// Logins (Berth with auth on)

/**
 * One way of logging in to a registry and then pushing and pulling with the stored login: skopeo
 * or podman's own `login`, or `berth login` (straight into $DOCKER_CONFIG/config.json, or through
 * docker-credential-berth) followed by skopeo or podman. Each driver has its own ClientBox: nothing
 * is shared between drivers or read from the machine. Commands resolve with their result whatever
 * their exit code; the scenarios judge it.
 */
export interface LoginDriver extends Transfer {
  /** What this login command prints. */
  readonly says: {
    /** stdout of a successful login. */
    loggedIn: string;
    /** stderr of a login the registry refused (a wrong password). */
    refused: RegExp;
    /** stdout of a logout that removed a login. */
    loggedOut: string;
    /** stdout + stderr of a logout with no login stored. */
    notLoggedIn: RegExp;
    /** The exit code of a refused login. */
    failureExit: number;
  };
  /** `login HOST --username <username> --password-stdin` with `password` on stdin. */
  login(username: string, password: string): Promise<ExecResult>;
  logout(): Promise<ExecResult>;
  /** The stored login for the registry, where the clients read it; undefined when there is none. */
  stored(): Promise<unknown>;
  dispose(): Promise<void>;
}

export interface LoginDriverFactory {
  name: string;
  /** Short, for box directories (podman limits the runroot path) and repository names. */
  label: string;
  create(registryHost: string): Promise<LoginDriver>;
}

/**
 * Push and pull with whatever login the client finds in `authfile` (a containers auth file, or a
 * docker config.json with an identitytoken or a credHelpers entry). Results whatever the exit code.
 */
export interface Transfer {
  readonly name: string;
  /** Whether a pull yields the manifest digest that was pushed (see ClientDriver). */
  readonly preservesManifestBytes: boolean;
  /** Pushes the fixture image of `layout` to `dest` (`HOST/repo:tag`), leaving no local copy. */
  push(layout: FixtureLayout, dest: string): Promise<ExecResult>;
  /** Pulls `ref` from the registry; `image` is undefined when the pull failed. */
  pull(ref: string): Promise<{ result: ExecResult; image: PulledImage | undefined }>;
}

export function skopeoTransfer(box: ClientBox, authfile: string): Transfer {
  return {
    name: 'skopeo',
    preservesManifestBytes: true,
    push: (layout, dest) =>
      box.run(
        'skopeo',
        box.skopeoArgs(['copy', '--dest-tls-verify=false', '--authfile', authfile, `oci:${layout.dir}:${layout.refs.image}`, `docker://${dest}`]),
      ),
    async pull(ref) {
      const layout = join(box.dir, 'pulls', `p${Math.random().toString(36).slice(2)}`);
      const result = await box.run(
        'skopeo',
        box.skopeoArgs(['copy', '--src-tls-verify=false', '--authfile', authfile, `docker://${ref}`, `oci:${layout}:pulled`]),
      );
      if (result.code !== 0) return { result, image: undefined };
      const manifest = await resolveRef(layout, 'pulled');
      await collectDigests(layout, manifest.digest);
      const doc = JSON.parse(await readFile(blobPath(layout, manifest.digest), 'utf8')) as { config: { digest: string } };
      return { result, image: { manifestDigests: [manifest.digest], configDigest: doc.config.digest } };
    },
  };
}

export function podmanTransfer(box: ClientBox, authfile: string): Transfer {
  const policy = ['--signature-policy', box.policyFile];
  const lastLine = (text: string) => text.trim().split('\n').pop() ?? '';
  return {
    name: 'podman',
    preservesManifestBytes: false,
    async push(layout, dest) {
      // podman pushes from its own storage: import the layout first, and remove the image after.
      const imported = await box.run('podman', box.podmanArgs(['pull', '--quiet', ...policy, `oci:${layout.dir}:${layout.refs.image}`]));
      if (imported.code !== 0) throw new Error(`podman could not import the fixture layout: ${imported.stderr}`);
      const id = lastLine(imported.stdout);
      const pushed = await box.run('podman', box.podmanArgs(['push', '--quiet', ...policy, '--tls-verify=false', '--authfile', authfile, id, dest]));
      const removed = await box.run('podman', box.podmanArgs(['rmi', '--force', id]));
      if (removed.code !== 0) throw new Error(`podman rmi ${id}: ${removed.stderr}`);
      return pushed;
    },
    async pull(ref) {
      const result = await box.run('podman', box.podmanArgs(['pull', '--quiet', ...policy, '--tls-verify=false', '--authfile', authfile, ref]));
      if (result.code !== 0) return { result, image: undefined };
      const id = lastLine(result.stdout);
      const removed = await box.run('podman', box.podmanArgs(['rmi', '--force', id]));
      if (removed.code !== 0) throw new Error(`podman rmi ${id}: ${removed.stderr}`);
      return { result, image: { manifestDigests: [], configDigest: `sha256:${id}` } };
    },
  };
}

export const transfers: Record<ClientName, (box: ClientBox, authfile: string) => Transfer> = { skopeo: skopeoTransfer, podman: podmanTransfer };

async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** `auths[host]` of a JSON credentials file (docker config, containers auth file, berth's file). */
async function storedEntry(path: string, host: string): Promise<unknown> {
  const auths = (await readJson(path))?.['auths'] as Record<string, unknown> | undefined;
  return auths?.[host];
}

/** skopeo's or podman's own `login`, into an auth file of the box, which its pushes and pulls then read. */
function clientLogin(client: ClientName): LoginDriverFactory {
  return {
    name: client,
    label: `l${client.slice(0, 2)}`,
    async create(host) {
      const box = await ClientBox.create(host, `l${client.slice(0, 2)}`);
      const authfile = join(box.dir, 'auth.json');
      const args = (command: string[]) => (client === 'podman' ? box.podmanArgs(command) : command);
      return {
        ...transfers[client](box, authfile),
        name: client,
        says: {
          loggedIn: 'Login Succeeded!\n',
          refused: /invalid username\/password/,
          loggedOut: `Removed login credentials for ${host}\n`,
          notLoggedIn: new RegExp(`not logged into ${host.replace(/\./g, '\\.')}`),
          failureExit: client === 'podman' ? 125 : 1,
        },
        login: (username, password) =>
          box.run(client, args(['login', '--tls-verify=false', '--authfile', authfile, '--username', username, '--password-stdin', host]), password),
        logout: () => box.run(client, args(['logout', '--authfile', authfile, host])),
        stored: () => storedEntry(authfile, host),
        dispose: () => box.dispose(),
      };
    },
  };
}

/**
 * `berth login`, then skopeo or podman reading $DOCKER_CONFIG/config.json: the refresh token as
 * `identitytoken` there, or (`helper`) in docker-credential-berth's file, which config.json's
 * `credHelpers` sends the clients to.
 */
function berthLogin(client: ClientName, helper: boolean): LoginDriverFactory {
  const label = `${helper ? 'h' : 'b'}${client.slice(0, 2)}`;
  const name = `${helper ? 'docker-credential-berth' : 'berth login'} + ${client}`;
  return {
    name,
    label,
    async create(host) {
      const box = await ClientBox.create(host, label);
      if (helper) await writeFile(box.dockerConfig, JSON.stringify({ credHelpers: { [host]: 'berth' } }));
      return {
        ...transfers[client](box, box.dockerConfig),
        name,
        says: {
          loggedIn: 'Login Succeeded\n',
          refused: new RegExp(`^berth: login to ${host.replace(/\./g, '\\.')} failed: invalid username or password; check them and try again\n$`),
          loggedOut: `Removing login credentials for ${host}\n`,
          notLoggedIn: new RegExp(`^Not logged in to ${host.replace(/\./g, '\\.')}\n$`),
          failureExit: 1,
        },
        login: (username, password) => box.berth(['login', host, '--username', username, '--password-stdin'], password),
        logout: () => box.berth(['logout', host]),
        stored: () => storedEntry(helper ? box.credentialFile : box.dockerConfig, host),
        dispose: () => box.dispose(),
      };
    },
  };
}

export const skopeoLogin = clientLogin('skopeo');
export const podmanLogin = clientLogin('podman');
export const berthLoginSkopeo = berthLogin('skopeo', false);
export const berthLoginPodman = berthLogin('podman', false);
export const credentialHelperSkopeo = berthLogin('skopeo', true);
export const credentialHelperPodman = berthLogin('podman', true);
