/**
 * S3 benchmark: Berth and CNCF Distribution (Debian `docker-registry` 2.8) side by side, both
 * storing blobs in the same S3-compatible service: a throwaway Ceph RADOS Gateway on 127.0.0.1
 * (scripts/s3/start.sh), one bucket per registry.
 *
 *   node --import tsx bench/s3.ts [options]      (normally via `npm run bench -- --only s3`)
 *
 * Accepts the options of bench/run.ts (scripts/bench.sh passes the same arguments) and uses:
 *   --quick                 small sizes, 1 repetition
 *   --reps N                repetitions per measurement (default 3)
 *   --doc PATH              the Markdown file to put the section in
 *   --only …                `--only s3` alone writes docs/benchmarks.md; a mix writes the partial
 *                           doc the main run just wrote
 *   --keep                  keep the temporary data directory
 *   --report-only FILE      re-insert the last S3 section into the doc bench/run.ts re-rendered
 *   --candidate distribution  (self-test) nothing to do
 *
 * Writes the section between `<!-- s3-bench:start -->` and `<!-- s3-bench:end -->` and
 * bench/results/s3-<stamp>.json + s3-latest.json (`partial-` prefix with --quick).
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { type Agent, request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { loadavg } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CopyObjectCommand, CreateBucketCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { copyParts } from '../src/storage/s3-assemble.js';
import { keepAliveAgent, startBerth, stopBerth } from './lib/auth-lib.js';
import { sha256 } from './lib/fixtures.js';
import { machineInfo } from './lib/machine.js';
import { parseBenchOptions } from './lib/options.js';
import { describeExchange, expectStatus, ProtocolError, pushBlob, request, startUpload, withDigest } from './lib/registry.js';
import { insertS3Section, renderS3Section } from './lib/s3-report.js';
import type { S3Results, S3Row, Side } from './lib/s3-report.js';
import { RssSampler, readMem, startServer } from './lib/servers.js';
import type { Server } from './lib/servers.js';
import { log, median, MiB, run, sleep, sectionTempDir } from './lib/util.js';
import { startSectionBench, startWatchdog } from './lib/section-bench.js';

// Quiet, as Berth's own S3 driver is (src/storage/s3.ts says why).
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const resultsDir = join(repoRoot, 'bench', 'results');

const opt = parseBenchOptions();
const quick = opt.quick === true;
const cfg = {
  reps: opt.reps !== undefined ? Math.max(1, Number(opt.reps)) : quick ? 1 : 3,
  largeBytes: quick ? 32 * MiB : 256 * MiB,
  chunks: 5,
  /** Berth `partSizeBytes` and Distribution `chunksize`: the same multipart part size on both. */
  partSizeBytes: 16 * MiB,
  smallCount: quick ? 40 : 200,
  smallBytes: 64 * 1024,
  smallParallel: 4,
  skopeoLayers: 4,
  skopeoLayerBytes: quick ? 1 * MiB : 4 * MiB,
  idleSeconds: quick ? 3 : 10,
  warmupPulls: quick ? 1 : 4,
};
const REGION = 'us-east-1';
/** Bounds on a broken run, not measurements. */
const REQUEST_TIMEOUT_MS = 5 * 60_000;
const WATCHDOG_MS = 30 * 60_000;
const MT_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

interface Rgw {
  dir: string;
  endpoint: string;
  accessKey: string;
  secretKey: string;
}

async function startRgw(): Promise<Rgw> {
  const { stdout } = await promisify(execFile)('bash', [join(repoRoot, 'scripts', 's3', 'start.sh')], {
    maxBuffer: 1024 * 1024,
    timeout: 5 * 60_000,
    // RAM for object data (allocated lazily): every blob of the run stays in the buckets, and what
    // is deleted (upload data after its commit) is freed only by the gateway's hourly garbage
    // collection, so a run writes ~10 GiB; at 8 GiB the third repetition's pushes stalled.
    env: { ...process.env, OWNER_PID: String(process.pid), MEMSTORE_BYTES: String(14 * 1024 * MiB) },
  });
  const v = Object.fromEntries(
    stdout.split('\n').flatMap((l) => {
      const m = /^([A-Z_]+)=(.*)$/.exec(l.trim());
      return m ? [[m[1], m[2]]] : [];
    }),
  ) as Record<string, string | undefined>;
  if (!v['DIR'] || !v['ENDPOINT'] || !v['ACCESS_KEY'] || !v['SECRET_KEY']) throw new Error(`scripts/s3/start.sh printed no service:\n${stdout}`);
  return { dir: v['DIR'], endpoint: v['ENDPOINT'], accessKey: v['ACCESS_KEY'], secretKey: v['SECRET_KEY'] };
}

