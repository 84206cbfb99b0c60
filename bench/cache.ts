/**
 * Pull-through cache benchmark: a cold pull of a large layer through Berth's cache against the same
 * pull straight from the upstream (CNCF Distribution), and a warm pull (a cache hit) against
 * Berth's own blob GET of pushed content.
 *
 *   node --import tsx bench/cache.ts [options]      (normally via `npm run bench`)
 *
 * Accepts the options of bench/run.ts (scripts/bench.sh passes the same arguments) and uses:
 *   --quick                 a 64 MiB layer, 1 repetition
 *   --reps N                repetitions per measurement (default 3)
 *   --doc PATH              the Markdown file to put the section in
 *   --only …                `--only cache` alone writes docs/benchmarks.md; a mix writes the
 *                           partial doc the main run just wrote
 *   --keep                  keep the temporary data directory
 *   --report-only FILE      re-insert the last cache section into the doc bench/run.ts re-rendered
 *   --candidate distribution  (self-test) nothing to do
 *
 * Writes the section between `<!-- cache-bench:start -->` and `<!-- cache-bench:end -->` and
 * bench/results/cache-<stamp>.json + cache-latest.json (`partial-` prefix with --quick).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuMs, startBerth, stopBerth } from './lib/auth-lib.js';
import { insertCacheSection, renderCacheSection, type CacheCpuRun, type CacheResults, type CacheRow } from './lib/cache-report.js';
import { machineInfo } from './lib/machine.js';
import { parseBenchOptions } from './lib/options.js';
import { describeExchange, ProtocolError, pushBlob } from './lib/registry.js';
import { startServer, stopServer } from './lib/servers.js';
import { log, median, MiB, run, sectionTempDir } from './lib/util.js';
import { startSectionBench, startWatchdog, stopServers, type StartedServer } from './lib/section-bench.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const resultsDir = join(repoRoot, 'bench', 'results');
const opt = parseBenchOptions();
const quick = opt.quick === true;
const cfg = {
  reps: opt.reps !== undefined ? Math.max(1, Number(opt.reps)) : quick ? 1 : 3,
  layerBytes: quick ? 64 * MiB : 256 * MiB,
};
/** Bounds on a broken run, not measurements. */
const PULL_TIMEOUT_MS = 10 * 60_000;
const WATCHDOG_MS = 30 * 60_000;

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** A monolithic push with curl (`POST …/blobs/uploads/?digest=` with the whole file): seconds, after checking the status. */
async function push(base: string, repository: string, digest: string, file: string): Promise<number> {
  const res = await run(
    'curl',
    [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{time_total}',
      '-X',
      'POST',
      '-H',
      'content-type: application/octet-stream',
      '--data-binary',
      `@${file}`,
      `${base}/v2/${repository}/blobs/uploads/?digest=${digest}`,
    ],
    { timeoutMs: PULL_TIMEOUT_MS },
  );
  const [status, seconds] = res.stdout.trim().split(' ');
  if (res.code !== 0 || status !== '201')
    throw new Error(`push to ${base}/${repository}: curl exit ${String(res.code)}, HTTP ${status}: ${res.stderr.trim().slice(-500)}`);
  return Number(seconds);
}

/** One GET with curl into /dev/null: seconds, after checking the status and the size. */
async function pull(url: string, size: number): Promise<{ seconds: number; cache: string | null }> {
  const res = await run('curl', ['-s', '-D', '-', '-o', '/dev/null', '-w', '\n%{http_code} %{size_download} %{time_total}', url], {
    timeoutMs: PULL_TIMEOUT_MS,
  });
  const lines = res.stdout.trim().split('\n');
  const [status, downloaded, seconds] = (lines.at(-1) ?? '').split(' ');
  if (res.code !== 0 || status !== '200' || Number(downloaded) !== size) {
    throw new Error(`GET ${url}: curl exit ${String(res.code)}, HTTP ${status}, ${downloaded} of ${size} bytes: ${res.stderr.trim().slice(-500)}`);
  }
  const cache =
    lines
      .find((l) => /^berth-cache:/i.test(l))
      ?.replace(/^berth-cache:\s*/i, '')
      .trim() ?? null;
  return { seconds: Number(seconds), cache };
}

/** CPU time every core of the machine spent busy so far (not idle or waiting for I/O), in ms, from /proc/stat. */
async function machineBusyMs(ticksPerSecond: number): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal ...
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * 1000) / ticksPerSecond;
}

/**
 * Runs `work` and measures the CPU it cost: Berth's process (every thread) and the whole machine's
 * busy time over the same interval (the upstream, curl and anything else included).
 */
