/**
 * Starting, watching and stopping the two registries under test: Berth
 * (`node dist/bin/berth.js serve`) and CNCF Distribution (`docker-registry serve`).
 * Both listen on 127.0.0.1 only, plain HTTP, no auth; both keep their data under
 * the same temporary parent directory, i.e. on the same filesystem.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, log, serverDataDir, sleep, spawnDaemon } from './util.js';

export type ServerKind = 'berth' | 'distribution';

export interface Server {
  /** Which implementation runs. */
  kind: ServerKind;
  /** Column label in the report ("Berth", "Distribution", or "Distribution B" in self-test). */
  label: string;
  /** Base URL, e.g. http://127.0.0.1:40123 */
  url: string;
  port: number;
  pid: number;
  dataDir: string;
  logPath: string;
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartOptions {
  kind: ServerKind;
  label: string;
  /** Temp parent; the data directory and log are created inside it. */
  parent: string;
  /** Name of the data subdirectory (unique within parent). */
  slug: string;
  /** Repository root (for dist/bin/berth.js). */
  repoRoot: string;
  /** Extra node flags for Berth (e.g. --cpu-prof). */
  nodeFlags?: readonly string[];
  /**
   * Distribution only: YAML lines (indented two spaces, under `storage:`) that replace the
   * filesystem driver block, e.g. an `s3:` block plus `redirect:` (bench/s3.ts).
   */
  distributionStorage?: readonly string[];
  /** Environment changes for the server process (`undefined` removes a variable). */
  env?: Readonly<Record<string, string | undefined>>;
}

function childEnv(base: NodeJS.ProcessEnv, changes: Readonly<Record<string, string | undefined>> | undefined): NodeJS.ProcessEnv {
  const env = { ...base };
  for (const [k, v] of Object.entries(changes ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

async function waitForV2(url: string, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  let lastErr = '';
  while (Date.now() < until) {
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      lastErr = `GET /v2/ -> ${res.status}`;
    } catch (e) {
      lastErr = String(e);
    }
    await sleep(100);
  }
  throw new Error(`${url}/v2/ not ready after ${deadlineMs} ms: ${lastErr}`);
}

async function waitForListeningLine(logPath: string, fromByte: number, deadlineMs: number, exited: () => boolean): Promise<string> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    if (exited()) break;
    // Only this process's output: the log file may hold an earlier run on the same data dir.
    const text = (await readFile(logPath).catch(() => Buffer.alloc(0))).subarray(fromByte).toString('utf8');
    for (const line of text.split('\n')) {
      if (!line.includes('"msg":"listening"')) continue;
      try {
        const obj = JSON.parse(line) as { url?: unknown };
        if (typeof obj.url === 'string') return obj.url;
      } catch {
        const m = /"url":"(http:\/\/[^"]+)"/.exec(line);
        if (m?.[1] !== undefined) return m[1];
      }
    }
    await sleep(50);
  }
  const tail = (await readFile(logPath, 'utf8').catch(() => '')).slice(-3000);
  throw new Error(`Berth did not print a "listening" line within ${deadlineMs} ms. Log tail:\n${tail}`);
}

export function distributionConfig(port: number, root: string, storage?: readonly string[]): string {
  // Mirrors Debian's /etc/docker/registry/config.yml minus htpasswd auth and the
  // periodic storage health check; filesystem driver (unless `storage` gives another driver's
  // block), in-memory blob descriptor cache.
  return [
    'version: 0.1',
    'log:',
    '  level: info',
    '  fields:',
    '    service: registry',
    'storage:',
    '  cache:',
    '    blobdescriptor: inmemory',
    ...(storage ?? ['  filesystem:', `    rootdirectory: ${root}`]),
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
    '',
  ].join('\n');
}

/** The Node flags Berth is deployed with (`npm start`, the image's entrypoint, the `berth` command's first line). */
export const berthNodeFlags: readonly string[] = ['--max-semi-space-size=2', '--heap-growing-percent=200'];

/** The environment Berth is deployed with besides its own settings (the same three places as `berthNodeFlags`). */
export const berthEnv: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '1048576' };

/** `berthEnv` as a shell command line writes it (`NAME=value NAME=value`). */
export function berthEnvLine(): string {
  return Object.entries(berthEnv)
    .map(([name, value]) => `${name}=${value}`)
    .join(' ');
}

