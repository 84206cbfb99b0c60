/**
 * Thin wrappers over the real container clients (skopeo, podman) as Debian
 * ships them, for end-to-end tests against a plain-HTTP loopback registry.
 *
 * Each wrapper owns a temp directory holding its configuration (policy,
 * registries.conf, empty credentials; for podman also storage.conf,
 * containers.conf and its vfs image store), so tests neither use the machine's
 * container configuration or credentials nor touch its image store. (One
 * exception: skopeo run as root keeps containers/image's blob-info cache in
 * /var/lib/containers/cache, and has no flag to move it; it is only a hint
 * cache.) Every failure throws a CommandError carrying the command and stderr.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A bound on a hung client so the run fails with its stderr; not a timing assertion. */
const COMMAND_TIMEOUT_MS = 180_000;

export interface RunResult {
  stdout: Buffer;
  stderr: string;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly exitCode: number | string | null,
    readonly stdout: string,
    readonly stderr: string,
    reason: string,
  ) {
    super(`\`${command}\` ${reason}\n--- stderr ---\n${stderr.trim()}\n--- stdout ---\n${stdout.trim()}`);
    this.name = 'CommandError';
  }
}

/** Runs `file args` without a shell; resolves with raw stdout, rejects with CommandError. */
export function run(file: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  const command = [file, ...args].join(' ');
  return new Promise((resolvePromise, reject) => {
    execFile(
      file,
      args,
      { env: { ...process.env, ...env }, encoding: 'buffer', maxBuffer: 64 * 1024 * 1024, timeout: COMMAND_TIMEOUT_MS },
      (error, stdout, stderr) => {
        const stderrText = stderr.toString('utf8');
        if (error === null) {
          resolvePromise({ stdout, stderr: stderrText });
          return;
        }
        const killed = 'killed' in error && error.killed === true;
        const code = 'code' in error ? ((error.code as number | string | undefined) ?? null) : null;
        const reason = killed
          ? `was killed after ${COMMAND_TIMEOUT_MS} ms`
          : code === 'ENOENT'
            ? 'could not be started: is it installed? (scripts/ensure-test-deps.sh)'
            : `failed with exit code ${String(code)}`;
        reject(new CommandError(command, code, stdout.toString('utf8'), stderrText, reason));
      },
    );
  });
}

export interface PlatformSelector {
  os: string;
  architecture: string;
  variant?: string;
}

/** Files shared by both clients: accept-anything policy, registries.conf marking `insecureHosts` as plain HTTP. */
async function writeClientConfig(dir: string, insecureHosts: readonly string[]): Promise<NodeJS.ProcessEnv> {
  const policy = join(dir, 'policy.json');
  const registries = join(dir, 'registries.conf');
  const auth = join(dir, 'auth.json');
  // Empty credentials: nothing from the machine's auth files is used (podman requires the file to exist).
  await writeFile(auth, JSON.stringify({ auths: {} }));
  await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  await writeFile(
    registries,
    [
      'unqualified-search-registries = []',
      ...insecureHosts.flatMap((host) => ['', '[[registry]]', `location = ${JSON.stringify(host)}`, 'insecure = true']),
      '',
    ].join('\n'),
  );
  return {
    CONTAINERS_REGISTRIES_CONF: registries,
    REGISTRY_AUTH_FILE: auth,
    // Temp files of the clients (e.g. blobs being copied) stay inside our dir.
    TMPDIR: join(dir, 'tmp'),
  };
}

// ---------------------------------------------------------------------------

export interface SkopeoCopyOptions {
  /** `--all`: copy every instance of an index, not just the one for this platform. */
  all?: boolean;
  /** Which instance of an index to copy (`--override-os/arch/variant`). */
  platform?: PlatformSelector;
  /** Write the digest of the manifest written to the destination here. */
  digestFile?: string;
  /** `--dest-registry-token`: a registry access token to push with (e.g. one bought with a CI job's OIDC token). */
  destRegistryToken?: string;
}

