/**
 * How close a large push gets to what this machine can do, and where the rest goes: one blob pushed
 * to Berth and to Distribution, against two yardsticks measured in the same run on the same disk:
 *
 *   dd       `dd if=<blob> of=<new file> bs=1M`: the kernel's page-cache write for a file that is
 *            kept (its dirty pages are written back while more arrive), no HTTP and no hash;
 *   ingest   bench/lib/ingest-server.ts: HTTP PUT over loopback, SHA-256 while writing a kept file
 *            (with Berth's batched file sink), rename to the digest: the least a registry does with
 *            a pushed blob, so Berth / ingest is what Berth's own work costs;
 *   berth, distribution: POST /blobs/uploads/ + PUT ?digest= with the whole body (as the main
 *            bench's raw push, curl -T).
 * Plus SHA-256 alone over the blob (node:crypto, from the page cache). Every repetition pushes fresh
 * random bytes, runs `sync` before each side, and rotates which side goes first. Then one more push to
 * a Berth under `node --cpu-prof`: how much of the push its main thread was busy, and on what.
 *
 *   node --import tsx bench/push-limits.ts [--quick] [--reps N] [--doc PATH] [--keep]
 *   (normally via `npm run bench`, or `npm run bench -- --only push-limits`)
 *
 * Writes its section of docs/benchmarks.md between `<!-- push-limits-bench:start -->` and
 * `<!-- push-limits-bench:end -->`, and bench/results/push-limits-latest.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { writeRandomFile, type BlobRef } from './lib/fixtures.js';
import { machineInfo } from './lib/machine.js';
import { parseBenchOptions } from './lib/options.js';
import { summarizeProfile, type ProfileSummary } from './lib/profile.js';
import { startUpload, withDigest } from './lib/registry.js';
import { curlPut } from './lib/scenarios.js';
import { startMarkedSectionBench, startWatchdog } from './lib/section-bench.js';
import { startServer, stopServer, type Server } from './lib/servers.js';
import { fmtNum, GiB, humanSize, log, median, MiB, run, syncDisks, sectionTempDir } from './lib/util.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const resultsDir = join(repoRoot, 'bench', 'results');
const opt = parseBenchOptions();
const quick = opt.quick === true;
const markers = { start: '<!-- push-limits-bench:start -->', end: '<!-- push-limits-bench:end -->' };

type Side = 'dd' | 'ingest' | 'berth' | 'distribution';
const sides: readonly Side[] = ['dd', 'ingest', 'berth', 'distribution'];
const sideTitles: Record<Side, string> = {
  dd: '`dd bs=1M` to a kept file (page-cache write)',
  ingest: "Minimal HTTP ingest: PUT, SHA-256 while writing a kept file (Berth's file sink), rename",
  berth: 'Berth: POST + PUT ?digest= (auth off)',
  distribution: 'Distribution: POST + PUT ?digest=',
};

interface Results {
  date: string;
  quick: boolean;
  size: number;
  reps: number;
  machine: Awaited<ReturnType<typeof machineInfo>>;
  runs: Array<{ rep: number; side: Side; mbps: number }>;
  sha256: number[];
  medians: Record<Side, number | null> & { sha256: number | null };
  profile: (ProfileSummary & { mbps: number; file: string }) | { error: string };
}

const MB = 1e6;

async function main(): Promise<void> {
  const started = await startMarkedSectionBench<Results>({
    name: 'push-limits',
    selfTestReason: 'measures Berth against the machine',
    opt,
    repoRoot,
    resultsDir,
    markers,
    render,
  });
  if (!started) return;
  const stopWatchdog = startWatchdog('push-limits', 20 * 60_000);
  const reps = Number(opt.reps ?? (quick ? 1 : 5));
  if (!Number.isInteger(reps) || reps < 1 || reps > 15) throw new Error('--reps must be 1..15');
  const size = quick ? 256 * MiB : GiB;
  const parent = await sectionTempDir('berth-bench-push-limits-');
  const servers: Server[] = [];
  let ingest: ChildProcess | undefined;
  try {
    const ingestDir = join(parent, 'ingest');
    await mkdir(ingestDir);
    const ingestServer = await startIngest(ingestDir);
    ingest = ingestServer.child;
    const registries = {} as Record<'berth' | 'distribution', Server>;
    for (const kind of ['berth', 'distribution'] as const) {
      const srv = await startServer({ kind, label: kind === 'berth' ? 'Berth' : 'Distribution', parent, slug: kind, repoRoot });
      servers.push(srv);
      registries[kind] = srv;
    }
    const hdr = join(parent, 'hdr.txt');
    const body = join(parent, 'body.txt');
    const runs: Results['runs'] = [];
    const sha256: number[] = [];
    for (let rep = 1; rep <= reps; rep++) {
      const file = join(parent, `blob-r${rep}.bin`);
      const blob = await writeRandomFile(file, size);
      sha256.push(await hashRate(file, size));
      const order = sides.map((_, i) => sides[(i + rep - 1) % sides.length] as Side);
      for (const side of order) {
        await syncDisks();
        const seconds =
          side === 'dd'
            ? await ddSeconds(file, join(parent, `dd-r${rep}.bin`))
            : side === 'ingest'
              ? await putSeconds(`${ingestServer.url}/r${rep}`, file, size, hdr, body)
              : await registryPushSeconds(registries[side], `bench/limits-r${rep}`, blob, file, size, hdr, body);
        const mbps = size / seconds / MB;
        runs.push({ rep, side, mbps });
        log(`push-limits: rep ${rep} ${side.padEnd(12)} ${mbps.toFixed(0)} MB/s`);
      }
      await rm(join(parent, `dd-r${rep}.bin`), { force: true });
      if (rep < reps) await rm(file, { force: true });
    }
    for (const srv of servers.splice(0)) await stopServer(srv);
    const profile = await profiledPush(parent, join(parent, `blob-r${reps}.bin`), size, hdr, body);
    const medians = {
      ...(Object.fromEntries(sides.map((side) => [side, median(runs.filter((r) => r.side === side).map((r) => r.mbps))])) as Record<Side, number | null>),
      sha256: median(sha256),
    };
    const results: Results = {
      date: new Date().toISOString(),
      quick,
      size,
      reps,
      machine: await machineInfo(repoRoot, parent),
      runs,
      sha256,
      medians,
      profile,
    };
    await started.publish(results);
  } finally {
    stopWatchdog();
    for (const srv of servers) await stopServer(srv).catch(() => undefined);
    ingest?.kill('SIGTERM');
    if (opt.keep !== true) await rm(parent, { recursive: true, force: true });
  }
}

async function startIngest(dir: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'bench', 'lib', 'ingest-server.ts'), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((ok, fail) => {
    lines.once('line', ok);
    child.once('exit', (code) => fail(new Error(`the ingest server exited (${String(code)}) before listening`)));
  });
  return { url, child };
}

/** SHA-256 of the file in this process, read from the page cache (MB/s). */
async function hashRate(file: string, size: number): Promise<number> {
  const hash = createHash('sha256');
  const t0 = process.hrtime.bigint();
  for await (const chunk of createReadStream(file, { highWaterMark: MiB })) hash.update(chunk as Buffer);
  hash.digest();
  return size / (Number(process.hrtime.bigint() - t0) / 1e9) / MB;
}