function s3Client(rgw: Rgw): S3Client {
  return new S3Client({
    endpoint: rgw.endpoint,
    region: REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: rgw.accessKey, secretAccessKey: rgw.secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

async function bucketUsage(client: S3Client, bucket: string): Promise<{ objects: number; bytes: number }> {
  let objects = 0;
  let bytes = 0;
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      objects++;
      bytes += o.Size ?? 0;
    }
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return { objects, bytes };
}

// ---------------------------------------------------------------------------
// Transfers.

function seconds(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * POST, `chunks` × PATCH, PUT ?digest= with no body. Several chunks carry Content-Range; a single
 * one is sent without it, the whole body in one streamed PATCH, as docker and skopeo push a layer.
 */
async function pushChunked(base: string, repo: string, data: Buffer, digest: string, chunks: number): Promise<void> {
  let loc = await startUpload(base, repo);
  const size = Math.ceil(data.length / chunks);
  for (let start = 0; start < data.length; start += size) {
    const part = data.subarray(start, Math.min(data.length, start + size));
    const range: Record<string, string> = chunks > 1 ? { 'content-range': `${start}-${start + part.length - 1}` } : {};
    const res = await request(loc, {
      method: 'PATCH',
      headers: { 'content-type': 'application/octet-stream', ...range },
      body: part,
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
    expectStatus(res, 202, `PATCH chunk at ${start}`);
    const next = header(res.headers, 'location');
    if (next === undefined || next === '') throw new ProtocolError('PATCH: 202 without Location', res.exchange);
    loc = new URL(next, base).toString();
  }
  const res = await request(withDigest(base, loc, digest), { method: 'PUT', headers: { 'content-length': 0 }, timeoutMs: REQUEST_TIMEOUT_MS });
  expectStatus(res, 201, 'complete chunked upload (PUT ?digest=)');
  const got = header(res.headers, 'docker-content-digest');
  if (got !== undefined && got !== digest) throw new ProtocolError(`chunked upload: Docker-Content-Digest ${got} != ${digest}`, res.exchange);
}

/** GET of a blob, streamed through SHA-256; throws unless it is a 200 with exactly the expected bytes. */
function pullVerified(base: string, repo: string, digest: string, size: number, agent?: Agent): Promise<void> {
  const url = `${base}/v2/${repo}/blobs/${digest}`;
  return new Promise((ok, fail) => {
    const req = httpRequest(url, { method: 'GET', ...(agent !== undefined ? { agent } : {}) }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      const body: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (res.statusCode === 200) hash.update(c);
        else if (bytes < 4096) body.push(c);
      });
      res.on('error', fail);
      res.on('end', () => {
        if (res.statusCode !== 200) {
          fail(
            new Error(
              `GET ${url}: HTTP ${String(res.statusCode)} (location ${header(res.headers, 'location') ?? '-'}): ${Buffer.concat(body).toString('utf8').slice(0, 500)}`,
            ),
          );
          return;
        }
        const got = `sha256:${hash.digest('hex')}`;
        if (bytes !== size || got !== digest) fail(new Error(`GET ${url}: ${bytes} bytes with digest ${got}, expected ${size} bytes, ${digest}`));
        else ok();
      });
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`GET ${url}: timeout`)));
    req.on('error', fail);
    req.end();
  });
}

/** Runs `fn` over 0..n-1 with `parallel` workers. */
async function pool(n: number, parallel: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, n) }, async () => {
      for (let i = next++; i < n; i = next++) await fn(i);
    }),
  );
}

