/**
 * What observability costs on the hottest path: manifest GET by tag on a Berth with metrics and
 * tracing configured, against the same Berth with metrics off and no tracing (the issue's bound:
 * within 5%).
 *
 *   node --import tsx bench/operability.ts [options]     (normally via `npm run bench`)
 *
 * Sides (each its own `berth serve` from dist/, auth off, same image):
 *   off     metrics.enabled: false, no tracing.endpoint
 *   on      metrics on (the default), tracing to an OTLP/HTTP sink in this process with the default
 *           sampling (`tracing.sampleRatio` 0.1 of requests without a caller's decision, at most
 *           `tracing.maxPerSecond` 10 traces a second): what an operator turns on
 *   traced  the same with `sampleRatio: 1` (still capped; shown, not judged)
 * Load: bench/loadgen.c GET, 32 connections, 2 threads; `--reps` pairs of off and on run back to
 * back in alternating order (7 by default; 2 with --quick), then a few runs of traced. Reported per
 * side: median req/s and Berth's CPU per request (µs, from /proc: the steadier number on a noisy
 * machine). The bound is judged on the medians of the pairs' on/off ratios, throughput and CPU.
 *
 * Options (shared with the other bench entry points): --quick, --reps N, --wrk-seconds N (run
 * length, default 10), --doc PATH, --keep; --candidate distribution does nothing here, --report-only puts the last results' section back. Writes its section of docs/benchmarks.md between
 * `<!-- operability-bench:start -->` and `<!-- operability-bench:end -->`, and
 * bench/results/operability-latest.json.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuMs, pushImage, startBerth, stopBerth, tinyImage } from './lib/auth-lib.js';
import { insertMarkedSection } from './lib/doc-section.js';
import { buildLoadgen, runLoadgen } from './lib/loadgen.js';
import { MT } from './lib/fixtures.js';
import { machineInfo } from './lib/machine.js';
import { parseBenchOptions } from './lib/options.js';
import type { Server } from './lib/servers.js';
import { fmtNum, log, median, run, sectionTempDir } from './lib/util.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const opt = parseBenchOptions();
const quick = opt.quick === true;
const reps = Number(opt.reps ?? (quick ? 2 : 7));
const seconds = Number(opt['wrk-seconds'] ?? (quick ? 3 : 10));
const bound = 0.05;
const markers = { start: '<!-- operability-bench:start -->', end: '<!-- operability-bench:end -->' };

type Side = 'off' | 'on' | 'traced';
interface Run {
  side: Side;
  rep: number;
  rps: number;
  cpuUsPerRequest: number | null;
  p99ms: number;
}

interface Summary {
  rps: number | null;
  cpu: number | null;
  p99: number | null;
  min: number;
  max: number;
}

interface Results {
  date: string;
  quick: boolean;
  reps: number;
  seconds: number;
  machine: Awaited<ReturnType<typeof machineInfo>>;
  runs: Run[];
  pairs: Array<{ rps: number; cpu: number | null }>;
  off: Summary;
  on: Summary;
  traced: Summary;
  throughput: number | null;
  cpu: number | null;
  within: boolean;
  spansExported: number;
}

const resultsDir = join(repoRoot, 'bench', 'results');
const REPO = 'bench/manifest';
const TAG = 'bench';

async function otlpSink(): Promise<{ url: string; spans: () => number; server: HttpServer }> {
  let spans = 0;
  const server = createServer((req, res) => {
    let size = 0;
    req.on('data', (chunk: Buffer) => (size += chunk.length));
    req.on('end', () => {
      spans += size > 0 ? 1 : 0;
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, spans: () => spans, server };
}

async function loadgen(binary: string, srv: Server, duration: number): Promise<{ rps: number; requests: number; p99ms: number; failures: number }> {
  const url = `${srv.url}/v2/${REPO}/manifests/${TAG}`;
  const j = await runLoadgen(binary, url, { threads: 2, connections: 32, seconds: duration, headers: [`Accept: ${MT.manifest}`] });
  return { rps: j.rps, requests: j.requests, p99ms: j.p99ms, failures: j.non2xx + j.errors };
}

async function main(): Promise<void> {
  // Berth only: a self-test has nothing to compare. --report-only (bench/run.ts re-rendered the
  // doc without this section) puts the last results' section back.
  if (opt['report-only'] !== undefined) {
    const text = await readFile(join(resultsDir, 'operability-latest.json'), 'utf8').catch(() => null);
    if (text === null) {
      log('operability: no earlier operability results; nothing to re-insert');
      return;
    }
    const doc = typeof opt.doc === 'string' ? resolve(opt.doc) : join(repoRoot, 'docs', 'benchmarks.md');
    await insertMarkedSection(doc, render(JSON.parse(text) as Results), markers);
    log(`operability: re-inserted the section from bench/results/operability-latest.json into ${doc}`);
    return;
  }
  if (opt.candidate !== undefined && opt.candidate !== 'berth') {
    log('operability: self-test (--candidate distribution): the operability bench is Berth only; skipped');
    return;
  }
  if (!Number.isInteger(reps) || reps < 1 || reps > 15) throw new Error('--reps must be 1..15');
  const parent = await sectionTempDir('berth-bench-ops-');
  const servers: Server[] = [];
  const sink = await otlpSink();
  try {
    const binary = await buildLoadgen(repoRoot, parent);
    const ticks = Number((await run('getconf', ['CLK_TCK'], { timeoutMs: 5000 })).stdout.trim()) || 100;
    const configs: Record<Side, Record<string, unknown>> = {
      off: { metrics: { enabled: false } },
      on: { tracing: { endpoint: sink.url } },
      traced: { tracing: { endpoint: sink.url, sampleRatio: 1 } },
    };
    const started = {} as Record<Side, Server>;
    for (const side of ['off', 'on', 'traced'] as const) {
      const srv = await startBerth({ label: `Berth (${side})`, parent, slug: side, repoRoot, config: configs[side], env: { BERTH_AUTH_ENABLED: 'false' } });
      servers.push(srv);
      started[side] = srv;
      await pushImage(srv.url, REPO, TAG, tinyImage(`ops-${side}`), null);
    }
    log('operability: warm-up (2 s each)');
    for (const side of ['off', 'on', 'traced'] as const) await loadgen(binary, started[side], 2);
    const runs: Run[] = [];
    const measure = async (side: Side, rep: number): Promise<Run> => {
      const srv = started[side];
      const cpuBefore = await cpuMs(srv.pid, ticks);
      const result = await loadgen(binary, srv, seconds);
      const cpuAfter = await cpuMs(srv.pid, ticks);
      if (result.failures > 0) throw new Error(`${side}: ${result.failures} failed requests of ${result.requests}`);
      const cpu = cpuBefore !== null && cpuAfter !== null && result.requests > 0 ? ((cpuAfter - cpuBefore) * 1000) / result.requests : null;
      const record = { side, rep, rps: result.rps, cpuUsPerRequest: cpu, p99ms: result.p99ms };
      runs.push(record);
      log(`operability: ${side.padEnd(6)} rep ${rep}: ${result.rps.toFixed(0)} req/s, ${cpu === null ? '?' : cpu.toFixed(1)} µs CPU/request`);
      return record;
    };
    // off and on back to back, in alternating order, so each rep is a pair measured under the same
    // conditions (the machine is shared); the judged ratios are the medians of the pairs' ratios.
    const pairs: Array<{ rps: number; cpu: number | null }> = [];
    for (let rep = 1; rep <= reps; rep++) {
      const [first, second] = rep % 2 === 1 ? (['off', 'on'] as const) : (['on', 'off'] as const);
      const a = await measure(first, rep);
      const b = await measure(second, rep);
      const [offRun, onRun] = first === 'off' ? [a, b] : [b, a];
      pairs.push({
        rps: onRun.rps / offRun.rps,
        cpu: onRun.cpuUsPerRequest !== null && offRun.cpuUsPerRequest !== null ? onRun.cpuUsPerRequest / offRun.cpuUsPerRequest : null,
      });
    }
    for (let rep = 1; rep <= Math.min(reps, 3); rep++) await measure('traced', rep);
    const summary = (side: Side) => ({
      rps: median(runs.filter((r) => r.side === side).map((r) => r.rps)),
      cpu: median(runs.filter((r) => r.side === side && r.cpuUsPerRequest !== null).map((r) => r.cpuUsPerRequest as number)),
      p99: median(runs.filter((r) => r.side === side).map((r) => r.p99ms)),
      min: Math.min(...runs.filter((r) => r.side === side).map((r) => r.rps)),
      max: Math.max(...runs.filter((r) => r.side === side).map((r) => r.rps)),
    });
    const off = summary('off');
    const on = summary('on');
    const traced = summary('traced');
    const throughput = median(pairs.map((p) => p.rps));
    const cpu = median(pairs.filter((p) => p.cpu !== null).map((p) => p.cpu as number));
    const within = throughput !== null && cpu !== null && throughput >= 1 - bound && cpu <= 1 + bound;
    const machine = await machineInfo(repoRoot, parent);
    const results: Results = {
      date: new Date().toISOString(),
      quick,
      reps,
      seconds,
      machine,
      runs,
      pairs,
      off,
      on,
      traced,
      throughput,
      cpu,
      within,
      spansExported: sink.spans(),
    };
    await mkdir(resultsDir, { recursive: true });
    await writeFile(join(resultsDir, `${quick ? 'partial-' : ''}operability-latest.json`), `${JSON.stringify(results, null, 2)}\n`);
    const doc = typeof opt.doc === 'string' ? resolve(opt.doc) : join(repoRoot, 'docs', 'benchmarks.md');
    await insertMarkedSection(doc, render(results), markers);
    log(`operability: on/off throughput ${fmtNum(throughput, 3)}x, CPU/request ${fmtNum(cpu, 3)}x; section written to ${doc}`);
  } finally {
    for (const srv of servers) await stopBerth(srv).catch(() => undefined);
    await new Promise<void>((ok) => sink.server.close(() => ok()));
    if (opt.keep !== true) await rm(parent, { recursive: true, force: true });
  }
}

/** The section of docs/benchmarks.md for `r`. */
function render(r: Results): string {
  const row = (name: string, s: Summary) =>
    `| ${name} | ${fmtNum(s.rps, 0)} (${fmtNum(s.min, 0)}–${fmtNum(s.max, 0)}) | ${fmtNum(s.cpu, 1)} | ${fmtNum(s.p99, 2)} |`;
  return [
    markers.start,
    '## Observability overhead: manifest GET',
    '',
    `Generated by \`bench/operability.ts\` (\`npm run bench -- --only operability\`) on ${r.date.slice(0, 10)}, ${r.machine.cores} cores (${r.machine.cpuModel}), Node.js ${r.machine.node}. ` +
      `Three \`berth serve\` processes (auth off): **off** (\`metrics.enabled: false\`, no tracing), **on** (metrics, and tracing to an OTLP/HTTP sink with the default sampling: \`tracing.sampleRatio\` 0.1, at most \`tracing.maxPerSecond\` 10 traces a second), **traced** (\`sampleRatio: 1\`, the same cap; shown, not judged). ` +
      `GET \`/v2/${REPO}/manifests/${TAG}\` with \`bench/loadgen.c\`, 32 connections, 2 threads, ${r.seconds} s per run: ${r.reps} pairs of off and on back to back (order alternating), then ${Math.min(r.reps, 3)} runs of traced; medians, range in brackets. CPU is Berth's user + system time per completed request (from /proc), the steadier measure on a shared machine. The ratios below are the medians of each pair's on/off ratio.`,
    '',
    '| Side | req/s | CPU µs/request | p99 ms |',
    '| --- | ---: | ---: | ---: |',
    row('off', r.off),
    row('on', r.on),
    row('traced', r.traced),
    '',
    `**on / off: ${fmtNum(r.throughput, 3)}× throughput, ${fmtNum(r.cpu, 3)}× CPU per request: ${r.within ? `within the ${bound * 100}% bound` : `**outside** the ${bound * 100}% bound`}.**${r.quick ? ' (Quick mode: too short to judge.)' : ''}`,
    markers.end,
  ].join('\n');
}

await main();
