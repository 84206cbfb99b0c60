/**
 * Berth vs CNCF Distribution benchmark driver.
 *
 *   node --import tsx bench/run.ts [options]      (normally via `npm run bench`)
 *
 * Options:
 *   --quick                 small sizes / short durations, 1 repetition (harness check)
 *   --reps N                repetitions per measurement (default 3; median reported)
 *   --only a,b              run only groups whose id starts with one of these
 *                           (raw, skopeo, small-blobs, manifests)
 *   --candidate KIND        berth (default) | distribution (self-test: Distribution vs Distribution)
 *   --profile N             profile Berth on up to N rows where it is behind (default 2; 0 = off)
 *   --doc PATH              where to write the Markdown (default docs/benchmarks.md for a full
 *                           run; bench/results/benchmarks-{selftest,partial}.md for a self-test
 *                           or a run with --quick, --only or --reps)
 *   --keep                  keep the temporary data directory
 *   --report-only FILE      re-render the Markdown from a results JSON (plus bench/notes.md)
 *   --wrk-seconds N         duration of each wrk run (default 10)
 */
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runChecks } from './lib/checks.js';
import type { CheckFailure } from './lib/checks.js';
import { machineInfo } from './lib/machine.js';
import { summarizeProfile } from './lib/profile.js';
import { renderMarkdown } from './lib/report.js';
import type { MetricResult, ProfileResult, Results, RunRecord } from './lib/report.js';
import { manifestGroup, rawGroup, skopeoGroup, smallBlobsGroup } from './lib/scenarios.js';
import type { AnyGroup, BenchConfig, MetricDef } from './lib/scenarios.js';
import { berthEnvLine, berthNodeFlags, readMem, RssSampler, startServer, stopServer } from './lib/servers.js';
import type { Server, ServerKind } from './lib/servers.js';
import { buildLoadgen } from './lib/loadgen.js';
import { GiB, humanSize, log, median, MiB, sleep, sectionTempDir } from './lib/util.js';
import { parseBenchOptions } from './lib/options.js';

/** RSS growth differences below this are sampling noise (Go's GC alone moves RSS by a few MiB). */
const GROWTH_TOLERANCE_MIB = 8;

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const resultsDir = join(repoRoot, 'bench', 'results');
const notesPath = join(repoRoot, 'bench', 'notes.md');

const opt = parseBenchOptions();

async function readNotes(): Promise<string | null> {
  return readFile(notesPath, 'utf8').catch(() => null);
}

async function writeDoc(res: Results, docPath: string): Promise<void> {
  const md = renderMarkdown(res, res.selfTest ? null : await readNotes());
  await mkdir(dirname(docPath), { recursive: true });
  await writeFile(docPath, md.endsWith('\n') ? md : `${md}\n`);
  log(`wrote ${relative(repoRoot, docPath)}`);
}

/** Only a full, unfiltered Berth run may replace docs/benchmarks.md and latest.json. */
function resultKind(res: Pick<Results, 'selfTest' | 'mode' | 'partial'>): 'selftest' | 'partial' | 'full' {
  if (res.mode === 'quick' || res.partial === true) return 'partial';
  return res.selfTest ? 'selftest' : 'full';
}

function defaultDoc(kind: 'selftest' | 'partial' | 'full'): string {
  if (kind === 'selftest') return join(resultsDir, 'benchmarks-selftest.md');
  if (kind === 'partial') return join(resultsDir, 'benchmarks-partial.md');
  return join(repoRoot, 'docs', 'benchmarks.md');
}

// ---------------------------------------------------------------------------

const started: Server[] = [];
let parentDir: string | null = null;

