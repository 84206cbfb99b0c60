/**
 * Import benchmark: Berth's server-side import (POST /api/v1/import) against `skopeo copy --all`
 * of the same images, from a Berth and from CNCF Distribution into a Berth.
 *
 *   node --import tsx bench/import.ts [options]      (normally via `npm run bench`)
 *
 * Accepts the options of bench/run.ts (scripts/bench.sh passes the same arguments) and uses:
 *   --quick                 small images, 1 repetition
 *   --reps N                repetitions per measurement (default 3)
 *   --doc PATH              the Markdown file to put the section in
 *   --only …                `--only import` alone writes docs/benchmarks.md; a mix writes the
 *                           partial doc the main run just wrote
 *   --keep                  keep the temporary data directory
 *   --report-only FILE      re-insert the last import section into the doc bench/run.ts re-rendered
 *   --candidate distribution  (self-test) nothing to do
 *
 * Writes the section between `<!-- import-bench:start -->` and `<!-- import-bench:end -->` and
 * bench/results/import-<stamp>.json + import-latest.json (`partial-` prefix with --quick).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBerth, stopBerth } from './lib/auth-lib.js';
import { sha256 } from './lib/fixtures.js';
import { insertImportSection, renderImportSection, valueOf } from './lib/import-report.js';
import type { ImportResults, ImportRow, ImportRun } from './lib/import-report.js';
import { machineInfo } from './lib/machine.js';
import { describeExchange, ProtocolError, pushBlob, putManifest, request } from './lib/registry.js';
import { startServer, stopServer } from './lib/servers.js';
import type { Server } from './lib/servers.js';
import { log, median, run, sleep, sectionTempDir } from './lib/util.js';
import { parseBenchOptions } from './lib/options.js';
import { startSectionBench, startWatchdog, stopServers, type StartedServer } from './lib/section-bench.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const resultsDir = join(repoRoot, 'bench', 'results');

const opt = parseBenchOptions();

const quick = opt.quick === true;
const MiB = 1024 * 1024;
const cfg = {
  reps: opt.reps !== undefined ? Math.max(1, Number(opt.reps)) : quick ? 1 : 3,
  indexPlatforms: 2,
  indexLayersPerPlatform: 2,
  indexLayerBytes: quick ? 2 * MiB : 32 * MiB,
  smallImages: quick ? 4 : 20,
  smallLayers: 2,
  smallLayerBytes: 256 * 1024,
  parallel: 4,
};
/** Bounds on a broken run, not measurements. */
const COPY_TIMEOUT_MS = 10 * 60_000;
const WATCHDOG_MS = 45 * 60_000;

const MT = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
};

interface Blob {
  data: Buffer;
  digest: string;
}
interface Image {
  blobs: Blob[];
  /** Children first, root last. */
  manifests: Array<{ bytes: Buffer; digest: string; mediaType: string }>;
  root: string;
  bytes: number;
}

function blob(data: Buffer): Blob {
  return { data, digest: sha256(data) };
}

function platformManifest(arch: string, layers: number, layerBytes: number, blobs: Blob[]): { bytes: Buffer; digest: string; mediaType: string } {
  const config = blob(Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', nonce: randomBytes(8).toString('hex') })));
  const layerBlobs = Array.from({ length: layers }, () => blob(randomBytes(layerBytes)));
  blobs.push(config, ...layerBlobs);
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.manifest,
      config: { mediaType: MT.config, digest: config.digest, size: config.data.length },
      layers: layerBlobs.map((l) => ({ mediaType: MT.layer, digest: l.digest, size: l.data.length })),
    }),
  );
  return { bytes, digest: sha256(bytes), mediaType: MT.manifest };
}

/** Fresh random content every call: nothing is ever already present at the target. */
function makeImage(platforms: number, layers: number, layerBytes: number): Image {
  const blobs: Blob[] = [];
  if (platforms === 0) {
    const m = platformManifest('amd64', layers, layerBytes, blobs);
    return { blobs, manifests: [m], root: m.digest, bytes: blobs.reduce((a, b) => a + b.data.length, 0) };
  }
  const archs = ['amd64', 'arm64', 's390x', 'ppc64le'];
  const children = Array.from({ length: platforms }, (_, i) => platformManifest(archs[i % archs.length] as string, layers, layerBytes, blobs));
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.index,
      manifests: children.map((c, i) => ({
        mediaType: c.mediaType,
        digest: c.digest,
        size: c.bytes.length,
        platform: { architecture: archs[i % archs.length], os: 'linux' },
      })),
    }),
  );
  const root = { bytes: index, digest: sha256(index), mediaType: MT.index };
  return { blobs, manifests: [...children, root], root: root.digest, bytes: blobs.reduce((a, b) => a + b.data.length, 0) };
}