export async function startServer(opts: StartOptions): Promise<Server> {
  const port = await freePort();
  const dataDir = serverDataDir(opts.parent, opts.slug);
  await mkdir(dataDir, { recursive: true });
  const logPath = join(opts.parent, `${opts.slug}.log`);
  const fromByte = await stat(logPath)
    .then((st) => st.size)
    .catch(() => 0);
  const fd = openSync(logPath, 'a');
  let child: ChildProcess;
  if (opts.kind === 'distribution') {
    const cfg = join(opts.parent, `${opts.slug}-config.yml`);
    await writeFile(cfg, distributionConfig(port, dataDir, opts.distributionStorage), { mode: 0o600 });
    child = spawnDaemon('docker-registry', ['serve', cfg], fd, childEnv(process.env, opts.env));
  } else {
    const bin = join(opts.repoRoot, 'dist', 'bin', 'berth.js');
    // Distribution runs without auth, so Berth does too (its token auth is on by default).
    child = spawnDaemon(
      process.execPath,
      [...berthNodeFlags, ...(opts.nodeFlags ?? []), bin, 'serve', '--addr', `127.0.0.1:${port}`, '--data', dataDir],
      fd,
      childEnv({ ...process.env, ...berthEnv, BERTH_AUTH_ENABLED: 'false' }, opts.env),
    );
  }
  closeSync(fd);
  let hasExited = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      hasExited = true;
      resolve({ code, signal });
    });
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${opts.kind}`);
  let url = `http://127.0.0.1:${port}`;
  try {
    if (opts.kind === 'berth') {
      const announced = await waitForListeningLine(logPath, fromByte, 60_000, () => hasExited);
      if (announced.replace(/\/$/, '') !== url) {
        log(`note: Berth announced ${announced}, expected ${url}; using the announced URL`);
        url = announced.replace(/\/$/, '');
      }
    }
    await waitForV2(url, 30_000);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  const srv: Server = { kind: opts.kind, label: opts.label, url, port, pid, dataDir, logPath, child, exited };
  log(`${opts.label} (${opts.kind}) ready at ${url}, pid ${pid}`);
  return srv;
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stopServer(srv: Server, graceMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }> {
  if (srv.child.exitCode !== null || srv.child.signalCode !== null) {
    const r = await srv.exited;
    return { ...r, killed: false };
  }
  srv.child.kill('SIGTERM');
  // A plain timer (not sleep()) so it can be cleared: a pending one would keep the driver alive.
  let handle: NodeJS.Timeout | undefined;
  const timer = new Promise<'timeout'>((ok) => (handle = setTimeout(() => ok('timeout'), graceMs)));
  const r = await Promise.race([srv.exited, timer]);
  clearTimeout(handle);
  if (r === 'timeout') {
    srv.child.kill('SIGKILL');
    const r2 = await srv.exited;
    return { ...r2, killed: true };
  }
  return { ...r, killed: false };
}

// ---------------------------------------------------------------------------
// Memory: RSS of the server's whole process tree, from /proc.

async function children(pid: number): Promise<number[]> {
  const out: number[] = [];
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  for (const t of tasks) {
    const txt = await readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => '');
    for (const s of txt.trim().split(/\s+/)) {
      const n = Number(s);
      if (s !== '' && Number.isInteger(n)) out.push(n);
    }
  }
  return out;
}

async function tree(pid: number): Promise<number[]> {
  const all = [pid];
  for (let i = 0; i < all.length && i < 256; i++) {
    const p = all[i];
    if (p === undefined) break;
    for (const c of await children(p)) all.push(c);
  }
  return all;
}

export interface MemSample {
  /** Resident set size now, KiB, summed over the process tree. */
  rssKiB: number;
  /** High-water mark of RSS (VmHWM), KiB, summed over the process tree. */
  hwmKiB: number;
  processes: number;
}

export async function readMem(pid: number): Promise<MemSample | null> {
  let rss = 0;
  let hwm = 0;
  let n = 0;
  for (const p of await tree(pid)) {
    const st = await readFile(`/proc/${p}/status`, 'utf8').catch(() => null);
    if (st === null) continue;
    const r = /^VmRSS:\s+(\d+) kB/m.exec(st);
    const h = /^VmHWM:\s+(\d+) kB/m.exec(st);
    if (r?.[1] !== undefined) rss += Number(r[1]);
    if (h?.[1] !== undefined) hwm += Number(h[1]);
    n++;
  }
  return n === 0 ? null : { rssKiB: rss, hwmKiB: hwm, processes: n };
}

/** Samples RSS every `intervalMs` until stopped; reports before/max. */
export class RssSampler {
  private maxKiB = 0;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  constructor(
    private readonly pid: number,
    private readonly intervalMs = 50,
  ) {}

  async start(): Promise<number> {
    const m = await readMem(this.pid);
    const before = m?.rssKiB ?? 0;
    this.maxKiB = before;
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      void readMem(this.pid)
        .then((s) => {
          if (s !== null && s.rssKiB > this.maxKiB) this.maxKiB = s.rssKiB;
        })
        .finally(() => {
          this.busy = false;
        });
    }, this.intervalMs);
    return before;
  }

  async stop(): Promise<number> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const m = await readMem(this.pid);
    if (m !== null && m.rssKiB > this.maxKiB) this.maxKiB = m.rssKiB;
    return this.maxKiB;
  }
}