/** skopeo with TLS verification off (the registries under test speak plain HTTP on loopback). */
export class Skopeo {
  private constructor(
    readonly dir: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly policyPath: string,
  ) {}

  static async create(insecureHosts: readonly string[]): Promise<Skopeo> {
    const dir = await mkdtemp(join(tmpdir(), 'berth-e2e-skopeo-'));
    await mkdir(join(dir, 'tmp'));
    const env = await writeClientConfig(dir, insecureHosts);
    return new Skopeo(dir, env, join(dir, 'policy.json'));
  }

  private run(args: readonly string[], platform?: PlatformSelector): Promise<RunResult> {
    const global = ['--policy', this.policyPath, ...platformArgs(platform)];
    return run('skopeo', [...global, ...args], this.env);
  }

  /** `skopeo copy SRC DEST`; returns the manifest digest written to DEST. */
  async copy(src: string, dest: string, options: SkopeoCopyOptions = {}): Promise<string> {
    const digestFile = options.digestFile ?? join(this.dir, `digest-${Date.now()}-${Math.random()}`);
    const args = ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--digestfile', digestFile];
    if (options.all === true) args.push('--all');
    if (options.destRegistryToken !== undefined) args.push('--dest-registry-token', options.destRegistryToken);
    await this.run([...args, src, dest], options.platform);
    return (await readFile(digestFile, 'utf8')).trim();
  }

  /** `skopeo inspect --raw`: the manifest bytes exactly as served. */
  async inspectRaw(ref: string): Promise<Buffer> {
    return (await this.run(['inspect', '--raw', '--tls-verify=false', ref])).stdout;
  }

  /** `skopeo inspect`: parsed summary (Digest, Architecture, Layers...). */
  async inspect(ref: string, platform?: PlatformSelector): Promise<SkopeoInspectOutput> {
    const { stdout } = await this.run(['inspect', '--tls-verify=false', ref], platform);
    return JSON.parse(stdout.toString('utf8')) as SkopeoInspectOutput;
  }

  /** `skopeo list-tags docker://HOST/repo`. */
  async listTags(ref: string): Promise<string[]> {
    const { stdout } = await this.run(['list-tags', '--tls-verify=false', ref]);
    return (JSON.parse(stdout.toString('utf8')) as { Tags: string[] | null }).Tags ?? [];
  }