async function emergencyCleanup(): Promise<void> {
  for (const s of started) s.child.kill('SIGKILL');
  if (parentDir !== null && opt.keep !== true) await rm(parentDir, { recursive: true, force: true }).catch(() => undefined);
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping servers and removing temporary data`);
    void emergencyCleanup().finally(() => process.exit(130));
  });
}

function stats(runs: RunRecord[]): { runs: RunRecord[]; median: number | null; min: number | null; max: number | null } {
  const vals = runs.map((r) => r.value).filter((v): v is number => v !== null && Number.isFinite(v));
  const failed = runs.some((r) => r.value === null);
  return {
    runs,
    // A side with any failed run gets no median: a partial number would flatter it.
    median: failed ? null : median(vals),
    min: vals.length > 0 ? Math.min(...vals) : null,
    max: vals.length > 0 ? Math.max(...vals) : null,
  };
}

function throughputResult(def: MetricDef, cand: RunRecord[], base: RunRecord[]): MetricResult {
  const c = stats(cand);
  const b = stats(base);
  const ratio = c.median !== null && b.median !== null && b.median > 0 ? c.median / b.median : null;
  return {
    id: def.id,
    title: def.title,
    unit: def.unit,
    higherIsBetter: true,
    candidate: c,
    baseline: b,
    ratio,
    meetsTarget: c.median === null && c.runs.some((r) => r.error !== undefined) ? false : ratio === null ? null : ratio >= 1,
  };
}

/** Memory rows: lower is better; differences under `toleranceMiB` count as equal. */
function memoryResult(id: string, title: string, cand: number[], base: number[], toleranceMiB: number): MetricResult {
  const toRuns = (xs: number[]): RunRecord[] => xs.map((v, i) => ({ rep: i + 1, value: v }));
  const c = stats(toRuns(cand));
  const b = stats(toRuns(base));
  // A ratio against a near-zero baseline (Distribution's RSS often does not grow at all) says nothing.
  const ratio = c.median !== null && b.median !== null && b.median >= 1 ? c.median / b.median : null;
  const meets = c.median === null || b.median === null ? null : c.median <= b.median + toleranceMiB;
  return { id, title, unit: 'MiB', higherIsBetter: false, candidate: c, baseline: b, ratio, meetsTarget: meets };
}

async function main(): Promise<void> {
  if (opt['report-only'] !== undefined) {
    const res = JSON.parse(await readFile(opt['report-only'], 'utf8')) as Results;
    await writeDoc(res, opt.doc !== undefined ? resolve(opt.doc) : defaultDoc(resultKind(res)));
    return;
  }
  const t0 = Date.now();
  const startedAt = new Date().toISOString();
  const quick = opt.quick === true;
  const candidateKind = opt.candidate as ServerKind;
  if (candidateKind !== 'berth' && candidateKind !== 'distribution') throw new Error(`--candidate must be berth or distribution`);
  const selfTest = candidateKind === 'distribution';
  const reps = Number(opt.reps ?? (quick ? 1 : 3));
  const profileMax = selfTest ? 0 : Number(opt.profile ?? '2');
  const wrkSeconds = Number(opt['wrk-seconds'] ?? (quick ? 2 : 10));
  if (!Number.isInteger(reps) || reps < 1 || reps > 9) throw new Error('--reps must be 1..9');

  // Hard stop for the whole run, whatever happens.
  const watchdog = setTimeout(() => {
    log('watchdog: the benchmark exceeded 45 minutes; aborting');
    void emergencyCleanup().finally(() => process.exit(3));
  }, 45 * 60_000);
  watchdog.unref();

  parentDir = await sectionTempDir('berth-bench-');
  const work = join(parentDir, 'work');
  await mkdir(work, { recursive: true });
  await mkdir(resultsDir, { recursive: true });
  log(`temporary data under ${parentDir}`);

  const loadgen = await buildLoadgen(repoRoot, work);

  const cfg: BenchConfig = {
    work,
    loadgen,
    largeSize: quick ? 128 * MiB : 1 * GiB,
    smallSize: quick ? 16 * MiB : 64 * MiB,
    smallBlobCount: quick ? 200 : 1000,
    smallBlobWarmup: quick ? 50 : 400,
    smallBlobWarmupSeconds: quick ? 0 : 8,
    smallBlobSize: 64 * 1024,
    smallBlobConcurrency: 8,
    wrkSeconds,
    wrkConnections: 32,
    wrkThreads: 2,
  };

  const machine = await machineInfo(repoRoot, parentDir);
  const candLabel = selfTest ? 'Distribution A' : 'Berth';
  const baseLabel = selfTest ? 'Distribution B' : 'Distribution';

  // Extra node flags for Berth, after the ones it is deployed with (servers.ts berthNodeFlags), for
  // experiments: BENCH_BERTH_NODE_FLAGS="--max-semi-space-size=16" (the last of a flag wins).
  const berthFlags = (process.env['BENCH_BERTH_NODE_FLAGS'] ?? '').split(/\s+/).filter((f) => f !== '');
  const cand = await startServer({
    kind: candidateKind,
    label: candLabel,
    parent: parentDir,
    slug: selfTest ? 'distribution-a' : 'berth',
    repoRoot,
    ...(berthFlags.length > 0 && !selfTest ? { nodeFlags: berthFlags } : {}),
  });
  started.push(cand);
  const base = await startServer({ kind: 'distribution', label: baseLabel, parent: parentDir, slug: selfTest ? 'distribution-b' : 'distribution', repoRoot });
  started.push(base);

  const checkFailures: CheckFailure[] = [];
  for (const s of [cand, base]) {
    const f = await runChecks(s);
    for (const x of f) log(`CHECK FAILED on ${x.server}: ${x.check}: ${x.message}`);
    checkFailures.push(...f);
  }
  await sleep(1000);
  const idle = new Map<Server, number>();
  for (const s of [cand, base]) idle.set(s, ((await readMem(s.pid))?.rssKiB ?? NaN) / 1024);

  const only = opt.only
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const allGroups: AnyGroup[] = [
    rawGroup(cfg, cfg.largeSize),
    rawGroup(cfg, cfg.smallSize, 5),
    skopeoGroup(cfg, cfg.largeSize, 5),
    skopeoGroup(cfg, cfg.smallSize, 5),
    smallBlobsGroup(cfg),
    manifestGroup(cfg),
  ];
  const groups = allGroups.filter((g) => only === undefined || only.some((o) => g.id.startsWith(o)));

  const runsBy = new Map<string, Map<Server, RunRecord[]>>();
  const record = (metricId: string, s: Server, r: RunRecord): void => {
    let m = runsBy.get(metricId);
    if (m === undefined) {
      m = new Map([
        [cand, []],
        [base, []],
      ]);
      runsBy.set(metricId, m);
    }
    m.get(s)?.push(r);
  };

  for (const g of groups) {
    const groupReps = quick ? reps : Math.max(reps, g.minReps ?? reps);
    for (let rep = 1; rep <= groupReps; rep++) {
      log(`${g.id}: repetition ${rep}/${groupReps}: preparing fixture`);
      const ctx = await g.prepareRep(rep);
      const order = rep % 2 === 1 ? [cand, base] : [base, cand];
      for (const s of order) {
        for (const def of g.metrics) {
          const sampler = new RssSampler(s.pid, 50);
          const before = await sampler.start();
          const m = await g.measure(s, ctx, def.id);
          const max = await sampler.stop();
          const rec: RunRecord = { rep, ...m, rssBeforeKiB: before, rssMaxKiB: max };
          record(def.id, s, rec);
          const v = m.value === null ? `FAILED: ${(m.error ?? '').split('\n')[0] ?? ''}` : `${m.value.toFixed(1)} ${def.unit}`;
          const rss = ` (RSS ${Math.round(before / 1024)}→${Math.round(max / 1024)} MiB)`;
          log(`  ${s.label.padEnd(14)} ${def.id.padEnd(22)} ${v}${rss}`);
        }
      }
      await g.cleanupRep(ctx);
    }
  }

  const hwm = new Map<Server, number>();
  for (const s of [cand, base]) hwm.set(s, ((await readMem(s.pid))?.hwmKiB ?? NaN) / 1024);

  const serverExits: Results['serverExits'] = [];
  for (const s of [cand, base]) {
    const e = await stopServer(s);
    serverExits.push({ label: s.label, code: e.code, signal: e.signal, killed: e.killed });
  }
  started.length = 0;

  // ---- results
  const throughput: MetricResult[] = [];
  for (const g of groups) {
    for (const def of g.metrics) {
      const m = runsBy.get(def.id);
      throughput.push(throughputResult(def, m?.get(cand) ?? [], m?.get(base) ?? []));
    }
  }
  const memory: MetricResult[] = [];
  memory.push(memoryResult('rss-idle', 'RSS when idle, after warm-up', [idle.get(cand) ?? NaN], [idle.get(base) ?? NaN], 0));
  const largeSlug = humanSize(cfg.largeSize).replace(' ', '').toLowerCase();
  for (const g of groups) {
    for (const def of g.metrics) {
      if (def.trackRss !== true || !def.id.endsWith(largeSlug)) continue;
      const m = runsBy.get(def.id);
      const growth = (rs: RunRecord[]): number[] =>
        rs.filter((r) => r.rssMaxKiB !== undefined && r.rssBeforeKiB !== undefined).map((r) => ((r.rssMaxKiB ?? 0) - (r.rssBeforeKiB ?? 0)) / 1024);
      const title = `RSS growth during ${def.title.replace(/^(\w)/, (c) => c.toLowerCase())} (max − before)`;
      memory.push(memoryResult(`rss-growth-${def.id}`, title, growth(m?.get(cand) ?? []), growth(m?.get(base) ?? []), GROWTH_TOLERANCE_MIB));
    }
  }
  const peak = memoryResult('rss-peak', 'Peak RSS over the whole run (VmHWM)', [hwm.get(cand) ?? NaN], [hwm.get(base) ?? NaN], 0);
  // Which measurement drove each server's peak (highest RSS sampled during a run).
  const peakDuring = (s: Server): string => {
    let best = { kib: 0, id: '' };
    for (const [id, bySrv] of runsBy) {
      for (const r of bySrv.get(s) ?? []) if ((r.rssMaxKiB ?? 0) > best.kib) best = { kib: r.rssMaxKiB ?? 0, id };
    }
    const title = throughput.find((t) => t.id === best.id)?.title ?? best.id;
    return best.id === '' ? 'n/a' : `${title} (${Math.round(best.kib / 1024)} MiB sampled)`;
  };
  peak.detail = `Highest RSS sampled: ${candLabel} during ${peakDuring(cand)}; ${baseLabel} during ${peakDuring(base)}.`;
  memory.push(peak);

  // ---- profile Berth where it is behind
  const profiles: ProfileResult[] = [];
  if (!selfTest && profileMax > 0) {
    const behind = throughput
      .filter((r) => r.ratio !== null && r.ratio < 1)
      .sort((a, b) => (a.ratio ?? 0) - (b.ratio ?? 0))
      .slice(0, profileMax);
    let i = 0;
    for (const r of behind) {
      i++;
      const g = groups.find((x) => x.metrics.some((d) => d.id === r.id));
      if (g === undefined) continue;
      log(`profiling Berth on ${r.id} (ratio ${r.ratio?.toFixed(2) ?? '?'})`);
      const slug = `berth-prof${i}`;
      const profDir = join(parentDir, `${slug}-cpuprof`);
      const pr: ProfileResult = { metricId: r.id, title: r.title, value: null, unit: r.unit, file: null, summary: null };
      let ctx: unknown = null;
      try {
        ctx = await g.prepareRep(900 + i);
        const setup = await startServer({ kind: 'berth', label: 'Berth (setup)', parent: parentDir, slug, repoRoot });
        started.push(setup);
        await g.prepareMetric(setup, ctx, r.id);
        await stopServer(setup);
        started.length = 0;
        const prof = await startServer({
          kind: 'berth',
          label: 'Berth (profiled)',
          parent: parentDir,
          slug,
          repoRoot,
          nodeFlags: [...berthFlags, '--cpu-prof', `--cpu-prof-dir=${profDir}`],
        });
        started.push(prof);
        const fromUs = Number(process.hrtime.bigint() / 1000n);
        const m = await g.measure(prof, ctx, r.id);
        const toUs = Number(process.hrtime.bigint() / 1000n);
        pr.value = m.value;
        const exit = await stopServer(prof, 60_000);
        started.length = 0;
        const files = (await readdir(profDir).catch(() => [] as string[])).filter((f) => f.endsWith('.cpuprofile'));
        const f = files[0];
        if (f === undefined) {
          pr.error = `Berth wrote no .cpuprofile (exit code ${String(exit.code)}, signal ${String(exit.signal)}${exit.killed ? ', killed after 60 s' : ''}); node writes it only on a normal exit, so SIGTERM must end in process.exit()`;
        } else {
          const dest = join(resultsDir, 'profiles', `${startedAt.replace(/[:.]/g, '-')}-${r.id}.cpuprofile`);
          await mkdir(dirname(dest), { recursive: true });
          await copyFile(join(profDir, f), dest);
          pr.file = relative(repoRoot, dest);
          pr.summary = await summarizeProfile(dest, repoRoot, 15, { fromUs, toUs });
          if (m.value === null) pr.error = m.error ?? 'run failed';
        }
      } catch (e) {
        pr.error = e instanceof Error ? e.message : String(e);
        for (const s of started) s.child.kill('SIGKILL');
        started.length = 0;
      } finally {
        if (ctx !== null) await g.cleanupRep(ctx);
      }
      if (pr.error !== undefined) log(`profile of ${r.id}: ${pr.error}`);
      profiles.push(pr);
    }
  }

  // How far apart two identical Distribution instances were in the last self-test
  // on this machine: the noise band to read the ratios against.
  let selfTestNoise: Results['selfTestNoise'];
  if (!selfTest) {
    const st = await readFile(join(resultsDir, 'selftest-latest.json'), 'utf8').catch(() => null);
    if (st !== null) {
      const prev = JSON.parse(st) as Results;
      if (prev.mode !== 'full' || prev.partial === true) log('note: the last self-test was not a full run; its noise band is only indicative');
      const rows: Record<string, number> = {};
      for (const r of prev.throughput) if (r.ratio !== null) rows[r.id] = Math.abs(r.ratio - 1);
      selfTestNoise = { date: prev.startedAt, mode: prev.mode, rows };
    }
  }

  const finishedAt = new Date().toISOString();
  const args = process.argv.slice(2);
  const res: Results = {
    startedAt,
    finishedAt,
    durationSeconds: (Date.now() - t0) / 1000,
    command: `npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`,
    mode: quick ? 'quick' : 'full',
    partial: only !== undefined || reps !== 3,
    selfTest,
    candidateLabel: candLabel,
    baselineLabel: baseLabel,
    reps,
    config: {
      largeSize: cfg.largeSize,
      smallSize: cfg.smallSize,
      smallBlobCount: cfg.smallBlobCount,
      smallBlobWarmup: cfg.smallBlobWarmup,
      smallBlobWarmupSeconds: cfg.smallBlobWarmupSeconds,
      smallBlobSize: cfg.smallBlobSize,
      smallBlobSizeLabel: humanSize(cfg.smallBlobSize),
      smallBlobConcurrency: cfg.smallBlobConcurrency,
      wrkSeconds: cfg.wrkSeconds,
      wrkConnections: cfg.wrkConnections,
      wrkThreads: cfg.wrkThreads,
      berthNodeFlags: [...berthNodeFlags, ...berthFlags].join(' '),
      berthEnv: berthEnvLine(),
    },
    machine,
    dataParent: parentDir,
    throughput,
    memory,
    checkFailures,
    profiles,
    serverExits,
    ...(selfTestNoise !== undefined ? { selfTestNoise } : {}),
  };
  const stamp = startedAt.replace(/[:.]/g, '-');
  const json = JSON.stringify(res, null, 2);
  const kind = resultKind(res);
  const prefix = kind === 'full' ? '' : `${kind}-`;
  await writeFile(join(resultsDir, `${prefix}${stamp}.json`), json);
  await writeFile(join(resultsDir, `${prefix}latest.json`), json);
  await writeDoc(res, opt.doc !== undefined ? resolve(opt.doc) : defaultDoc(kind));

  // Console summary.
  for (const r of [...throughput, ...memory]) {
    const c = r.candidate.median === null ? 'n/a' : r.candidate.median.toFixed(1);
    const b = r.baseline.median === null ? 'n/a' : r.baseline.median.toFixed(1);
    const ratio = r.ratio === null ? 'n/a' : `${r.ratio.toFixed(2)}x`;
    const flag = r.meetsTarget === false ? '  <-- behind' : '';
    process.stdout.write(`${r.id.padEnd(34)} ${c.padStart(10)} ${b.padStart(10)} ${r.unit.padEnd(8)} ${ratio.padStart(7)}${flag}\n`);
  }

  if (opt.keep !== true) await rm(parentDir, { recursive: true, force: true });
  else log(`kept ${parentDir}`);
  parentDir = null;
  clearTimeout(watchdog);
  log(`done in ${Math.round((Date.now() - t0) / 1000)} s`);
}

main().catch(async (e: unknown) => {
  log(`benchmark failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  await emergencyCleanup();
  process.exit(1);
});
