/**
 * One isolated client setup for end-to-end scenarios: skopeo, podman and buildah with their own
 * policy, registries.conf (the registry is plain HTTP), vfs storage and credentials files; a PATH
 * that finds a docker-credential-berth shim running the helper from source; the berth CLI from
 * source. Nothing from the machine's credentials or container configuration is read.
 *
 * Suites subclass it for their scenario-specific steps: `MyBox.create(host, label)` returns the
 * subclass.
 */
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeLowercaseTempDir } from '../e2e/harness.js';
import { BERTH_SOURCE_CLI, REPO_ROOT } from './berth-process.js';
import { exec, type ExecResult } from './exec.js';

export const tsxArgs = ['--import', import.meta.resolve('tsx')];
const helperSource = join(REPO_ROOT, 'src', 'bin', 'docker-credential-berth.ts');

export class ClientBox {
  constructor(
    readonly dir: string,
    readonly env: NodeJS.ProcessEnv,
  ) {}

  /**
   * `label` keeps the directory recognisable and must be short: podman refuses a runroot path over
   * 50 characters. `extraEnv`: e.g. the Actions ID-token variables of a simulated job.
   */
  static async create<T extends ClientBox>(
    this: new (dir: string, env: NodeJS.ProcessEnv) => T,
    host: string,
    label: string,
    extraEnv: NodeJS.ProcessEnv = {},
  ): Promise<T> {
    const dir = await makeLowercaseTempDir(`b${label}`);
    for (const sub of ['bin', 'docker', 'xdg', 'tmp', 'root', 'runroot', 'libpod-tmp', 'pulls']) await mkdir(join(dir, sub));
    await writeFile(join(dir, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    await writeFile(join(dir, 'registries.conf'), `unqualified-search-registries = []\n\n[[registry]]\nlocation = ${JSON.stringify(host)}\ninsecure = true\n`);
    await writeFile(join(dir, 'empty-auth.json'), JSON.stringify({ auths: {} }));
    await writeFile(
      join(dir, 'storage.conf'),
      `[storage]\ndriver = "vfs"\ngraphroot = ${JSON.stringify(join(dir, 'root'))}\nrunroot = ${JSON.stringify(join(dir, 'runroot'))}\n`,
    );
    await writeFile(join(dir, 'containers.conf'), '[engine]\nevents_logger = "none"\ncgroup_manager = "cgroupfs"\n');
    const shim = join(dir, 'bin', 'docker-credential-berth');
    await writeFile(shim, `#!/bin/sh\nexec ${[process.execPath, ...tsxArgs, helperSource].map((a) => `'${a}'`).join(' ')} "$@"\n`);
    await chmod(shim, 0o755);
    const env: NodeJS.ProcessEnv = { ...process.env };
    // Whatever job runs these tests, the scenario decides whether an Actions ID token can be had.
    delete env['ACTIONS_ID_TOKEN_REQUEST_URL'];
    delete env['ACTIONS_ID_TOKEN_REQUEST_TOKEN'];
    Object.assign(env, {
      PATH: `${join(dir, 'bin')}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
      HOME: dir,
      DOCKER_CONFIG: join(dir, 'docker'),
      BERTH_CONFIG_DIR: join(dir, 'berth'),
      // containers/image also reads $XDG_CONFIG_HOME/containers/auth.json and $DOCKER_CONFIG/config.json,
      // even with --authfile: both point into this box.
      XDG_CONFIG_HOME: join(dir, 'xdg'),
      CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf'),
      CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'),
      CONTAINERS_CONF: join(dir, 'containers.conf'),
      // Without --authfile the clients read (and podman login writes) this empty file, never the machine's.
      REGISTRY_AUTH_FILE: join(dir, 'empty-auth.json'),
      TMPDIR: join(dir, 'tmp'),
      ...extraEnv,
    });
    return new this(dir, env);
  }

  /** `$DOCKER_CONFIG/config.json` of this box: where `berth login` writes, and what the clients read. */
  get dockerConfig(): string {
    return join(this.dir, 'docker', 'config.json');
  }

  /** The berth CLI's own credential file (refresh tokens, OIDC sources). */
  get credentialFile(): string {
    return join(this.dir, 'berth', 'credentials.json');
  }

  get policyFile(): string {
    return join(this.dir, 'policy.json');
  }

  run(file: string, args: readonly string[], input = '', env: NodeJS.ProcessEnv = this.env): Promise<ExecResult> {
    return exec(file, args, env, input);
  }

  /** The berth CLI, from source. */
  berth(args: readonly string[], input = ''): Promise<ExecResult> {
    return this.run(process.execPath, [...tsxArgs, BERTH_SOURCE_CLI, ...args], input);
  }

  /** skopeo's global options for this box, then `args`. */
  skopeoArgs(args: readonly string[]): string[] {
    return ['--policy', this.policyFile, ...args];
  }

  /** podman's (and buildah's) storage options for this box, then `args`. */
  podmanArgs(args: readonly string[]): string[] {
    return [
      '--root',
      join(this.dir, 'root'),
      '--runroot',
      join(this.dir, 'runroot'),
      '--storage-driver',
      'vfs',
      '--tmpdir',
      join(this.dir, 'libpod-tmp'),
      ...args,
    ];
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
