/** What the numbers were measured on. */
import { readFile } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { run } from './util.js';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  os: string;
  node: string;
  distribution: string;
  skopeo: string;
  wrk: string;
  curl: string;
  filesystem: string;
  /** Whether subdirectories of the data parent get ext4 block groups of their own (`chattr +T`, util.ts `sectionTempDir`). */
  separateInodeGroups: boolean;
  berth: string;
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args, { timeoutMs: 10_000 });
  const text = `${r.stdout}\n${r.stderr}`.trim();
  return text.split('\n')[0]?.trim() ?? 'unknown';
}

export async function machineInfo(repoRoot: string, dataParent: string): Promise<MachineInfo> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  const osRelease = await readFile('/etc/os-release', 'utf8').catch(() => '');
  const pretty = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(osRelease)?.[1] ?? 'unknown';
  const fs = await run('findmnt', ['-n', '-o', 'SOURCE,FSTYPE,OPTIONS', '-T', dataParent], { timeoutMs: 10_000 });
  const flags = await run('lsattr', ['-d', dataParent], { timeoutMs: 10_000 });
  const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version?: string };
  const rev = await run('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'], { timeoutMs: 10_000 });
  const dirty = await run('git', ['-C', repoRoot, 'status', '--porcelain', '--', 'src'], { timeoutMs: 10_000 });
  const commit = rev.code === 0 ? rev.stdout.trim() : 'no commit';
  const dirtyNote = dirty.code === 0 && dirty.stdout.trim() !== '' ? ', src/ has uncommitted changes' : '';
  return {
    cpuModel: model,
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    kernel: release(),
    os: pretty,
    node: process.version,
    distribution: await firstLine('docker-registry', ['--version']),
    skopeo: await firstLine('skopeo', ['--version']),
    wrk: (await firstLine('wrk', ['--version'])).replace(/\s+Copyright.*$/, ''),
    curl: (await firstLine('curl', ['--version'])).split(' ').slice(0, 2).join(' '),
    filesystem: fs.code === 0 ? (fs.stdout.trim().split('\n')[0]?.replace(/\s+/g, ' ') ?? 'unknown') : 'unknown',
    separateInodeGroups: flags.code === 0 && /^\S*T/.test(flags.stdout),
    berth: `${pkg.version ?? '?'} (${commit}${dirtyNote})`,
  };
}