async function push(base: string, repo: string, image: Image): Promise<void> {
  for (const b of image.blobs) await pushBlob(base, repo, b.data, b.digest);
  for (const m of image.manifests) await putManifest(base, repo, m.digest, m.bytes, m.mediaType);
  const root = image.manifests.at(-1)!;
  await putManifest(base, repo, 'v1', root.bytes, root.mediaType);
}

async function targetDigest(base: string, repo: string): Promise<string | undefined> {
  const res = await request(`${base}/v2/${repo}/manifests/v1`, { method: 'HEAD', headers: { accept: `${MT.index}, ${MT.manifest}` } });
  const d = res.headers['docker-content-digest'];
  return res.status === 200 ? (Array.isArray(d) ? d[0] : d) : undefined;
}

async function apiJson(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await request(`${base}/api/v1${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: Buffer.from(JSON.stringify(body)) }),
  });
  return { status: res.status, body: res.body.length > 0 ? JSON.parse(res.body.toString('utf8')) : undefined };
}

/** Imports every repo (one job each, all submitted at once) and waits; returns wall-clock seconds. */
async function viaImport(source: Server, target: Server, repos: Array<{ from: string; to: string }>): Promise<number> {
  const host = new URL(source.url).host;
  const t0 = process.hrtime.bigint();
  const ids: string[] = [];
  for (const r of repos) {
    const res = await apiJson(target.url, 'POST', '/import', { source: { registryUri: host, sourceImage: `${r.from}:v1` }, targetTags: [`${r.to}:v1`] });
    if (res.status !== 202) throw new Error(`POST /api/v1/import: HTTP ${res.status} ${JSON.stringify(res.body)}`);
    ids.push(res.body.id as string);
  }
  const deadline = Date.now() + COPY_TIMEOUT_MS;
  const pending = new Set(ids);
  while (pending.size > 0) {
    for (const id of [...pending]) {
      const job = (await apiJson(target.url, 'GET', `/imports/${id}`)).body as { status: string; error: { code: string; message: string } | null };
      if (job.status === 'failed') throw new Error(`import ${id} failed: ${job.error?.code}: ${job.error?.message}`);
      if (job.status === 'succeeded') pending.delete(id);
    }
    if (pending.size === 0) break;
    if (Date.now() > deadline) throw new Error(`imports still running after ${COPY_TIMEOUT_MS} ms`);
    await sleep(25);
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** `skopeo copy --all` of every repo, `cfg.parallel` processes at a time; returns wall-clock seconds. */
async function viaSkopeo(source: Server, target: Server, repos: Array<{ from: string; to: string }>): Promise<number> {
  const src = new URL(source.url).host;
  const dst = new URL(target.url).host;
  const queue = [...repos];
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: Math.min(cfg.parallel, queue.length) }, async () => {
      for (let r = queue.shift(); r; r = queue.shift()) {
        const res = await run(
          'skopeo',
          [
            'copy',
            '--all',
            '--preserve-digests',
            '--src-tls-verify=false',
            '--dest-tls-verify=false',
            `docker://${src}/${r.from}:v1`,
            `docker://${dst}/${r.to}:v1`,
          ],
          { timeoutMs: COPY_TIMEOUT_MS },
        );
        if (res.code !== 0) throw new Error(`skopeo copy ${r.from}: exit ${String(res.code)}: ${res.stderr.trim().slice(-2000)}`);
      }
    }),
  );
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function range(values: number[]): [number, number] | null {
  return values.length === 0 ? null : [Math.min(...values), Math.max(...values)];
}