/** An OCI layout (`oci:<dir>:v1`) of one image: a config and `layers` fresh random layers. */
async function ociLayout(dir: string, layers: number, layerBytes: number): Promise<string> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const put = async (data: Buffer): Promise<{ digest: string; size: number }> => {
    const digest = sha256(data);
    await writeFile(join(blobs, digest.slice(7)), data);
    return { digest, size: data.length };
  };
  const config = await put(
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex'), rootfs: { type: 'layers', diff_ids: [] } })),
  );
  const layerRefs = [];
  for (let i = 0; i < layers; i++) layerRefs.push(await put(randomBytes(layerBytes)));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: layerRefs.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l })),
    }),
  );
  const m = await put(manifest);
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MT_MANIFEST, ...m, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }] }),
  );
  return m.digest;
}

/**
 * What the gateway's own server-side copies take, to read the push rows by: `reps` × CopyObject of
 * one object of `data` (how Berth moves a finished upload to its digest), and `reps` × an object
 * assembled from `chunks` objects by Berth's own `copyParts` (a multipart upload of UploadPartCopy
 * parts, 4 at a time: how its S3 driver assembled an upload's per-PATCH segments before open uploads). Milliseconds
 * each, in a bucket of its own, so the registries' buckets are not touched.
 */
async function gatewayCopies(client: S3Client, data: Buffer, chunks: number, reps: number): Promise<{ copyObjectMs: number[]; partCopyMs: number[] }> {
  const Bucket = 'bench-gateway-copies';
  await client.send(new CreateBucketCommand({ Bucket }));
  await client.send(new PutObjectCommand({ Bucket, Key: 'whole', Body: data, ContentLength: data.length }));
  const size = Math.ceil(data.length / chunks);
  const parts: Array<{ key: string; size: number }> = [];
  for (let start = 0; start < data.length; start += size) {
    const key = `part-${parts.length}`;
    const body = data.subarray(start, Math.min(data.length, start + size));
    await client.send(new PutObjectCommand({ Bucket, Key: key, Body: body, ContentLength: body.length }));
    parts.push({ key, size: body.length });
  }
  const ms = (t: bigint): number => Number(process.hrtime.bigint() - t) / 1e6;
  const copyObjectMs: number[] = [];
  const partCopyMs: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    let t = process.hrtime.bigint();
    await client.send(new CopyObjectCommand({ Bucket, Key: `copy-${rep}`, CopySource: `${Bucket}/whole` }));
    copyObjectMs.push(ms(t));
    t = process.hrtime.bigint();
    await copyParts(client, Bucket, parts, `assembled-${rep}`);
    partCopyMs.push(ms(t));
  }
  return { copyObjectMs, partCopyMs };
}

// ---------------------------------------------------------------------------

const ROWS: Array<Omit<S3Row, 'runs' | 'value'>> = [
  { id: 'large-push-monolithic', title: `Push ${cfg.largeBytes / MiB} MiB blob, monolithic (POST + PUT)`, unit: 'MB/s', higherIsBetter: true },
  {
    id: 'large-push-streamed',
    title: `Push ${cfg.largeBytes / MiB} MiB blob, streamed in one PATCH (POST + PATCH + PUT, as docker and skopeo push a layer)`,
    unit: 'MB/s',
    higherIsBetter: true,
  },
  {
    id: 'large-push-chunked',
    title: `Push ${cfg.largeBytes / MiB} MiB blob, chunked (POST + ${cfg.chunks} × PATCH + PUT)`,
    unit: 'MB/s',
    higherIsBetter: true,
  },
  { id: 'large-pull', title: `Pull ${cfg.largeBytes / MiB} MiB blob (GET, no redirect)`, unit: 'MB/s', higherIsBetter: true },
  {
    id: 'small-push',
    title: `Push ${cfg.smallCount} × ${cfg.smallBytes / 1024} KiB blobs, ${cfg.smallParallel} in flight`,
    unit: 'blobs/s',
    higherIsBetter: true,
  },
  {
    id: 'small-pull',
    title: `Pull ${cfg.smallCount} × ${cfg.smallBytes / 1024} KiB blobs, ${cfg.smallParallel} in flight`,
    unit: 'blobs/s',
    higherIsBetter: true,
  },
  {
    id: 'skopeo',
    title: `skopeo copy oci: → registry, config + ${cfg.skopeoLayers} × ${cfg.skopeoLayerBytes / MiB} MiB layers`,
    unit: 'MB/s',
    higherIsBetter: true,
  },
  {
    id: 'rss-peak-push',
    title: `Peak RSS during the ${cfg.largeBytes / MiB} MiB pushes (monolithic, streamed and chunked)`,
    unit: 'MiB',
    higherIsBetter: false,
  },
  { id: 'rss-peak-pull', title: `Peak RSS during the ${cfg.largeBytes / MiB} MiB pull`, unit: 'MiB', higherIsBetter: false },
  { id: 'rss-growth-push', title: `RSS growth during the ${cfg.largeBytes / MiB} MiB pushes (peak − RSS just before)`, unit: 'MiB', higherIsBetter: false },
  { id: 'rss-growth-pull', title: `RSS growth during the ${cfg.largeBytes / MiB} MiB pull (peak − RSS just before)`, unit: 'MiB', higherIsBetter: false },
  { id: 'rss-start', title: 'RSS after start, idle', unit: 'MiB', higherIsBetter: false },
  { id: 'rss-end', title: 'RSS after the last measurement', unit: 'MiB', higherIsBetter: false },
  { id: 'rss-idle', title: `RSS after a further ${cfg.idleSeconds} s idle`, unit: 'MiB', higherIsBetter: false },
];