async function ddSeconds(from: string, to: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await run('dd', [`if=${from}`, `of=${to}`, 'bs=1M'], { timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`dd failed: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function putSeconds(url: string, file: string, size: number, hdr: string, body: string): Promise<number> {
  const put = await curlPut(url, file, hdr, body);
  if (put.code !== 201 || put.uploaded !== size) throw new Error(`PUT ${url}: ${put.code} after ${put.uploaded} bytes ${put.stderr}`);
  return put.seconds;
}

async function registryPushSeconds(srv: Server, repo: string, blob: BlobRef, file: string, size: number, hdr: string, body: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const location = await startUpload(srv.url, repo);
  const post = Number(process.hrtime.bigint() - t0) / 1e9;
  return post + (await putSeconds(withDigest(srv.url, location, blob.digest), file, size, hdr, body));
}

/** One push to a fresh Berth under --cpu-prof, summarised over the PUT alone. */
async function profiledPush(parent: string, file: string, size: number, hdr: string, body: string): Promise<Results['profile']> {
  const profDir = join(parent, 'profile');
  const srv = await startServer({
    kind: 'berth',
    label: 'Berth (profiled)',
    parent,
    slug: 'berth-profiled',
    repoRoot,
    nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profDir}`],
  });
  let mbps: number;
  let window: { fromUs: number; toUs: number };
  try {
    const digest = `sha256:${createHash('sha256')
      .update(await readFile(file))
      .digest('hex')}`;
    await syncDisks();
    const location = await startUpload(srv.url, 'bench/limits-profiled');
    const fromUs = Number(process.hrtime.bigint() / 1000n);
    const seconds = await putSeconds(withDigest(srv.url, location, digest), file, size, hdr, body);
    window = { fromUs, toUs: Number(process.hrtime.bigint() / 1000n) };
    mbps = size / seconds / MB;
  } finally {
    await stopServer(srv);
  }
  const files = (await readdir(profDir).catch(() => [] as string[])).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) return { error: 'Berth wrote no .cpuprofile' };
  const dest = join(
    resultsDir,
    'profiles',
    `${new Date().toISOString().replace(/[:.]/g, '-')}-push-${humanSize(size).replace(' ', '').toLowerCase()}.cpuprofile`,
  );
  await mkdir(dirname(dest), { recursive: true });
  await rm(dest, { force: true });
  await copyFile(join(profDir, files[0] as string), dest);
  return { ...(await summarizeProfile(dest, repoRoot, 8, window)), mbps, file: relative(repoRoot, dest) };
}

