/**
 * Client start-up: issue 13's "`berth --help` and every client command start in ≤ 0.15 s". Each
 * command is run as a user runs it (what its `#!` line runs), against one local
 * Berth (auth on, a bootstrap owner) for those that talk to a registry. Measured per run:
 *
 *   start   until the command opens its first connection, or until it exits if it opens none
 *           (a preloaded script notes the time of the first `connect` and the peak RSS at exit);
 *   exit    wall time from spawn to exit, as the parent sees it;
 *   RSS     the process's peak resident memory.
 *
 * `node -e ''` runs alongside as this machine's floor. Every command runs twice untimed (page
 * cache), then `reps` × 10 times (3 with --quick), interleaved; medians with the range.
 *
 *   node --import tsx bench/cli.ts [--quick] [--reps N] [--doc PATH] [--keep]
 *   (normally via `npm run bench`, or `npm run bench -- --only cli`)
 *
 * Writes its section of docs/benchmarks.md between `<!-- cli-bench:start -->` and
 * `<!-- cli-bench:end -->`, and bench/results/cli-latest.json.
 */
import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBerth, stopBerth } from './lib/auth-lib.js';
import { machineInfo } from './lib/machine.js';
import { parseBenchOptions } from './lib/options.js';
import { startMarkedSectionBench, startWatchdog } from './lib/section-bench.js';
import type { Server } from './lib/servers.js';
import { fmtNum, log, median, sectionTempDir } from './lib/util.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const resultsDir = join(repoRoot, 'bench', 'results');
const opt = parseBenchOptions();
const quick = opt.quick === true;
const markers = { start: '<!-- cli-bench:start -->', end: '<!-- cli-bench:end -->' };
const ownerName = 'bench-owner';
const ownerPassword = 'bench-owner-password-1';
/** Issue 13's bound on a client command's start, in ms. */
const targetMs = 150;

/** Preloaded into every measured process (`NODE_OPTIONS=--require`): the first connect's time and the peak RSS, on stderr. */
const probe = `const net = require('node:net');
const connect = net.Socket.prototype.connect;
let first;
net.Socket.prototype.connect = function (...args) { first ??= performance.now(); return connect.apply(this, args); };
process.on('exit', () => process.stderr.write('\\nBENCH-PROBE ' + JSON.stringify({ connectMs: first ?? null, exitMs: performance.now(), maxRssKiB: process.resourceUsage().maxRSS }) + '\\n'));
`;

interface Sample {
  startMs: number;
  wallMs: number;
  maxRssMiB: number;
}

interface CommandResult {
  id: string;
  title: string;
  network: boolean;
  samples: Sample[];
}

interface Results {
  date: string;
  quick: boolean;
  runs: number;
  machine: Awaited<ReturnType<typeof machineInfo>>;
  commands: CommandResult[];
  errors: string[];
}

interface Command {
  id: string;
  title: string;
  /** A script run through its `#!` line (see `asShebangRuns`), or an executable. */
  file: string;
  args: string[];
  stdin?: string;
  /** True if the command must reach the registry (its start is its first connection). */
  network: boolean;
  /** Checks one run's output; throws if the command did not do its job. */
  check: (stdout: string, stderr: string) => void;
}

/**
 * What running `file` directly runs, read from its `#!` line as the kernel does (`/usr/bin/env [-S]
 * [NAME=value…] node [flags…]`, or an interpreter such as `/bin/sh`), so that a build without the
 * executable bit is measured as installed.
 */
async function asShebangRuns(file: string): Promise<{ cmd: string; args: string[]; env: Record<string, string> }> {
  const first = (await readFile(file, 'utf8')).split('\n', 1)[0] ?? '';
  const words = first.startsWith('#!') ? first.slice(2).trim().split(/\s+/) : [];
  const [interpreter, ...rest] = words;
  if (interpreter === undefined) throw new Error(`${file}: no #! line`);
  if (interpreter !== '/usr/bin/env') return { cmd: interpreter, args: [...rest, file], env: {} };
  const envArgs = rest.filter((w) => w !== '-S');
  const env: Record<string, string> = {};
  while (envArgs[0]?.includes('=')) {
    const [name, ...value] = envArgs.shift()!.split('=');
    env[name!] = value.join('=');
  }
  const program = envArgs.shift();
  if (program !== 'node') throw new Error(`${file}: unexpected #! line ${first}`);
  return { cmd: process.execPath, args: [...envArgs, file], env };
}