async function rssMiB(pid: number): Promise<number> {
  const m = await readMem(pid);
  if (m === null) throw new Error(`process ${pid} is gone`);
  return m.rssKiB / 1024;
}

async function main(): Promise<void> {
  const started = new Date();
  const t0 = Date.now();
  const setup = await startSectionBench<S3Results>({
    name: 's3',
    selfTestReason: 'compares Berth with Distribution',
    opt,
    repoRoot,
    resultsDir,
    insert: (doc, results) => insertS3Section(doc, renderS3Section(results)),
  });
  if (!setup) return;
  const { docPath } = setup;

  const parent = await sectionTempDir('berth-bench-s3-');
  const stopWatchdog = startWatchdog('s3', WATCHDOG_MS);
  await mkdir(resultsDir, { recursive: true });
  const mi = await machineInfo(repoRoot, parent);
  const ceph =
    (await run('radosgw', ['--version'], { timeoutMs: 10_000 })).stdout
      .trim()
      .split('\n')[0]
      ?.replace(/^ceph version (\S+).*$/, 'Ceph RGW $1') ?? 'Ceph RGW';
  const problems: string[] = [];
  const servers: Partial<Record<Side, Server>> = {};
  let rgw: Rgw | undefined;
  let client: S3Client | undefined;
  const stopRgw = async (): Promise<void> => {
    if (rgw === undefined) return;
    const dir = rgw.dir;
    rgw = undefined;
    await run('bash', [join(repoRoot, 'scripts', 's3', 'stop.sh'), dir], { timeoutMs: 60_000 });
  };
  try {
    log('s3: starting Ceph RGW (scripts/s3/start.sh)');
    rgw = await startRgw();
    log(`s3: RGW at ${rgw.endpoint}`);
    client = s3Client(rgw);
    const buckets: Record<Side, string> = { berth: 'bench-berth', distribution: 'bench-distribution' };
    for (const b of Object.values(buckets)) await client.send(new CreateBucketCommand({ Bucket: b }));
    const secretFile = join(parent, 's3-secret');
    await writeFile(secretFile, rgw.secretKey, { mode: 0o600 });

    servers.berth = await startBerth({
      label: 'Berth',
      parent,
      slug: 'berth',
      repoRoot,
      env: { BERTH_AUTH_ENABLED: 'false' },
      config: {
        auth: { enabled: false },
        storage: {
          driver: 's3',
          s3: {
            bucket: buckets.berth,
            endpoint: rgw.endpoint,
            forcePathStyle: true,
            region: REGION,
            accessKeyId: rgw.accessKey,
            secretAccessKeyFile: secretFile,
            redirect: false,
            partSizeBytes: cfg.partSizeBytes,
          },
        },
      },
    });
    servers.distribution = await startServer({
      kind: 'distribution',
      label: 'Distribution',
      parent,
      slug: 'distribution',
      repoRoot,
      // The AWS SDK for Go refuses a custom CA bundle with Distribution's own HTTP transport
      // ("LoadCustomCABundleError"); the gateway is plain HTTP on loopback, so none is needed.
      env: { AWS_CA_BUNDLE: undefined },
      distributionStorage: [
        '  s3:',
        `    accesskey: ${rgw.accessKey}`,
        `    secretkey: ${rgw.secretKey}`,
        `    region: ${REGION}`,
        `    regionendpoint: ${rgw.endpoint}`,
        `    bucket: ${buckets.distribution}`,
        '    encrypt: false',
        '    secure: false',
        '    v4auth: true',
        `    chunksize: ${cfg.partSizeBytes}`,
        '  redirect:',
        '    disable: true',
      ],
    });
    const srv = servers as Record<Side, Server>;

    const runs: Record<string, Record<Side, number[]>> = Object.fromEntries(ROWS.map((r) => [r.id, { berth: [], distribution: [] }]));
    const record = (id: string, side: Side, v: number): void => {
      runs[id]?.[side].push(v);
    };
    for (const side of ['berth', 'distribution'] as const) record('rss-start', side, await rssMiB(srv[side].pid));
    const loadBefore = loadavg()[0] ?? 0;

    // Untimed warm-up: one small push and pull each (first connections, first bucket writes).
    for (const side of ['berth', 'distribution'] as const) {
      const data = randomBytes(4096);
      const digest = sha256(data);
      await pushBlob(srv[side].url, 'bench/warmup', data, digest);
      await pullVerified(srv[side].url, 'bench/warmup', digest, data.length);
    }

    const large = randomBytes(cfg.largeBytes);
    /** Fresh content for every push: new random bytes at the front and the back. */
    const freshLarge = (): string => {
      randomFillSync(large, 0, 64);
      randomFillSync(large, large.length - 64, 64);
      return sha256(large);
    };

    // Untimed warm-up of the large transfers: one large push and `warmupPulls` pulls of it, the same
    // for both, so the rows measure a server that has been running. Under V8's own choice of heap
    // growth a new Berth process ran a full garbage collection every ~40 ms while its first
    // 0.25-1.5 GiB was relayed from S3 (first pulls up to 4x the CPU of later ones); Berth now runs
    // with that growth fixed (docs/operations.md, Memory), which ends it from the first pull, and the
    // warm-up stays so that neither server's first transfers are measured.
    for (const side of ['berth', 'distribution'] as const) {
      const digest = freshLarge();
      await pushBlob(srv[side].url, 'bench/warmup', large, digest);
      for (let i = 0; i < cfg.warmupPulls; i++) await pullVerified(srv[side].url, 'bench/warmup', digest, cfg.largeBytes);
    }
    const MB = (bytes: number, s: number): number => bytes / 1e6 / s;

    for (let rep = 1; rep <= cfg.reps; rep++) {
      const order: Side[] = rep % 2 === 1 ? ['berth', 'distribution'] : ['distribution', 'berth'];
      for (const side of order) {
        const s = srv[side];
        const tag = `${side} rep ${rep}`;
        const step = async (what: string, fn: () => Promise<void>): Promise<void> => {
          try {
            await fn();
          } catch (err) {
            const detail = err instanceof ProtocolError && err.exchange !== null ? `\n\n\`\`\`\n${describeExchange(err.exchange)}\n\`\`\`` : '';
            problems.push(`**${s.label}, ${what}, repetition ${rep}** failed: ${err instanceof Error ? err.message : String(err)}${detail}`);
            log(`s3: ${tag} ${what} failed: ${String(err)}`);
          }
        };
        const repo = `bench/s3-r${rep}`;
        let monoDigest: string | undefined;

        // 1 + 2: large pushes, RSS sampled across both.
        const pushRss = new RssSampler(s.pid);
        const beforePush = (await pushRss.start()) / 1024;
        await step('monolithic push', async () => {
          const digest = freshLarge();
          const t = process.hrtime.bigint();
          await pushBlob(s.url, repo, large, digest);
          const v = MB(large.length, seconds(t));
          monoDigest = digest;
          record('large-push-monolithic', side, v);
          log(`s3: ${tag} monolithic push ${v.toFixed(1)} MB/s`);
        });
        let streamedDigest: string | undefined;
        await step('streamed push', async () => {
          const digest = freshLarge();
          const t = process.hrtime.bigint();
          await pushChunked(s.url, repo, large, digest, 1);
          const v = MB(large.length, seconds(t));
          streamedDigest = digest;
          record('large-push-streamed', side, v);
          log(`s3: ${tag} streamed push ${v.toFixed(1)} MB/s`);
        });
        let chunkedDigest: string | undefined;
        await step('chunked push', async () => {
          const digest = freshLarge();
          const t = process.hrtime.bigint();
          await pushChunked(s.url, repo, large, digest, cfg.chunks);
          const v = MB(large.length, seconds(t));
          chunkedDigest = digest;
          record('large-push-chunked', side, v);
          log(`s3: ${tag} chunked push ${v.toFixed(1)} MB/s`);
        });
        const peakPush = (await pushRss.stop()) / 1024;
        record('rss-peak-push', side, peakPush);
        record('rss-growth-push', side, peakPush - beforePush);

        // 3: large pull (of the monolithic blob), RSS sampled.
        if (monoDigest !== undefined) {
          const digest = monoDigest;
          const pullRss = new RssSampler(s.pid);
          const beforePull = (await pullRss.start()) / 1024;
          await step('large pull', async () => {
            const t = process.hrtime.bigint();
            await pullVerified(s.url, repo, digest, cfg.largeBytes);
            const v = MB(cfg.largeBytes, seconds(t));
            record('large-pull', side, v);
            log(`s3: ${tag} pull ${v.toFixed(1)} MB/s`);
          });
          const peakPull = (await pullRss.stop()) / 1024;
          record('rss-peak-pull', side, peakPull);
          record('rss-growth-pull', side, peakPull - beforePull);
        }
        for (const [what, digest] of [
          ['streamed', streamedDigest],
          ['chunked', chunkedDigest],
        ] as const) {
          if (digest !== undefined) await step(`read-back of the ${what} blob`, () => pullVerified(s.url, repo, digest, cfg.largeBytes));
        }

        // 4: small blobs.
        const small = Array.from({ length: cfg.smallCount }, () => {
          const data = randomBytes(cfg.smallBytes);
          return { data, digest: sha256(data) };
        });
        const agent = keepAliveAgent(cfg.smallParallel);
        try {
          let pushed = false;
          await step('small-blob push', async () => {
            const t = process.hrtime.bigint();
            await pool(small.length, cfg.smallParallel, async (i) => {
              const b = small[i]!;
              await pushBlob(s.url, repo, b.data, b.digest, agent);
            });
            const v = small.length / seconds(t);
            record('small-push', side, v);
            pushed = true;
            log(`s3: ${tag} small push ${v.toFixed(1)} blobs/s`);
          });
          if (pushed) {
            await step('small-blob pull', async () => {
              const t = process.hrtime.bigint();
              await pool(small.length, cfg.smallParallel, (i) => pullVerified(s.url, repo, small[i]!.digest, cfg.smallBytes, agent));
              const v = small.length / seconds(t);
              record('small-pull', side, v);
              log(`s3: ${tag} small pull ${v.toFixed(1)} blobs/s`);
            });
          }
        } finally {
          agent.destroy();
        }

        // 5: skopeo copy of a fresh image from an OCI layout.
        await step('skopeo copy', async () => {
          const dir = join(parent, `oci-${side}-${rep}`);
          const manifestDigest = await ociLayout(dir, cfg.skopeoLayers, cfg.skopeoLayerBytes);
          const dest = `${new URL(s.url).host}/${repo}-skopeo:v1`;
          const t = process.hrtime.bigint();
          const res = await run('skopeo', ['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', `oci:${dir}:v1`, `docker://${dest}`], {
            timeoutMs: REQUEST_TIMEOUT_MS,
          });
          const secs = seconds(t);
          await rm(dir, { recursive: true, force: true });
          if (res.code !== 0) throw new Error(`skopeo copy: exit ${String(res.code)}: ${res.stderr.trim().slice(-2000)}`);
          const head = await request(`${s.url}/v2/${repo}-skopeo/manifests/v1`, { method: 'HEAD', headers: { accept: MT_MANIFEST } });
          const got = header(head.headers, 'docker-content-digest');
          if (head.status !== 200 || got !== manifestDigest)
            throw new ProtocolError(`after skopeo copy: manifest ${got ?? 'missing'} (HTTP ${head.status}), expected ${manifestDigest}`, head.exchange);
          const v = MB(cfg.skopeoLayers * cfg.skopeoLayerBytes, secs);
          record('skopeo', side, v);
          log(`s3: ${tag} skopeo copy ${v.toFixed(1)} MB/s`);
        });
      }
    }

    // 6: memory at the end and after idling.
    for (const side of ['berth', 'distribution'] as const) record('rss-end', side, await rssMiB(srv[side].pid));
    await sleep(cfg.idleSeconds * 1000);
    for (const side of ['berth', 'distribution'] as const) record('rss-idle', side, await rssMiB(srv[side].pid));

    let gatewayCopy: S3Results['gatewayCopy'];
    try {
      gatewayCopy = await gatewayCopies(client, large, cfg.chunks, cfg.reps);
      log(
        `s3: gateway CopyObject ${gatewayCopy.copyObjectMs.map((v) => v.toFixed(0)).join('/')} ms, UploadPartCopy assembly ${gatewayCopy.partCopyMs.map((v) => v.toFixed(0)).join('/')} ms`,
      );
    } catch (err) {
      problems.push(`**The gateway's own copies** could not be timed: ${err instanceof Error ? err.message : String(err)}`);
    }

    // The blobs really went to the buckets (a registry that kept them on local disk would fail here).
    const usage = { berth: await bucketUsage(client, buckets.berth), distribution: await bucketUsage(client, buckets.distribution) };
    for (const side of ['berth', 'distribution'] as const) {
      const pushedLarge =
        ['large-push-monolithic', 'large-push-streamed', 'large-push-chunked'].reduce((count, id) => count + (runs[id]?.[side].length ?? 0), 0) *
        cfg.largeBytes;
      if (usage[side].bytes < pushedLarge)
        problems.push(`**${srv[side].label}**: its bucket holds ${usage[side].bytes} bytes, less than the ${pushedLarge} bytes of large blobs pushed to it`);
    }

    for (const side of ['berth', 'distribution'] as const) {
      const s = srv[side];
      const r = await stopBerth(s); // works for any Server, and clears its grace timer
      if (r.killed || (r.code !== 0 && r.signal !== 'SIGTERM'))
        problems.push(
          `**${s.label}** did not shut down cleanly (code ${String(r.code)}, signal ${String(r.signal)}${r.killed ? ', killed' : ''}); log: ${s.logPath}`,
        );
      delete servers[side];
    }

    const rows: S3Row[] = ROWS.map((r) => {
      const rr = runs[r.id] ?? { berth: [], distribution: [] };
      return { ...r, runs: rr, value: { berth: median(rr.berth), distribution: median(rr.distribution) } };
    });
    const args = process.argv.slice(2);
    const res: S3Results = {
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
        ceph,
      },
      loadBefore,
      config: cfg,
      rows,
      buckets: usage,
      ...(gatewayCopy !== undefined ? { gatewayCopy } : {}),
      problems,
    };
    const stamp = res.startedAt.replace(/[:.]/g, '-');
    const prefix = quick ? 'partial-' : '';
    const json = JSON.stringify(res, null, 2);
    await writeFile(join(resultsDir, `${prefix}s3-${stamp}.json`), json);
    await writeFile(join(resultsDir, `${prefix}s3-latest.json`), json);
    await insertS3Section(docPath, renderS3Section(res));
    log(`s3: wrote the S3 section of ${relative(repoRoot, docPath)}`);
    for (const r of rows) {
      const b = r.value.berth;
      const d = r.value.distribution;
      process.stdout.write(
        `${r.id.padEnd(24)} berth ${String(b?.toFixed(1) ?? 'failed').padStart(8)}  distribution ${String(d?.toFixed(1) ?? 'failed').padStart(8)} ${r.unit}  ${b !== null && d !== null && d > 0 ? (b / d).toFixed(2) : 'n/a'}x\n`,
      );
    }
    if (problems.length > 0) log(`s3: ${problems.length} problem(s); see the Problems list in the doc`);
  } finally {
    for (const s of Object.values(servers)) await stopBerth(s).catch(() => undefined);
    client?.destroy();
    await stopRgw().catch(() => undefined);
    stopWatchdog();
    if (opt.keep !== true) await rm(parent, { recursive: true, force: true });
    else log(`s3: kept ${parent}`);
  }
  log(`s3: done in ${Math.round((Date.now() - t0) / 1000)} s`);
}

main().catch((e: unknown) => {
  const detail = e instanceof ProtocolError && e.exchange !== null ? `\n\n${describeExchange(e.exchange)}` : '';
  log(`s3 benchmark failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}${detail}`);
  process.exit(1);
});
