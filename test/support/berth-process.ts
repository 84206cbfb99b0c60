/**
 * Runs the built Berth CLI (`dist/bin/berth.js serve`) as a child process on
 * a random loopback port, for end-to-end tests.
 *
 * Contract relied on (see the CLI): with `--addr 127.0.0.1:0` the server picks
 * a free port and, once it accepts connections, logs a JSON line on stdout
 * containing `"msg":"listening"` and `"url":"http://127.0.0.1:<port>"`.
 * SIGTERM shuts it down gracefully.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BERTH_CLI = join(REPO_ROOT, 'dist', 'bin', 'berth.js');
/** The CLI's TypeScript source, run with `nodeArgs: ['--import', 'tsx']`. */
export const BERTH_SOURCE_CLI = join(REPO_ROOT, 'src', 'bin', 'berth.ts');

/** Not a test assertion: only a bound on how long a broken start may hang a run. */
const DEFAULT_START_TIMEOUT_MS = 30_000;
const DEFAULT_STOP_TIMEOUT_MS = 15_000;
/** How much of each output stream is kept for error messages. */
const OUTPUT_TAIL_BYTES = 64 * 1024;

export interface StartBerthOptions {
  /** Data directory; when omitted a temp dir is created and removed by stop()/kill(). */
  dataDir?: string;
  /** Extra environment, merged over process.env. */
  env?: NodeJS.ProcessEnv;
  /**
   * Run with the token service on (Berth's default). Off by default here, because most process
   * tests exercise the registry API itself; auth tests turn it on and log in like a user would.
   */
  auth?: boolean;
  /** Extra CLI arguments appended after `serve --addr ... --data ...`. */
  args?: string[];
  /** Bound on waiting for the "listening" line; a failure, never an assertion on speed. */
  startTimeoutMs?: number;
  /** CLI entry point to run with node; defaults to the build output dist/bin/berth.js. */
  cliPath?: string;
  /**
   * Node options placed before the CLI path, e.g. `['--import', 'tsx']` with
   * `cliPath: BERTH_SOURCE_CLI` to run the TypeScript sources without a build.
   */
  nodeArgs?: string[];
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A registry server running as a child process (Berth or the reference registry). */
export interface ServerProcess {
  /** e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** `127.0.0.1:<port>`: what goes into image references. */
  host: string;
  dataDir: string;
  proc: ChildProcess;
  /** SIGTERM, wait for exit (SIGKILL if it hangs), then remove an owned temp data dir. */
  stop(): Promise<ExitInfo>;
  /** SIGKILL (simulated crash), wait for exit, then remove an owned temp data dir. */
  kill(): Promise<ExitInfo>;
  /** Captured stdout/stderr tails, for diagnostics. */
  output(): { stdout: string; stderr: string };
}

export type BerthProcess = ServerProcess;

/** Children still running; SIGKILLed if the test process exits without stopping them. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Registers a server child so it cannot outlive the test process; returns its exit. */
export function trackChild(proc: ChildProcess): Promise<ExitInfo> {
  live.add(proc);
  const exited = waitForExit(proc);
  void exited.then(() => live.delete(proc));
  return exited;
}

export async function startBerth(options: StartBerthOptions = {}): Promise<BerthProcess> {
  const cli = options.cliPath ?? BERTH_CLI;
  if (!existsSync(cli)) {
    throw new Error(`${cli} does not exist: run \`npm run build\` before the e2e tests`);
  }
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'berth-e2e-data-')));
  const args = [...(options.nodeArgs ?? []), cli, 'serve', '--addr', '127.0.0.1:0', '--data', dataDir, ...(options.args ?? [])];
  const proc = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, BERTH_AUTH_ENABLED: options.auth ? 'true' : 'false', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = captureOutput(proc);
  const exited = trackChild(proc);

  const cleanup = async (): Promise<void> => {
    if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
  };
  const describe = (): string => `command: ${process.execPath} ${args.join(' ')}\n--- stderr ---\n${out.stderr()}\n--- stdout ---\n${out.stdout()}`;

  let url: string;
  try {
    url = await waitForListening(out, exited, options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
  } catch (err) {
    proc.kill('SIGKILL');
    await exited;
    await cleanup();
    throw new Error(`Berth did not start: ${(err as Error).message}\n${describe()}`, { cause: err });
  }

  const terminate = async (signal: NodeJS.Signals): Promise<ExitInfo> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    const info = await raceTimeout(exited, DEFAULT_STOP_TIMEOUT_MS);
    if (info === undefined) {
      proc.kill('SIGKILL');
      await exited;
      await cleanup();
      throw new Error(`Berth did not exit within ${DEFAULT_STOP_TIMEOUT_MS} ms of ${signal}\n${describe()}`);
    }
    await cleanup();
    return info;
  };

  return {
    url,
    host: new URL(url).host,
    dataDir,
    proc,
    stop: () => terminate('SIGTERM'),
    kill: () => terminate('SIGKILL'),
    output: () => ({ stdout: out.stdout(), stderr: out.stderr() }),
  };
}