async function runOnce(command: Command, env: NodeJS.ProcessEnv): Promise<Sample> {
  const how = command.file.endsWith('.js') ? await asShebangRuns(command.file) : { cmd: command.file, args: [], env: {} };
  return new Promise((resolvePromise, reject) => {
    const t0 = performance.now();
    const child = spawn(how.cmd, [...how.args, ...command.args], { env: { ...env, ...how.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      const wallMs = performance.now() - t0;
      clearTimeout(timer);
      const probeLine = /BENCH-PROBE (\{.*\})/.exec(stderr)?.[1];
      try {
        if (code !== 0) throw new Error(`exit code ${String(code)}`);
        if (probeLine === undefined) throw new Error('no probe line');
        const userErr = stderr.replace(/\n?BENCH-PROBE .*\n?/, '');
        command.check(stdout, userErr);
        const p = JSON.parse(probeLine) as { connectMs: number | null; exitMs: number; maxRssKiB: number };
        if (command.network && p.connectMs === null) throw new Error('it opened no connection');
        resolvePromise({ startMs: p.connectMs ?? p.exitMs, wallMs, maxRssMiB: p.maxRssKiB / 1024 });
      } catch (err) {
        reject(new Error(`${command.title}: ${(err as Error).message}\nstdout: ${stdout.slice(0, 500)}\nstderr: ${stderr.slice(0, 1000)}`));
      }
    });
    child.stdin.end(command.stdin ?? '');
  });
}

async function main(): Promise<void> {
  const started = await startMarkedSectionBench<Results>({ name: 'cli', selfTestReason: 'measures Berth only', opt, repoRoot, resultsDir, markers, render });
  if (!started) return;
  const reps = Number(opt.reps ?? 1);
  if (!Number.isInteger(reps) || reps < 1 || reps > 9) throw new Error('--reps must be 1..9');
  const runs = (quick ? 3 : 10) * reps;
  const stopWatchdog = startWatchdog('cli', 10 * 60_000);
  const parent = await sectionTempDir('berth-bench-cli-');
  let server: Server | undefined;
  try {
    server = await startBerth({
      label: 'Berth (auth on)',
      parent,
      slug: 'cli',
      repoRoot,
      config: { auth: { bootstrap: { user: ownerName, password: ownerPassword } } },
    });
    const host = new URL(server.url).host;
    const probePath = join(parent, 'probe.cjs');
    await writeFile(probePath, probe);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_OPTIONS: `--require ${probePath}`,
      DOCKER_CONFIG: join(parent, 'docker'),
      BERTH_CONFIG_DIR: join(parent, 'berth'),
      HOME: parent,
    };
    const berth = join(repoRoot, 'dist', 'bin', 'berth.js');
    const helper = join(repoRoot, 'dist', 'bin', 'docker-credential-berth.js');
    const jwt = /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/m;
    /** A check that the command printed `expected` on stdout. */
    const prints = (expected: string | RegExp, what: string) => (out: string) => {
      if (typeof expected === 'string' ? !out.includes(expected) : !expected.test(out)) throw new Error(`no ${what}`);
    };
    const commands: Command[] = [
      { id: 'node', title: "`node -e ''` (this machine's floor)", file: process.execPath, args: ['-e', ''], network: false, check: () => undefined },
      {
        id: 'help',
        title: '`berth --help`',
        file: berth,
        args: ['--help'],
        network: false,
        check: prints('Usage: berth', 'usage'),
      },
      {
        id: 'admin-help',
        title: '`berth admin principal --help`',
        file: berth,
        args: ['admin', 'principal', '--help'],
        network: false,
        check: prints('Usage: berth admin principal', 'usage'),
      },
      {
        id: 'login',
        title: '`berth login HOST --username … --password-stdin`',
        file: berth,
        args: ['login', host, '--username', ownerName, '--password-stdin'],
        stdin: `${ownerPassword}\n`,
        network: true,
        check: prints('Login Succeeded', '"Login Succeeded"'),
      },
      {
        id: 'token',
        title: '`berth token HOST --scope …` (the stored login)',
        file: berth,
        args: ['token', host, '--scope', 'repository:bench/app:pull'],
        network: true,
        check: prints(jwt, 'token printed'),
      },
      {
        id: 'helper-store',
        title: '`docker-credential-berth store` (a password, traded for a refresh token)',
        file: helper,
        args: ['store'],
        stdin: JSON.stringify({ ServerURL: host, Username: ownerName, Secret: ownerPassword }),
        network: true,
        check: () => undefined,
      },
      {
        id: 'helper-get',
        title: '`docker-credential-berth get` (from its file)',
        file: helper,
        args: ['get'],
        stdin: host,
        network: false,
        check: prints('"Secret"', 'credential'),
      },
    ];
    const results: Results = { date: new Date().toISOString(), quick, runs, machine: await machineInfo(repoRoot, parent), commands: [], errors: [] };
    const byId = new Map<string, CommandResult>();
    for (const c of commands) {
      const entry: CommandResult = { id: c.id, title: c.title, network: c.network, samples: [] };
      byId.set(c.id, entry);
      results.commands.push(entry);
    }
    // Untimed: the page cache, the server's first grants (a password check misses its cache once).
    for (let i = 0; i < 2; i++) for (const c of commands) await runOnce(c, env);
    for (let i = 0; i < runs; i++) {
      for (const c of commands) {
        try {
          byId.get(c.id)!.samples.push(await runOnce(c, env));
        } catch (err) {
          results.errors.push((err as Error).message);
          if (results.errors.length > 5) throw err;
        }
      }
    }
    for (const c of results.commands) {
      const start = median(c.samples.map((s) => s.startMs));
      log(`cli: ${c.id}: start ${fmtNum(start, 0)} ms, exit ${fmtNum(median(c.samples.map((s) => s.wallMs)), 0)} ms`);
    }
    await started.publish(results);
  } finally {
    stopWatchdog();
    if (server) await stopBerth(server).catch(() => undefined);
    if (opt.keep !== true) await rm(parent, { recursive: true, force: true });
  }
}