  /** `skopeo delete`; for a registry this deletes the manifest by digest (a tag is resolved first). */
  async delete(ref: string): Promise<void> {
    await this.run(['delete', '--tls-verify=false', ref]);
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

export interface SkopeoInspectOutput {
  Name: string;
  Digest: string;
  Architecture: string;
  Os: string;
  Layers: string[];
  RepoTags?: string[];
}

function platformArgs(platform: PlatformSelector | undefined): string[] {
  if (platform === undefined) return [];
  const args = ['--override-os', platform.os, '--override-arch', platform.architecture];
  if (platform.variant !== undefined) args.push('--override-variant', platform.variant);
  return args;
}

// ---------------------------------------------------------------------------

export interface PodmanImage {
  Id: string;
  /** Digest of the manifest (or index) the image was pulled by. */
  Digest: string;
  RepoDigests: string[];
  Architecture: string;
  Os: string;
}

/**
 * podman as root with private vfs storage under its temp dir. Containers
 * cannot be run in this sandbox, so only image operations are wrapped.
 */
export class Podman {
  private constructor(
    readonly dir: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  static async create(insecureHosts: readonly string[]): Promise<Podman> {
    const dir = await mkdtemp(join(tmpdir(), 'berth-e2e-podman-'));
    for (const sub of ['root', 'runroot', 'tmp', 'libpod-tmp']) await mkdir(join(dir, sub));
    const env = await writeClientConfig(dir, insecureHosts);
    const storageConf = join(dir, 'storage.conf');
    const containersConf = join(dir, 'containers.conf');
    await writeFile(
      storageConf,
      `[storage]\ndriver = "vfs"\ngraphroot = ${JSON.stringify(join(dir, 'root'))}\nrunroot = ${JSON.stringify(join(dir, 'runroot'))}\n`,
    );
    await writeFile(containersConf, '[engine]\nevents_logger = "none"\ncgroup_manager = "cgroupfs"\n');
    return new Podman(dir, { ...env, CONTAINERS_STORAGE_CONF: storageConf, CONTAINERS_CONF: containersConf });
  }

  /** Our accept-anything policy (`--signature-policy` is a hidden but supported podman flag). */
  private policyPath(): string {
    return join(this.dir, 'policy.json');
  }

  private run(args: readonly string[]): Promise<RunResult> {
    const global = [
      '--root',
      join(this.dir, 'root'),
      '--runroot',
      join(this.dir, 'runroot'),
      '--storage-driver',
      'vfs',
      '--tmpdir',
      join(this.dir, 'libpod-tmp'),
    ];
    return run('podman', [...global, ...args], this.env);
  }

  /**
   * `podman pull`; returns the local image ID (== config digest hex).
   * For `oci:<dir>[:ref]`, podman names the image after <dir>, so <dir> must be
   * a valid lowercase repository path (mkdtemp's suffix is not).
   */
  async pull(ref: string, platform?: PlatformSelector): Promise<string> {
    const args = ['pull', '--quiet', '--signature-policy', this.policyPath()];
    // --tls-verify only applies to registry references.
    if (!ref.startsWith('oci:')) args.push('--tls-verify=false');
    if (platform !== undefined) args.push('--platform', platformString(platform));
    const { stdout } = await this.run([...args, ref]);
    const id = stdout.toString('utf8').trim().split('\n').pop() ?? '';
    if (!/^[a-f0-9]{64}$/.test(id)) throw new Error(`podman pull ${ref}: unexpected output ${JSON.stringify(id)}`);
    return id;
  }

  /** `podman push SOURCE HOST/repo:tag`; returns the manifest digest pushed. */
  async push(source: string, dest: string): Promise<string> {
    const digestFile = join(this.dir, `digest-${Date.now()}-${Math.random()}`);
    const args = ['push', '--quiet', '--signature-policy', this.policyPath(), '--tls-verify=false'];
    await this.run([...args, '--digestfile', digestFile, source, dest]);
    return (await readFile(digestFile, 'utf8')).trim();
  }

  /** `podman rmi --force`: removes the image and all its names. */
  async rmi(ref: string): Promise<void> {
    await this.run(['rmi', '--force', ref]);
  }

  async imageExists(ref: string): Promise<boolean> {
    try {
      await this.run(['image', 'exists', ref]);
      return true;
    } catch (err) {
      if (err instanceof CommandError && err.exitCode === 1) return false;
      throw err;
    }
  }

  async inspectImage(ref: string): Promise<PodmanImage> {
    const { stdout } = await this.run(['image', 'inspect', ref]);
    const [image] = JSON.parse(stdout.toString('utf8')) as PodmanImage[];
    if (image === undefined) throw new Error(`podman image inspect ${ref}: empty result`);
    return image;
  }

  /** `podman search --list-tags HOST/repo`: tags as the registry lists them. */
  async listTags(repo: string): Promise<string[]> {
    const args = ['search', '--list-tags', '--limit', '1000', '--format', 'json', '--tls-verify=false', repo];
    const { stdout } = await this.run(args);
    const [entry] = JSON.parse(stdout.toString('utf8')) as { Name: string; Tags: string[] | null }[];
    return entry?.Tags ?? [];
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

function platformString(platform: PlatformSelector): string {
  const base = `${platform.os}/${platform.architecture}`;
  return platform.variant === undefined ? base : `${base}/${platform.variant}`;
}