async function main(): Promise<void> {
  const started = new Date();
  const t0 = Date.now();
  const setup = await startSectionBench<ImportResults>({
    name: 'import',
    selfTestReason: 'measures Berth only',
    opt,
    repoRoot,
    resultsDir,
    insert: (doc, results) => insertImportSection(doc, renderImportSection(results)),
  });
  if (!setup) return;
  const { docPath } = setup;

  const parent = await sectionTempDir('berth-bench-import-');
  const stopWatchdog = startWatchdog('import', WATCHDOG_MS);
  await mkdir(resultsDir, { recursive: true });
  const mi = await machineInfo(repoRoot, parent);
  const problems: string[] = [];
  const servers: StartedServer[] = [];
  try {
    const berthSource = await startBerth({ label: 'source Berth', parent, slug: 'source-berth', repoRoot, config: { auth: { enabled: false } } });
    servers.push({ srv: berthSource, stop: () => stopBerth(berthSource) });
    const distSource = await startServer({ kind: 'distribution', label: 'source Distribution', parent, slug: 'source-distribution', repoRoot });
    servers.push({ srv: distSource, stop: () => stopServer(distSource) });
    const target = await startBerth({
      label: 'target Berth',
      parent,
      slug: 'target-berth',
      repoRoot,
      config: { auth: { enabled: false }, egress: { allow: ['127.0.0.1/32'] }, import: { concurrency: cfg.parallel, pollIntervalMs: 500 } },
    });
    servers.push({ srv: target, stop: () => stopBerth(target) });

    const rows: ImportRow[] = [];
    for (const [sourceKind, source] of [
      ['berth', berthSource],
      ['distribution', distSource],
    ] as const) {
      for (const workload of ['index', 'small'] as const) {
        const sourceName = sourceKind === 'berth' ? 'Berth' : 'Distribution';
        const title =
          workload === 'index'
            ? `${sourceName} → Berth: index, ${cfg.indexPlatforms} platforms × ${cfg.indexLayersPerPlatform} × ${cfg.indexLayerBytes / MiB} MiB layers`
            : `${sourceName} → Berth: ${cfg.smallImages} images of ${cfg.smallLayers} × ${cfg.smallLayerBytes / 1024} KiB layers, ${cfg.parallel} at a time`;
        const row: ImportRow = {
          id: `${sourceKind}-${workload}`,
          source: sourceKind,
          workload,
          title,
          unit: workload === 'index' ? 'MB/s' : 'images/min',
          importRuns: [],
          skopeoRuns: [],
          importValue: null,
          skopeoValue: null,
          importRange: null,
          skopeoRange: null,
        };
        for (let rep = 1; rep <= cfg.reps; rep++) {
          const order: Array<'import' | 'skopeo'> = rep % 2 === 1 ? ['import', 'skopeo'] : ['skopeo', 'import'];
          for (const method of order) {
            const images =
              workload === 'index'
                ? [makeImage(cfg.indexPlatforms, cfg.indexLayersPerPlatform, cfg.indexLayerBytes)]
                : Array.from({ length: cfg.smallImages }, () => makeImage(0, cfg.smallLayers, cfg.smallLayerBytes));
            const repos = images.map((_, i) => ({ from: `bench/${row.id}-${method}-${rep}-${i}`, to: `${method}/${row.id}-${rep}-${i}` }));
            for (const [i, image] of images.entries()) await push(source.url, (repos[i] as { from: string }).from, image);
            try {
              const seconds = method === 'import' ? await viaImport(source, target, repos) : await viaSkopeo(source, target, repos);
              for (const [i, image] of images.entries()) {
                const got = await targetDigest(target.url, (repos[i] as { to: string }).to);
                if (got !== image.root)
                  throw new Error(`${method} of ${(repos[i] as { from: string }).from}: target digest ${got ?? 'missing'}, source ${image.root}`);
              }
              const runRecord: ImportRun = { rep, seconds, bytes: images.reduce((a, b) => a + b.bytes, 0), images: images.length };
              (method === 'import' ? row.importRuns : row.skopeoRuns).push(runRecord);
              log(`import: ${row.id} ${method} rep ${rep}: ${seconds.toFixed(2)} s, ${valueOf(runRecord, row.unit).toFixed(1)} ${row.unit}`);
            } catch (err) {
              problems.push(`**${title}, ${method}, repetition ${rep}** failed: ${err instanceof Error ? err.message : String(err)}`);
              log(`import: ${row.id} ${method} rep ${rep} failed: ${String(err)}`);
            }
          }
        }
        const importValues = row.importRuns.map((r) => valueOf(r, row.unit));
        const skopeoValues = row.skopeoRuns.map((r) => valueOf(r, row.unit));
        row.importValue = median(importValues);
        row.skopeoValue = median(skopeoValues);
        row.importRange = range(importValues);
        row.skopeoRange = range(skopeoValues);
        rows.push(row);
      }
    }

    await stopServers(servers, problems);

    const args = process.argv.slice(2);
    const res: ImportResults = {
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
        skopeo: mi.skopeo,
      },
      config: cfg,
      rows,
      problems,
    };
    const stamp = res.startedAt.replace(/[:.]/g, '-');
    const prefix = quick ? 'partial-' : '';
    const json = JSON.stringify(res, null, 2);
    await writeFile(join(resultsDir, `${prefix}import-${stamp}.json`), json);
    await writeFile(join(resultsDir, `${prefix}import-latest.json`), json);
    await insertImportSection(docPath, renderImportSection(res));
    log(`import: wrote the import section of ${relative(repoRoot, docPath)}`);
    for (const r of rows) {
      process.stdout.write(
        `${r.id.padEnd(20)} import ${String(r.importValue?.toFixed(1) ?? 'failed').padStart(8)}  skopeo ${String(r.skopeoValue?.toFixed(1) ?? 'failed').padStart(8)} ${r.unit}\n`,
      );
    }
  } finally {
    for (const { stop } of servers.reverse()) await stop().catch(() => undefined);
    stopWatchdog();
    if (opt.keep !== true) await rm(parent, { recursive: true, force: true });
    else log(`import: kept ${parent}`);
  }
  log(`import: done in ${Math.round((Date.now() - t0) / 1000)} s`);
}

main().catch((e: unknown) => {
  const detail = e instanceof ProtocolError && e.exchange !== null ? `\n\n${describeExchange(e.exchange)}` : '';
  log(`import benchmark failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}${detail}`);
  process.exit(1);
});