function render(r: Results): string {
  const range = (values: number[], digits: number) =>
    values.length === 0 ? '—' : `${fmtNum(median(values), digits)} (${fmtNum(Math.min(...values), digits)}–${fmtNum(Math.max(...values), digits)})`;
  const rows = r.commands.map((c) => {
    const start = median(c.samples.map((s) => s.startMs));
    const verdict = c.id === 'node' ? '—' : start === null ? 'error' : start <= targetMs ? 'ok' : 'over';
    return `| ${c.title} | ${c.network ? 'first connection' : 'exit'} | ${range(
      c.samples.map((s) => s.startMs),
      0,
    )} | ${range(
      c.samples.map((s) => s.wallMs),
      0,
    )} | ${range(
      c.samples.map((s) => s.maxRssMiB),
      0,
    )} | ${verdict} |`;
  });
  return [
    markers.start,
    '## Client start-up',
    '',
    `Generated by \`bench/cli.ts\` (\`npm run bench -- --only cli\`) on ${r.date.slice(0, 10)}, ${r.machine.cores} cores (${r.machine.cpuModel}), Node.js ${r.machine.node}. ` +
      `Each command run as a user runs it (what its \`#!\` line runs: for \`berth\` the shell lines of \`src/bin/berth.ts\`, for the credential helper \`node\`), ${r.runs} times after two untimed runs, interleaved; medians (range). ` +
      `Start: until the command opens its first connection (commands that reach the registry: one local Berth with auth on), else until it exits; a script preloaded with \`NODE_OPTIONS=--require\` notes the time (from the process's start) and the peak RSS. Exit: wall time from spawn to exit as the parent sees it. Target (issue 13): every client command starts in ≤ ${targetMs} ms.`,
    '',
    '| Command | Start is | Start, ms | Exit, ms | Peak RSS, MiB | ≤ 150 ms |',
    '| --- | --- | ---: | ---: | ---: | --- |',
    ...rows,
    ...(r.errors.length > 0 ? ['', `Errors (${r.errors.length}):`, '', ...r.errors.map((e) => `- ${e.split('\n')[0] ?? ''}`)] : []),
    '',
    'A command that reaches the registry loads the client (the token protocol, the credential stores) and sends over node:http (`src/remote/node-transport.ts`); undici, which the server uses for its own requests, took 85–90 ms to load on this machine and is not loaded by any client command. Exit includes the round trips and the server’s work (a refresh or password grant).',
    markers.end,
  ].join('\n');
}

await main();