function render(r: Results): string {
  const m = r.medians;
  const ratio = (a: number | null, b: number | null) => (a !== null && b !== null && b > 0 ? `${fmtNum(a / b, 2)}×` : '—');
  const rows = sides.map((side) => {
    const values = r.runs.filter((x) => x.side === side).map((x) => fmtNum(x.mbps, 0));
    return `| ${sideTitles[side]} | ${fmtNum(m[side], 0)} | ${values.join(', ')} |`;
  });
  const out = [
    markers.start,
    `## Large pushes against the machine's limits (${humanSize(r.size)})`,
    '',
    `Generated by \`bench/push-limits.ts\` (\`npm run bench -- --only push-limits\`) on ${r.date.slice(0, 10)}, ${r.machine.cores} cores (${r.machine.cpuModel}), Node.js ${r.machine.node}, data for every side on ${r.machine.filesystem}. ` +
      `${r.reps} repetition${r.reps === 1 ? '' : 's'}, each with ${humanSize(r.size)} of fresh random bytes pushed to every side, \`sync\` before each side, the order rotating; medians. ` +
      'curl sends the file (`-T`, from the page cache) over loopback; MB/s = 10^6 bytes / seconds.',
    '',
    '| Side | MB/s (median) | runs |',
    '| --- | ---: | --- |',
    ...rows,
    `| SHA-256 alone (node:crypto, from the page cache) | ${fmtNum(m.sha256, 0)} | ${r.sha256.map((x) => fmtNum(x, 0)).join(', ')} |`,
    '',
    `Berth / Distribution: **${ratio(m.berth, m.distribution)}**; Berth / minimal ingest: **${ratio(m.berth, m.ingest)}**; Berth / dd: ${ratio(m.berth, m.dd)}; minimal ingest / dd: ${ratio(m.ingest, m.dd)}.`,
    '',
  ];
  const p = r.profile;
  if ('error' in p) {
    out.push(`No profile: ${p.error}.`);
  } else {
    const busy = p.totalMs > 0 ? (100 * p.busyMs) / p.totalMs : 0;
    out.push(
      `**Where a push's time goes** (one more ${humanSize(r.size)} push to a fresh Berth under \`node --cpu-prof\`, ${fmtNum(p.mbps, 0)} MB/s; samples during the PUT only; \`${p.file}\`): ` +
        `the main thread was busy ${fmtNum(busy, 0)}% of the push (${fmtNum(p.busyMs, 0)} of ${fmtNum(p.totalMs, 0)} ms) and idle the rest, waiting for the socket and for the writes it had handed to libuv's threads. Busy time by function:`,
      '',
      '| Function | Where | ms | % of busy |',
      '| --- | --- | ---: | ---: |',
      ...p.top.map(
        (row) =>
          `| \`${row.fn || '(anonymous)'}\` | ${row.location ? `\`${row.location}\`` : 'native'} | ${fmtNum(row.selfMs, 0)} | ${fmtNum(row.percent, 1)} |`,
      ),
    );
  }
  out.push(markers.end);
  return out.join('\n');
}

await main();