// ---------------------------------------------------------------------------

export interface CapturedOutput {
  stdout(): string;
  stderr(): string;
  /** Registers a callback for each complete stdout line (past and future). */
  onStdoutLine(cb: (line: string) => void): void;
}

/**
 * Keeps draining both pipes for the life of the child (a full pipe would
 * block the server) and remembers the last OUTPUT_TAIL_BYTES of each.
 */
export function captureOutput(proc: ChildProcess): CapturedOutput {
  let stdout = '';
  let stderr = '';
  let partial = '';
  const lines: string[] = [];
  const listeners: ((line: string) => void)[] = [];
  proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout = tail(stdout + chunk);
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      lines.push(line);
      for (const cb of listeners) cb(line);
    }
  });
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = tail(stderr + chunk);
  });
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    onStdoutLine: (cb) => {
      listeners.push(cb);
      for (const line of lines) cb(line);
    },
  };
}

function tail(text: string): string {
  return text.length > OUTPUT_TAIL_BYTES ? text.slice(-OUTPUT_TAIL_BYTES) : text;
}

/** Resolves with the announced URL; rejects on early exit or timeout. */
function waitForListening(out: CapturedOutput, exited: Promise<ExitInfo>, timeoutMs: number): Promise<string> {
  return new Promise<string>((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`no "listening" log line on stdout within ${timeoutMs} ms`));
    }, timeoutMs);
    void exited.then((info) => {
      clearTimeout(timer);
      reject(new Error(`process exited before listening (code ${info.code}, signal ${info.signal})`));
    });
    out.onStdoutLine((line) => {
      const url = parseListeningUrl(line);
      if (url === undefined) return;
      clearTimeout(timer);
      resolvePromise(url);
    });
  });
}

/** The `url` of a JSON log line whose `msg` is "listening", if that is what `line` is. */
export function parseListeningUrl(line: string): string | undefined {
  if (!line.includes('"listening"')) return undefined;
  try {
    const record = JSON.parse(line) as { msg?: unknown; url?: unknown };
    if (record.msg === 'listening' && typeof record.url === 'string') return record.url;
  } catch {
    // not JSON: some other output
  }
  return undefined;
}

/**
 * Resolves once the child has exited and its stdio is drained ('close'), so
 * that captured output is complete; also resolves if it could not be spawned.
 * Call it right after spawn().
 */
export function waitForExit(proc: ChildProcess): Promise<ExitInfo> {
  return new Promise((resolvePromise) => {
    proc.once('close', (code, signal) => resolvePromise({ code, signal }));
    proc.once('error', () => resolvePromise({ code: proc.exitCode, signal: proc.signalCode }));
  });
}

export async function raceTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolvePromise) => {
    timer = setTimeout(() => resolvePromise(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
