/**
 * A private containerd (Debian's `containerd` package, what kubelets pull with) for end-to-end pulls
 * with `ctr`: root and state in a temp directory, its own socket, the CRI plugin off (no kubelet
 * here). It runs as root without systemd, as the tests do. Pulls unpack into the `native`
 * snapshotter (no overlay mounts needed).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { captureOutput, raceTimeout, trackChild } from './berth-process.js';
import { exec, type ExecResult } from './exec.js';

/** Bounds on a broken start or stop, not assertions. */
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

export interface Containerd {
  /** `ctr images pull` of `ref`; `hostsDir` holds the `hosts.toml` files (mirrors). */
  pull(ref: string, options?: { hostsDir?: string; user?: string; plainHttp?: boolean; platform?: string }): Promise<ExecResult>;
  /** `ctr` with any arguments (against this containerd). */
  ctr(args: readonly string[]): Promise<ExecResult>;
  /** Where tests may put hosts directories and other files. */
  dir: string;
  stop(): Promise<void>;
}

export async function startContainerd(): Promise<Containerd> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-ctd-'));
  const socket = join(dir, 'c.sock');
  await mkdir(join(dir, 'root'));
  await mkdir(join(dir, 'state'));
  const config = join(dir, 'config.toml');
  await writeFile(
    config,
    [
      'version = 2',
      `root = ${JSON.stringify(join(dir, 'root'))}`,
      `state = ${JSON.stringify(join(dir, 'state'))}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = ${JSON.stringify(socket)}`,
      '',
    ].join('\n'),
  );
  const proc = spawn('containerd', ['--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let spawnError: Error | undefined;
  proc.once('error', (err) => (spawnError = err));
  const out = captureOutput(proc);
  const exited = trackChild(proc);
  const ctr = (args: readonly string[]) => exec('ctr', ['--address', socket, ...args], process.env);
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (spawnError) throw new Error(`containerd could not be started (${spawnError.message}): run scripts/ensure-test-deps.sh`);
    if (proc.exitCode !== null) throw new Error(`containerd exited early:\n${out.stderr()}`);
    const version = await ctr(['version']).catch(() => undefined);
    if (version && version.code === 0) break;
    if (Date.now() > deadline) throw new Error(`containerd did not answer on ${socket}:\n${out.stderr()}`);
    await sleep(100);
  }
  return {
    dir,
    ctr,
    pull: (ref, options = {}) =>
      ctr([
        'images',
        'pull',
        '--snapshotter',
        'native',
        ...(options.hostsDir ? ['--hosts-dir', options.hostsDir] : []),
        ...(options.user ? ['--user', options.user] : []),
        ...(options.plainHttp ? ['--plain-http'] : []),
        ...(options.platform ? ['--platform', options.platform] : []),
        ref,
      ]),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      if ((await raceTimeout(exited, STOP_TIMEOUT_MS)) === undefined) {
        proc.kill('SIGKILL');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Writes `<hostsDir>/<namespace>/hosts.toml` making `mirror` (an http(s) base URL) the first host to pull and resolve from, `server` the fallback. */
export async function writeMirrorHosts(hostsDir: string, namespace: string, server: string, mirror: string, extra: string[] = []): Promise<void> {
  await mkdir(join(hostsDir, namespace), { recursive: true });
  await writeFile(
    join(hostsDir, namespace, 'hosts.toml'),
    [`server = ${JSON.stringify(server)}`, '', `[host.${JSON.stringify(mirror)}]`, '  capabilities = ["pull", "resolve"]', ...extra, ''].join('\n'),
  );
}
