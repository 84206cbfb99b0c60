/**
 * Two replicas against one, on this machine: two `berth serve` processes sharing one PostgreSQL
 * database and one storage directory (as replicas share a database and an S3 bucket), against one
 * of them alone. On 2 cores no gain is expected; the point is that nothing serialises across
 * replicas: the same load spread over two processes should run about as fast as on one.
 *
 *   manifest GET   wrk, 32 connections for 10 s: all on one replica, or 16 on each (two wrk
 *                  processes at once, their rates added);
 *   blob push      64 KiB blobs of fresh random bytes (POST + PUT ?digest=), 8 in flight for 10 s:
 *                  all to one replica, or alternating between the two.
 * Each pair of runs alternates which goes first; `--reps` pairs (3; 1 with --quick), medians. Auth is
 * off (load only). PostgreSQL is the tests' (test/support/postgres.ts: BERTH_TEST_POSTGRES_URL, else a
 * private cluster from scripts/postgres/start.sh).
 *
 *   node --import tsx bench/replicas.ts [--quick] [--reps N] [--doc PATH] [--keep]
 *   (normally via `npm run bench`, or `npm run bench -- --only replicas`)
 *
 * Writes its section of docs/benchmarks.md between `<!-- replicas-bench:start -->` and
 * `<!-- replicas-bench:end -->`, and bench/results/replicas-latest.json.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { postgresMetadataFor } from '../test/support/postgres.js';
import { keepAliveAgent, loadLoop, pushImage, startBerth, stopBerth, tinyImage } from './lib/auth-lib.js';
import { MT } from './lib/fixtures.js';
import { machineInfo } from './lib/machine.js';
import { parseBenchOptions } from './lib/options.js';
import { pushBlob } from './lib/registry.js';
import { parseWrk } from './lib/scenarios.js';
import { startMarkedSectionBench, startWatchdog } from './lib/section-bench.js';
import type { Server } from './lib/servers.js';
import { fmtNum, log, median, run, sectionTempDir } from './lib/util.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const resultsDir = join(repoRoot, 'bench', 'results');
const opt = parseBenchOptions();
const quick = opt.quick === true;
const markers = { start: '<!-- replicas-bench:start -->', end: '<!-- replicas-bench:end -->' };
const seconds = quick ? 3 : 10;

type Layout = 'one' | 'two';
interface Results {
  date: string;
  quick: boolean;
  reps: number;
  machine: Awaited<ReturnType<typeof machineInfo>>;
  manifest: Record<Layout, number[]>;
  push: Record<Layout, number[]>;
  errors: string[];
}

async function wrk(url: string, threads: number, connections: number): Promise<number> {
  const r = await run('wrk', [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '-H', `Accept: ${MT.manifest}`, url], {
    timeoutMs: (seconds + 30) * 1000,
  });
  if (r.code !== 0) throw new Error(`wrk exited ${String(r.code)}: ${r.stderr}`);
  const result = parseWrk(r.stdout);
  if (result.non2xx > 0 || result.socketErrors > 0) throw new Error(`wrk saw ${result.non2xx} non-2xx answers and ${result.socketErrors} socket errors`);
  return result.requestsPerSecond;
}

async function main(): Promise<void> {
  const started = await startMarkedSectionBench<Results>({
    name: 'replicas',
    selfTestReason: 'measures Berth only',
    opt,
    repoRoot,
    resultsDir,
    markers,
    render,
  });
  if (!started) return;
  const reps = Number(opt.reps ?? (quick ? 1 : 3));
  if (!Number.isInteger(reps) || reps < 1 || reps > 9) throw new Error('--reps must be 1..9');
  const stopWatchdog = startWatchdog('replicas', 15 * 60_000);
  const parent = await sectionTempDir('berth-bench-replicas-');
  const replicas: Server[] = [];
  try {
    const metadata = await postgresMetadataFor(`bench-replicas-${randomUUID()}`);
    const config = { metadata, storage: { driver: 'filesystem', root: join(parent, 'storage') } };
    for (const name of ['a', 'b']) {
      replicas.push(
        await startBerth({ label: `Berth replica ${name}`, parent, slug: `replica-${name}`, repoRoot, config, env: { BERTH_AUTH_ENABLED: 'false' } }),
      );
    }
    const [a, b] = replicas as [Server, Server];
    await pushImage(a.url, 'bench/replicas', 'bench', tinyImage('replicas'), null);
    const path = '/v2/bench/replicas/manifests/bench';
    const manifestRun = async (layout: Layout): Promise<number> =>
      layout === 'one'
        ? wrk(`${a.url}${path}`, 2, 32)
        : (await Promise.all([wrk(`${a.url}${path}`, 1, 16), wrk(`${b.url}${path}`, 1, 16)])).reduce((x, y) => x + y, 0);
    const agents = [keepAliveAgent(8), keepAliveAgent(8)];
    const pushRun = async (layout: Layout): Promise<number> => {
      const result = await loadLoop({
        concurrency: 8,
        maxRequests: 1_000_000,
        maxMs: seconds * 1000,
        one: async (i) => {
          const data = randomBytes(64 * 1024);
          const target = layout === 'one' || i % 2 === 0 ? 0 : 1;
          await pushBlob(replicas[target]!.url, 'bench/replicas-push', data, `sha256:${createHash('sha256').update(data).digest('hex')}`, agents[target]);
          return null;
        },
      });
      if (result.failed > 0) throw new Error(`${result.failed} pushes failed; the first: ${result.firstFailure ?? ''}`);
      return result.perSecond;
    };
    for (const kind of ['manifest', 'push'] as const) await (kind === 'manifest' ? manifestRun('two') : pushRun('two')); // warm-up
    const results: Results = {
      date: new Date().toISOString(),
      quick,
      reps,
      machine: await machineInfo(repoRoot, parent),
      manifest: { one: [], two: [] },
      push: { one: [], two: [] },
      errors: [],
    };
    for (let rep = 1; rep <= reps; rep++) {
      const order: Layout[] = rep % 2 === 1 ? ['one', 'two'] : ['two', 'one'];
      for (const layout of order) {
        const rate = await manifestRun(layout);
        results.manifest[layout].push(rate);
        log(`replicas: rep ${rep} manifest GET, ${layout}: ${rate.toFixed(0)} req/s`);
      }
      for (const layout of order) {
        const rate = await pushRun(layout);
        results.push[layout].push(rate);
        log(`replicas: rep ${rep} blob push, ${layout}: ${rate.toFixed(0)} blobs/s`);
      }
    }
    await started.publish(results);
  } finally {
    stopWatchdog();
    for (const srv of replicas) await stopBerth(srv).catch(() => undefined);
    if (opt.keep !== true) await rm(parent, { recursive: true, force: true });
  }
}

function render(r: Results): string {
  const row = (title: string, unit: string, values: Record<Layout, number[]>) => {
    const one = median(values.one);
    const two = median(values.two);
    return `| ${title} | ${unit} | ${fmtNum(one, 0)} (${values.one.map((v) => fmtNum(v, 0)).join(', ')}) | ${fmtNum(two, 0)} (${values.two.map((v) => fmtNum(v, 0)).join(', ')}) | ${one !== null && two !== null ? `${fmtNum(two / one, 2)}×` : '—'} |`;
  };
  return [
    markers.start,
    '## Two replicas against one',
    '',
    `Generated by \`bench/replicas.ts\` (\`npm run bench -- --only replicas\`) on ${r.date.slice(0, 10)}, ${r.machine.cores} cores (${r.machine.cpuModel}), Node.js ${r.machine.node}. ` +
      `Two \`berth serve\` processes (auth off) sharing one PostgreSQL database and one storage directory, against one of them alone; ${seconds} s per run, ${r.reps} pair${r.reps === 1 ? '' : 's'} of runs with the order alternating, medians (runs in brackets). ` +
      `Manifest GET: wrk with 32 connections on one replica, or two wrk processes with 16 each at once (rates added). Blob push: 64 KiB of fresh random bytes per blob (POST + PUT ?digest=), 8 in flight, all to one replica or alternating.`,
    '',
    '| Load | Unit | One replica | Two replicas | Two / one |',
    '| --- | --- | ---: | ---: | ---: |',
    row('Manifest GET by tag', 'req/s', r.manifest),
    row('64 KiB blob push', 'blobs/s', r.push),
    '',
    'On 2 cores the two processes, PostgreSQL and the load generators share the same CPUs, so a gain is not expected; a ratio near 1 says that spreading the load over replicas costs nothing, and nothing serialises across them. ' +
      'What replicas share, and how: blob bytes in storage (written under a fresh upload name and renamed, or on S3 put by key, so two writers of one blob never collide); every row in PostgreSQL (a manifest push is one transaction; background work is leased per row, so two replicas never run the same job); nothing else. ' +
      'What each replica keeps for itself, in memory: verified tokens (each replica checks a token once), the login throttle, the anonymous-pull patterns (re-read every 5 s), the list of revoked signing keys (re-read every `auth.keyRevocationCheckMs`), and compiled SQL statements.',
    markers.end,
  ].join('\n');
}

await main();
