/**
 * How a bench that writes its own section of docs/benchmarks.md starts (cache, import, S3): which
 * document it writes (docs/benchmarks.md for a full run of it, bench/results/benchmarks-partial.md
 * for a quick, repetition-limited or mixed `--only` run), `--report-only` (re-insert this bench's
 * last results after bench/run.ts re-rendered the doc), and a self-test (`--candidate
 * distribution`), for which there is nothing to measure.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { insertMarkedSection } from './doc-section.js';
import { join, relative, resolve } from 'node:path';
import type { parseBenchOptions } from './options.js';
import type { Server } from './servers.js';
import { log } from './util.js';

export interface SectionBench<R> {
  /** The group name of `--only` and the prefix of its results files (`<name>-latest.json`). */
  name: string;
  /** What a self-test's skip line says the bench does ("measures Berth only"). */
  selfTestReason: string;
  opt: ReturnType<typeof parseBenchOptions>;
  repoRoot: string;
  resultsDir: string;
  /** Puts the section rendered from `results` into `doc`. */
  insert: (doc: string, results: R) => Promise<void>;
}

/** Where this run writes its section, or undefined when the invocation has nothing to measure. */
export async function startSectionBench<R>(bench: SectionBench<R>): Promise<{ docPath: string } | undefined> {
  const { name, opt, repoRoot, resultsDir } = bench;
  const docFor = (partial: boolean) =>
    opt.doc !== undefined ? resolve(opt.doc) : partial ? join(resultsDir, 'benchmarks-partial.md') : join(repoRoot, 'docs', 'benchmarks.md');
  if (opt['report-only'] !== undefined) {
    const main = JSON.parse(await readFile(opt['report-only'], 'utf8')) as { selfTest?: boolean; mode?: string; partial?: boolean };
    if (main.selfTest === true) return undefined;
    const partial = main.mode === 'quick' || main.partial === true;
    for (const file of partial ? [`partial-${name}-latest.json`, `${name}-latest.json`] : [`${name}-latest.json`]) {
      const text = await readFile(join(resultsDir, file), 'utf8').catch(() => null);
      if (text === null) continue;
      const doc = docFor(partial);
      await bench.insert(doc, JSON.parse(text) as R);
      log(`${name}: re-inserted the section from bench/results/${file} into ${relative(repoRoot, doc)}`);
      return undefined;
    }
    log(`${name}: no earlier ${name} results; nothing to re-insert`);
    return undefined;
  }
  if (opt.candidate !== 'berth') {
    log(`${name}: self-test (--candidate distribution): the ${name} bench ${bench.selfTestReason}; skipped`);
    return undefined;
  }
  const only = opt.only
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const partial = opt.quick === true || opt.reps !== undefined || (only !== undefined && only.some((g) => g !== name));
  return { docPath: docFor(partial) };
}

/**
 * `startSectionBench` for a bench whose whole section sits between two markers and is rendered from
 * its results: returns where it writes and `publish(results)`, which saves
 * `bench/results/[partial-]<name>-latest.json` and puts the rendered section into the document.
 */
export async function startMarkedSectionBench<R>(
  bench: Omit<SectionBench<R>, 'insert'> & { markers: { start: string; end: string }; render: (results: R) => string },
): Promise<{ docPath: string; publish: (results: R) => Promise<void> } | undefined> {
  const { markers, render } = bench;
  const started = await startSectionBench<R>({ ...bench, insert: (doc, results) => insertMarkedSection(doc, render(results), markers) });
  if (!started) return undefined;
  const partial = started.docPath !== join(bench.repoRoot, 'docs', 'benchmarks.md');
  return {
    docPath: started.docPath,
    publish: async (results) => {
      await mkdir(bench.resultsDir, { recursive: true });
      await writeFile(join(bench.resultsDir, `${partial ? 'partial-' : ''}${bench.name}-latest.json`), `${JSON.stringify(results, null, 2)}\n`);
      await insertMarkedSection(started.docPath, render(results), markers);
      log(`${bench.name}: section written to ${relative(bench.repoRoot, started.docPath)}`);
    },
  };
}

/** Ends the process if the bench runs longer than `ms` (a stuck server must not hang `npm run bench`); returns its stop. */
export function startWatchdog(name: string, ms: number): () => void {
  const watchdog = setTimeout(() => {
    log(`${name}: watchdog: still running after ${ms / 60_000} min; giving up`);
    process.exit(2);
  }, ms);
  watchdog.unref();
  return () => clearTimeout(watchdog);
}

/** A server a bench started, with how to stop it (the exit it reports). */
export interface StartedServer {
  srv: Server;
  stop: () => Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }>;
}

/** Stops `servers` (last started first, emptying the list) and notes in `problems` any that did not exit cleanly. */
export async function stopServers(servers: StartedServer[], problems: string[]): Promise<void> {
  for (const { srv, stop } of servers.splice(0).reverse()) {
    const r = await stop();
    if (r.killed || (r.code !== 0 && r.signal !== 'SIGTERM')) {
      problems.push(
        `**${srv.label}** did not shut down cleanly (code ${String(r.code)}, signal ${String(r.signal)}${r.killed ? ', killed' : ''}); log: ${srv.logPath}`,
      );
    }
  }
}