async function withCpu<T>(berthPid: number, ticksPerSecond: number, work: () => Promise<T>): Promise<{ value: T; berthMs: number; machineMs: number }> {
  const [b0, m0] = [await cpuMs(berthPid, ticksPerSecond), await machineBusyMs(ticksPerSecond)];
  const value = await work();
  const [b1, m1] = [await cpuMs(berthPid, ticksPerSecond), await machineBusyMs(ticksPerSecond)];
  if (b0 === null || b1 === null) throw new Error(`could not read Berth's CPU time (pid ${berthPid})`);
  return { value, berthMs: b1 - b0, machineMs: m1 - m0 };
}

async function main(): Promise<void> {
  const started = new Date();
  const t0 = Date.now();
  const setup = await startSectionBench<CacheResults>({
    name: 'cache',
    selfTestReason: 'measures Berth only',
    opt,
    repoRoot,
    resultsDir,
    insert: (doc, results) => insertCacheSection(doc, renderCacheSection(results)),
  });
  if (!setup) return;
  const { docPath } = setup;

  const parent = await sectionTempDir('berth-bench-cache-');
  const stopWatchdog = startWatchdog('cache', WATCHDOG_MS);
  await mkdir(resultsDir, { recursive: true });
  const mi = await machineInfo(repoRoot, parent);
  const problems: string[] = [];
  const servers: StartedServer[] = [];
  try {
    const upstream = await startServer({ kind: 'distribution', label: 'upstream Distribution', parent, slug: 'upstream', repoRoot });
    servers.push({ srv: upstream, stop: () => stopServer(upstream) });
    const berth = await startBerth({
      label: 'Berth (cache)',
      parent,
      slug: 'berth',
      repoRoot,
      config: {
        auth: { enabled: false },
        egress: { allow: ['127.0.0.1/32'] },
        cache: { rules: [{ name: 'bench', prefix: 'cache', upstream: { url: upstream.url } }] },
      },
    });
    servers.push({ srv: berth, stop: () => stopBerth(berth) });
    const tck = Number((await run('getconf', ['CLK_TCK'], { timeoutMs: 10_000 })).stdout.trim());
    const ticksPerSecond = Number.isInteger(tck) && tck > 0 ? tck : 100;
    const measured = <T>(work: () => Promise<T>) => withCpu(berth.pid, ticksPerSecond, work);
    const cpuRuns: CacheCpuRun[] = [];

    const rows: { cold: CacheRow; store: CacheRow; warm: CacheRow } = {
      cold: { id: 'cold', title: `cold pull of a ${cfg.layerBytes / MiB} MiB layer`, baseline: 'a pull straight from Distribution', runs: [] },
      store: {
        id: 'store',
        title: `cold pull of a ${cfg.layerBytes / MiB} MiB layer`,
        baseline: 'storing the same bytes in Berth (a push)',
        runs: [],
      },
      warm: { id: 'warm', title: `warm pull of a ${cfg.layerBytes / MiB} MiB layer (a cache hit)`, baseline: "Berth's blob GET of pushed content", runs: [] },
    };
    for (let rep = 1; rep <= cfg.reps; rep++) {
      // Fresh content every repetition: nothing is cached or stored before its cold pull.
      const direct = randomBytes(cfg.layerBytes);
      const cold = randomBytes(cfg.layerBytes);
      const own = randomBytes(cfg.layerBytes);
      const digests = { direct: sha256(direct), cold: sha256(cold), own: sha256(own) };
      await pushBlob(upstream.url, `bench/direct-${rep}`, direct, digests.direct);
      await pushBlob(upstream.url, `bench/cold-${rep}`, cold, digests.cold);
      const ownFile = join(parent, `own-${rep}.bin`);
      await writeFile(ownFile, own);
      const directUrl = `${upstream.url}/v2/bench/direct-${rep}/blobs/${digests.direct}`;
      const cacheUrl = `${berth.url}/v2/cache/bench/cold-${rep}/blobs/${digests.cold}`;
      const ownUrl = `${berth.url}/v2/own/bench-${rep}/blobs/${digests.own}`;
      try {
        // The sides take turns going first.
        const coldPair: { cache?: number; baseline?: number } = {};
        const cpuRun: Partial<CacheCpuRun> = { rep };
        for (const side of rep % 2 === 1 ? (['cache', 'baseline'] as const) : (['baseline', 'cache'] as const)) {
          if (side === 'cache') {
            const { value: r, berthMs, machineMs } = await measured(() => pull(cacheUrl, cfg.layerBytes));
            if (!r.cache?.startsWith('miss')) throw new Error(`the cold pull was not a miss (Berth-Cache: ${r.cache ?? 'none'})`);
            coldPair.cache = r.seconds;
            Object.assign(cpuRun, { coldSeconds: r.seconds, coldBerthMs: berthMs, coldMachineMs: machineMs });
          } else coldPair.baseline = (await pull(directUrl, cfg.layerBytes)).seconds;
        }
        rows.cold.runs.push({ rep, cacheSeconds: coldPair.cache as number, baselineSeconds: coldPair.baseline as number, bytes: cfg.layerBytes });
        // Storing the same amount in Berth: what the cold pull must do besides serving the client.
        const { value: stored, berthMs: storeBerthMs } = await measured(() => push(berth.url, `own/bench-${rep}`, digests.own, ownFile));
        cpuRun.storeBerthMs = storeBerthMs;
        rows.store.runs.push({ rep, cacheSeconds: coldPair.cache as number, baselineSeconds: stored, bytes: cfg.layerBytes });
        await rm(ownFile);
        const warmPair: { cache?: number; baseline?: number } = {};
        for (const side of rep % 2 === 1 ? (['cache', 'baseline'] as const) : (['baseline', 'cache'] as const)) {
          if (side === 'cache') {
            const r = await pull(cacheUrl, cfg.layerBytes);
            if (!r.cache?.startsWith('hit')) throw new Error(`the warm pull was not a hit (Berth-Cache: ${r.cache ?? 'none'})`);
            warmPair.cache = r.seconds;
          } else {
            const { value: r, berthMs } = await measured(() => pull(ownUrl, cfg.layerBytes));
            warmPair.baseline = r.seconds;
            cpuRun.serveBerthMs = berthMs;
          }
        }
        cpuRuns.push(cpuRun as CacheCpuRun);
        rows.warm.runs.push({ rep, cacheSeconds: warmPair.cache as number, baselineSeconds: warmPair.baseline as number, bytes: cfg.layerBytes });
        log(
          `cache: rep ${rep}: cold ${coldPair.cache?.toFixed(2)} s vs direct ${coldPair.baseline?.toFixed(2)} s vs push ${stored.toFixed(2)} s; warm ${warmPair.cache?.toFixed(2)} s vs own ${warmPair.baseline?.toFixed(2)} s`,
        );
      } catch (err) {
        problems.push(`**repetition ${rep}** failed: ${err instanceof Error ? err.message : String(err)}`);
        log(`cache: rep ${rep} failed: ${String(err)}`);
      }
    }
    for (const row of [rows.cold, rows.store, rows.warm]) {
      row.cacheMBps = median(row.runs.map((r) => r.bytes / 1e6 / r.cacheSeconds));
      row.baselineMBps = median(row.runs.map((r) => r.bytes / 1e6 / r.baselineSeconds));
    }

    await stopServers(servers, problems);

    const args = process.argv.slice(2);
    const res: CacheResults = {
      startedAt: started.toISOString(),
      finishedAt: new Date().toISOString(),
      durationSeconds: (Date.now() - t0) / 1000,
      command: `npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`,
      mode: quick ? 'quick' : 'full',
      machine: {
        cpu: mi.cpuModel,
        cores: mi.cores,
        memoryGiB: mi.memoryGiB,
        os: mi.os,
        kernel: mi.kernel,
        node: mi.node,
        berth: mi.berth,
        distribution: mi.distribution,
        curl: mi.curl,
      },
      config: cfg,
      rows: [rows.cold, rows.store, rows.warm],
      cpu: cpuRuns,
      problems,
    };
    const stamp = res.startedAt.replace(/[:.]/g, '-');
    const prefix = quick ? 'partial-' : '';
    const json = JSON.stringify(res, null, 2);
    await writeFile(join(resultsDir, `${prefix}cache-${stamp}.json`), json);
    await writeFile(join(resultsDir, `${prefix}cache-latest.json`), json);
    await insertCacheSection(docPath, renderCacheSection(res));
    log(`cache: wrote the cache section of ${relative(repoRoot, docPath)}`);
    for (const r of res.rows) {
      process.stdout.write(
        `${r.id.padEnd(6)} cache ${String(r.cacheMBps?.toFixed(0) ?? 'failed').padStart(6)} MB/s  ${r.baseline}: ${String(r.baselineMBps?.toFixed(0) ?? 'failed').padStart(6)} MB/s\n`,
      );
    }
  } finally {
    for (const { stop } of servers.reverse()) await stop().catch(() => undefined);
    stopWatchdog();
    if (opt.keep !== true) await rm(parent, { recursive: true, force: true });
    else log(`cache: kept ${parent}`);
  }
  log(`cache: done in ${Math.round((Date.now() - t0) / 1000)} s`);
}

main().catch((e: unknown) => {
  const detail = e instanceof ProtocolError && e.exchange !== null ? `\n\n${describeExchange(e.exchange)}` : '';
  log(`cache benchmark failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}${detail}`);
  process.exit(1);
});
