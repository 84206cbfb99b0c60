/**
 * Small helpers shared by the benchmark driver: child processes with hard
 * time limits, free loopback ports, statistics and formatting.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall-clock duration of the child, in seconds. */
  seconds: number;
}

/**
 * Runs a command to completion (never through a shell). Every call is bounded by
 * `timeoutMs`: the child is killed with SIGKILL after that.
 */
export function run(cmd: string, args: readonly string[], opts: { timeoutMs: number; cwd?: string; env?: NodeJS.ProcessEnv }): Promise<ExecResult> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    execFile(
      cmd,
      args,
      {
        timeout: opts.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
        ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
        ...(opts.env !== undefined ? { env: opts.env } : {}),
      },
      (err, stdout, stderr) => {
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        let code: number | null = 0;
        let signal: NodeJS.Signals | null = null;
        if (err !== null) {
          const e = err as NodeJS.ErrnoException & { code?: unknown; signal?: NodeJS.Signals | null };
          code = typeof e.code === 'number' ? e.code : null;
          signal = e.signal ?? null;
          if (code === null && signal === null) {
            stderr = `${stderr}\n${String(err.message)}`;
          }
        }
        resolve({ code, signal, stdout, stderr, seconds });
      },
    );
  });
}

/** `run` that throws on a non-zero exit. */
export async function runOk(cmd: string, args: readonly string[], opts: { timeoutMs: number; cwd?: string; env?: NodeJS.ProcessEnv }): Promise<ExecResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (code ${String(r.code)}, signal ${String(r.signal)}):\n${r.stderr.slice(-4000)}`);
  }
  return r;
}

/** Flushes dirty pages so that writeback of one run does not land in the next. */
export async function syncDisks(): Promise<void> {
  await run('sync', [], { timeoutMs: 120_000 });
}

/**
 * A fresh temporary directory for one section's servers, `prefix` plus random characters, whose
 * subdirectories ext4 spreads over block groups of their own (its "top of a directory hierarchy"
 * flag, `chattr +T`); elsewhere (another filesystem, no `chattr`) a plain temporary directory.
 * Name servers' data directories in it with `serverDataDir`.
 *
 * Why: ext4 puts a new directory in its parent's block group, so every server of every section
 * kept its data in one group of inodes. On ext4 without a journal (this machine's disk) a new
 * inode is taken only after skipping every inode of its group freed in the last one to five
 * minutes (the kernel's `recently_deleted`, a lookup each): creating a file cost 20–540 µs here
 * depending on what had been deleted before. Distribution frees four to five inodes per blob it
 * pushes, and each section's teardown thousands, so side by side each server's file creations paid
 * for the other's deletions and for earlier sections'. No deployment shares its data directory's
 * inodes with another registry. In a group of its own a server pays for its own deletions, and for
 * an earlier run's only if ext4 chose a group that run emptied minutes before (it prefers groups
 * without directories, and such a group is one).
 */
export async function sectionTempDir(prefix: string): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  await run('chattr', ['+T', path], { timeoutMs: 10_000 }).catch(() => undefined);
  return path;
}

/**
 * Where server `slug` of a section keeps its data: a subdirectory of `parent` (from
 * `sectionTempDir`) whose name ends with the parent's random characters. ext4 starts its search for
 * a flagged directory's subdirectory at a hash of the new name: under a fixed name every section's
 * server would start where the previous one did, and most often end in the group it just emptied.
 */
export function serverDataDir(parent: string, slug: string): string {
  return join(parent, `${slug}-data-${basename(parent).slice(-6)}`);
}

/** Asks the kernel for a free loopback TCP port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('no port'));
        return;
      }
      const port = addr.port;
      srv.close(() => resolve(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  if (s.length % 2 === 1) return s[mid] ?? null;
  const lo = s[mid - 1];
  const hi = s[mid];
  return lo === undefined || hi === undefined ? null : (lo + hi) / 2;
}

export function fmtNum(v: number | null, digits?: number): string {
  if (v === null || !Number.isFinite(v)) return 'n/a';
  const d = digits ?? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);
  return v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export function humanSize(bytes: number): string {
  if (bytes >= GiB && bytes % GiB === 0) return `${bytes / GiB} GiB`;
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

export function log(msg: string): void {
  const t = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[bench ${t}] ${msg}\n`);
}

/** Spawns a long-running child detached from our stdio, output to a file descriptor. */
export function spawnDaemon(cmd: string, args: readonly string[], outFd: number, env?: NodeJS.ProcessEnv): ReturnType<typeof spawn> {
  return spawn(cmd, args, {
    stdio: ['ignore', outFd, outFd],
    ...(env !== undefined ? { env } : {}),
  });
}
