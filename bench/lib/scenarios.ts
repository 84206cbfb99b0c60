/**
 * The measurements. Each group prepares one fixture per repetition (shared by
 * both servers, which are separate registries, so nothing is deduplicated across
 * them) and then measures one or more metrics on each server in turn.
 */
import { createHash } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { imageJson, makeOciLayout, MT, randomBlobs, writeRandomFile } from './fixtures.js';
import type { BlobRef, OciLayout } from './fixtures.js';
import { runLoadgen as loadgen } from './loadgen.js';
import { describeExchange, ProtocolError, pushBlob, putManifest, request, startUpload, withDigest } from './registry.js';
import type { Server } from './servers.js';
import { humanSize, run, syncDisks } from './util.js';

export interface Measurement {
  /** The metric value (MB/s, blobs/s, requests/s), or null when the run failed. */
  value: number | null;
  error?: string;
  /** Extra numbers for the JSON (seconds, latency percentiles, ...). */
  detail?: Record<string, number | string>;
}

export interface MetricDef {
  id: string;
  title: string;
  unit: string;
  /** Whether this metric's numbers say more about the client than the server. */
  note?: string;
  /** Sample RSS during this metric (for the "growth vs idle" rows). */
  trackRss?: boolean;
}

export interface BenchConfig {
  work: string;
  largeSize: number;
  smallSize: number;
  smallBlobCount: number;
  /** Blobs pushed untimed to each server before its first small-blob run: at least this many... */
  smallBlobWarmup: number;
  /** ...and for at least this long (seconds), in batches of `smallBlobWarmupBatch`. */
  smallBlobWarmupSeconds: number;
  smallBlobSize: number;
  smallBlobConcurrency: number;
  wrkSeconds: number;
  wrkConnections: number;
  wrkThreads: number;
  /** Path of the compiled bench/loadgen.c. */
  loadgen: string;
}

export interface Group<Ctx> {
  id: string;
  metrics: MetricDef[];
  minReps?: number;
  /** Untimed: build this repetition's fixture. */
  prepareRep(rep: number): Promise<Ctx>;
  /** Untimed: per-server state a metric needs when it runs alone (profiling). */
  prepareMetric(srv: Server, ctx: Ctx, metricId: string): Promise<void>;
  /** Timed. Metrics run in `metrics` order on one server before the next server. */
  measure(srv: Server, ctx: Ctx, metricId: string): Promise<Measurement>;
  cleanupRep(ctx: Ctx): Promise<void>;
}

// A group with its context type erased, for the runner.
export interface AnyGroup {
  id: string;
  metrics: MetricDef[];
  /** At least this many repetitions in a full run (cheap, noisy measurements). */
  minReps?: number;
  prepareRep(rep: number): Promise<unknown>;
  prepareMetric(srv: Server, ctx: unknown, metricId: string): Promise<void>;
  measure(srv: Server, ctx: unknown, metricId: string): Promise<Measurement>;
  cleanupRep(ctx: unknown): Promise<void>;
}

function erase<Ctx>(g: Group<Ctx>): AnyGroup {
  return g as unknown as AnyGroup;
}

const MB = 1e6;

function failure(e: unknown): Measurement {
  if (e instanceof ProtocolError && e.exchange !== null) {
    return { value: null, error: `${e.message}\n\n${describeExchange(e.exchange)}` };
  }
  return { value: null, error: e instanceof Error ? e.message : String(e) };
}

function sizeSlug(bytes: number): string {
  return humanSize(bytes).replace(' ', '').toLowerCase();
}

// ---------------------------------------------------------------------------
// Raw HTTP push / pull of one large blob: curl streams the file; the server's cost
// dominates. Push = POST /blobs/uploads/ (timed, node) + PUT <location>?digest=
// (curl's own time_total, so process start-up is not counted).

interface RawCtx {
  rep: number;
  file: string;
  blob: BlobRef;
  repo: string;
}

export async function curlPut(
  url: string,
  file: string,
  hdrFile: string,
  bodyFile: string,
): Promise<{ code: number; seconds: number; uploaded: number; stderr: string }> {
  const r = await run(
    'curl',
    [
      '-sS',
      '--max-time',
      '900',
      '-X',
      'PUT',
      '-T',
      file,
      '-H',
      'Content-Type: application/octet-stream',
      '-H',
      'Expect:',
      '-D',
      hdrFile,
      '-o',
      bodyFile,
      '-w',
      '%{http_code} %{size_upload} %{time_total}',
      url,
    ],
    { timeoutMs: 960_000 },
  );
  const [code, up, t] = r.stdout.trim().split(' ');
  return { code: Number(code), uploaded: Number(up), seconds: Number(t), stderr: r.stderr };
}

async function curlGet(url: string, hdrFile: string, accept?: string): Promise<{ code: number; seconds: number; downloaded: number; stderr: string }> {
  const r = await run(
    'curl',
    [
      '-sS',
      '-L',
      '--max-time',
      '900',
      '-D',
      hdrFile,
      '-o',
      '/dev/null',
      ...(accept !== undefined ? ['-H', `Accept: ${accept}`] : []),
      '-w',
      '%{http_code} %{size_download} %{time_total}',
      url,
    ],
    { timeoutMs: 960_000 },
  );
  const [code, down, t] = r.stdout.trim().split(' ');
  return { code: Number(code), downloaded: Number(down), seconds: Number(t), stderr: r.stderr };
}

/** Untimed check that the server returns exactly the bytes of `blob`. */
async function verifyBlob(base: string, repo: string, blob: BlobRef): Promise<void> {
  const url = `${base}/v2/${repo}/blobs/${blob.digest}`;
  await new Promise<void>((resolve, reject) => {
    const req = httpRequest(url, { method: 'GET' }, (res) => {
      const h = createHash('sha256');
      let n = 0;
      res.on('data', (c: Buffer) => {
        h.update(c);
        n += c.length;
      });
      res.on('error', reject);
      res.on('end', () => {
        const got = `sha256:${h.digest('hex')}`;
        if (res.statusCode !== 200 || got !== blob.digest || n !== blob.size) {
          reject(new Error(`GET ${url}: status ${String(res.statusCode)}, ${n} bytes, digest ${got} (expected ${blob.size} bytes ${blob.digest})`));
        } else resolve();
      });
    });
    req.setTimeout(600_000, () => req.destroy(new Error('verify timeout')));
    req.on('error', reject);
    req.end();
  });
}

export function rawGroup(cfg: BenchConfig, size: number, minReps?: number): AnyGroup {
  const slug = sizeSlug(size);
  const g: Group<RawCtx> = {
    id: `raw-${slug}`,
    ...(minReps !== undefined ? { minReps } : {}),
    metrics: [
      { id: `raw-push-${slug}`, title: `Raw HTTP push, ${humanSize(size)} blob (POST + streamed PUT)`, unit: 'MB/s', trackRss: true },
      { id: `raw-pull-${slug}`, title: `Raw HTTP pull, ${humanSize(size)} blob (GET → /dev/null)`, unit: 'MB/s', trackRss: true },
    ],
    async prepareRep(rep) {
      const file = join(cfg.work, `raw-${slug}-r${rep}.bin`);
      const blob = await writeRandomFile(file, size);
      await syncDisks();
      return { rep, file, blob, repo: `bench/raw-${slug}-r${rep}` };
    },
    async prepareMetric(srv, ctx, metricId) {
      if (metricId.startsWith('raw-pull')) {
        const m = await g.measure(srv, ctx, `raw-push-${slug}`);
        if (m.value === null) throw new Error(`setup push failed: ${m.error ?? ''}`);
      }
    },
    async measure(srv, ctx, metricId) {
      const hdr = join(cfg.work, `${srv.label.replace(/\W/g, '')}-hdr.txt`);
      const body = join(cfg.work, `${srv.label.replace(/\W/g, '')}-body.txt`);
      try {
        await syncDisks();
        if (metricId.startsWith('raw-push')) {
          const t0 = process.hrtime.bigint();
          const loc = await startUpload(srv.url, ctx.repo);
          const postSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
          const url = withDigest(srv.url, loc, ctx.blob.digest);
          const put = await curlPut(url, ctx.file, hdr, body);
          if (put.code !== 201 || put.uploaded !== size) {
            const respHeaders = await readFile(hdr, 'utf8').catch(() => '');
            const respBody = (await readFile(body, 'utf8').catch(() => '')).slice(0, 1024);
            const u = new URL(url);
            throw new Error(
              `PUT upload: expected 201 after ${size} bytes, got ${put.code} after ${put.uploaded} bytes ${put.stderr.trim()}\n\n` +
                `PUT ${u.pathname}${u.search} HTTP/1.1\nHost: ${u.host}\nContent-Type: application/octet-stream\nContent-Length: ${size}\n\n<${size} random bytes>\n\n${respHeaders.trim()}\n\n${respBody}`,
            );
          }
          const seconds = postSeconds + put.seconds;
          return { value: size / seconds / MB, detail: { seconds, postSeconds, putSeconds: put.seconds } };
        }
        const url = `${srv.url}/v2/${ctx.repo}/blobs/${ctx.blob.digest}`;
        const get = await curlGet(url, hdr);
        if (get.code !== 200 || get.downloaded !== size) {
          const respHeaders = await readFile(hdr, 'utf8').catch(() => '');
          const u = new URL(url);
          throw new Error(
            `GET blob: expected 200 with ${size} bytes, got ${get.code} with ${get.downloaded} bytes ${get.stderr.trim()}\n\nGET ${u.pathname} HTTP/1.1\nHost: ${u.host}\n\n${respHeaders.trim()}`,
          );
        }
        if (ctx.rep === 1) await verifyBlob(srv.url, ctx.repo, ctx.blob);
        return { value: size / get.seconds / MB, detail: { seconds: get.seconds } };
      } catch (e) {
        return failure(e);
      }
    },
    async cleanupRep(ctx) {
      await rm(ctx.file, { force: true });
    },
  };
  return erase(g);
}

// ---------------------------------------------------------------------------
// skopeo copy between an OCI layout and the registry (client cost included).

interface SkopeoCtx {
  rep: number;
  layout: OciLayout;
  repo: string;
}

function skopeoArgs(src: string, dst: string, tlsFlag: '--src-tls-verify=false' | '--dest-tls-verify=false'): string[] {
  // --preserve-digests: push the uncompressed layer as-is (skopeo would otherwise
  // gzip it for a registry destination) and keep it uncompressed on pull.
  return ['copy', '--quiet', '--preserve-digests', '--retry-times', '0', tlsFlag, src, dst];
}

export function skopeoGroup(cfg: BenchConfig, size: number, minReps?: number): AnyGroup {
  const slug = sizeSlug(size);
  const g: Group<SkopeoCtx> = {
    id: `skopeo-${slug}`,
    ...(minReps !== undefined ? { minReps } : {}),
    metrics: [
      { id: `skopeo-push-${slug}`, title: `skopeo push, ${humanSize(size)} single-layer image`, unit: 'MB/s', trackRss: true },
      { id: `skopeo-pull-${slug}`, title: `skopeo pull, ${humanSize(size)} single-layer image`, unit: 'MB/s', trackRss: true },
    ],
    async prepareRep(rep) {
      const layout = await makeOciLayout(join(cfg.work, `oci-${slug}-r${rep}`), size);
      await syncDisks();
      return { rep, layout, repo: `bench/skopeo-${slug}-r${rep}` };
    },
    async prepareMetric(srv, ctx, metricId) {
      if (metricId.startsWith('skopeo-pull')) {
        const m = await g.measure(srv, ctx, `skopeo-push-${slug}`);
        if (m.value === null) throw new Error(`setup push failed: ${m.error ?? ''}`);
      }
    },
    async measure(srv, ctx, metricId) {
      const host = new URL(srv.url).host;
      const remote = `docker://${host}/${ctx.repo}:bench`;
      const out = join(cfg.work, `pull-${srv.label.replace(/\W/g, '')}`);
      try {
        await rm(out, { recursive: true, force: true });
        await syncDisks();
        const push = metricId.startsWith('skopeo-push');
        const args = push
          ? skopeoArgs(`oci:${ctx.layout.dir}:${ctx.layout.ref}`, remote, '--dest-tls-verify=false')
          : skopeoArgs(remote, `oci:${out}:bench`, '--src-tls-verify=false');
        const r = await run('skopeo', args, { timeoutMs: 900_000 });
        if (r.code !== 0) {
          throw new Error(`skopeo ${args.join(' ')} exited ${String(r.code)} (signal ${String(r.signal)}):\n${r.stderr.slice(-3000)}`);
        }
        if (!push) {
          const st = await stat(join(out, 'blobs', 'sha256', ctx.layout.layer.digest.slice(7))).catch(() => null);
          if (st === null || st.size !== size) throw new Error(`skopeo pull: layer missing or wrong size in ${out}`);
          await rm(out, { recursive: true, force: true });
        }
        return { value: size / r.seconds / MB, detail: { seconds: r.seconds } };
      } catch (e) {
        return failure(e);
      }
    },
    async cleanupRep(ctx) {
      await rm(ctx.layout.dir, { recursive: true, force: true });
    },
  };
  return erase(g);
}

// ---------------------------------------------------------------------------
// Many small blobs, POST + PUT each, with bounded concurrency over keep-alive.

interface SmallCtx {
  rep: number;
  blobs: { data: Buffer; digest: string }[];
  repo: string;
}

export async function pushMany(
  base: string,
  repo: string,
  blobs: readonly { data: Buffer; digest: string }[],
  concurrency: number,
  deadlineMs: number,
): Promise<{ seconds: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const until = Date.now() + deadlineMs;
  let next = 0;
  const t0 = process.hrtime.bigint();
  try {
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next++;
        const b = blobs[i];
        if (b === undefined) return;
        if (Date.now() > until) throw new Error(`small-blob push exceeded ${deadlineMs} ms`);
        await pushBlob(base, repo, b.data, b.digest, agent);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, () => worker()));
  } finally {
    agent.destroy();
  }
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

/** Blobs per batch of the small-blob warm-up: new random blobs each batch, so each push stores a new blob. */
const smallBlobWarmupBatch = 200;

export function smallBlobsGroup(cfg: BenchConfig): AnyGroup {
  const n = cfg.smallBlobCount;
  const warmed = new Set<string>();
  const g: Group<SmallCtx> = {
    id: 'small-blobs',
    // One run takes one to three seconds and varies by ±20% between identical servers.
    minReps: 5,
    metrics: [
      {
        id: 'small-blobs-push',
        title: `Push ${n} × ${humanSize(cfg.smallBlobSize)} blobs, concurrency ${cfg.smallBlobConcurrency} (POST + PUT each)`,
        unit: 'blobs/s',
      },
    ],
    prepareRep(rep) {
      return Promise.resolve({ rep, blobs: randomBlobs(n, cfg.smallBlobSize), repo: `bench/small-r${rep}` });
    },
    prepareMetric() {
      return Promise.resolve();
    },
    async measure(srv, ctx) {
      try {
        if (!warmed.has(srv.url)) {
          // Untimed, to another repository: the first pushes of a process (JIT, caches) are not what
          // is measured. By time as well as by count: after 400 pushes to a fresh Berth, V8 was still
          // optimising functions of this path on its compiler threads for several more seconds
          // (~300 µs of their CPU per push in the first timed run, against ~50 in the later ones).
          const started = Date.now();
          for (let pushed = 0; pushed < cfg.smallBlobWarmup || Date.now() - started < cfg.smallBlobWarmupSeconds * 1000; pushed += smallBlobWarmupBatch) {
            await pushMany(srv.url, 'bench/small-warmup', randomBlobs(smallBlobWarmupBatch, cfg.smallBlobSize), cfg.smallBlobConcurrency, 120_000);
          }
          warmed.add(srv.url);
        }
        await syncDisks();
        const { seconds } = await pushMany(srv.url, ctx.repo, ctx.blobs, cfg.smallBlobConcurrency, 120_000);
        return {
          value: n / seconds,
          detail: { seconds, mbPerSecond: (n * cfg.smallBlobSize) / seconds / MB },
        };
      } catch (e) {
        return failure(e);
      }
    },
    cleanupRep() {
      return Promise.resolve();
    },
  };
  return erase(g);
}

// ---------------------------------------------------------------------------
// Manifest GET / HEAD under load, with wrk.

interface ManifestCtx {
  rep: number;
}

export interface WrkResult {
  requestsPerSecond: number;
  requests: number;
  non2xx: number;
  socketErrors: number;
  p50ms: number | null;
  p99ms: number | null;
  raw: string;
}

function parseLatency(s: string | undefined, unit: string | undefined): number | null {
  if (s === undefined || unit === undefined) return null;
  const v = Number(s);
  const f = unit === 'us' ? 1e-3 : unit === 'ms' ? 1 : unit === 's' ? 1e3 : unit === 'm' ? 6e4 : NaN;
  return Number.isFinite(v * f) ? v * f : null;
}

export function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const total = /(\d+) requests in/.exec(out);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const p50 = /^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(out);
  const sockErr = sock === null ? 0 : sock.slice(1).reduce((a, b) => a + Number(b), 0);
  return {
    requestsPerSecond: rps?.[1] !== undefined ? Number(rps[1]) : NaN,
    requests: total?.[1] !== undefined ? Number(total[1]) : NaN,
    non2xx: non2xx?.[1] !== undefined ? Number(non2xx[1]) : 0,
    socketErrors: sockErr,
    p50ms: parseLatency(p50?.[1], p50?.[2]),
    p99ms: parseLatency(p99?.[1], p99?.[2]),
    raw: out,
  };
}

export const MANIFEST_REPO = 'bench/manifest';
export const MANIFEST_TAG = 'bench';

/** Untimed: a small image whose manifest the wrk runs fetch. */
export async function seedManifest(srv: Server): Promise<Buffer> {
  const layerData = randomBlobs(1, 4096)[0];
  if (layerData === undefined) throw new Error('unreachable');
  await pushBlob(srv.url, MANIFEST_REPO, layerData.data, layerData.digest);
  const img = imageJson({ digest: layerData.digest, size: layerData.data.length }, 'manifest-bench');
  await pushBlob(srv.url, MANIFEST_REPO, img.config.bytes, img.config.ref.digest);
  await putManifest(srv.url, MANIFEST_REPO, MANIFEST_TAG, img.manifest.bytes, MT.manifest);
  return img.manifest.bytes;
}

export async function runWrk(cfg: BenchConfig, srv: Server, seconds: number): Promise<WrkResult> {
  const url = `${srv.url}/v2/${MANIFEST_REPO}/manifests/${MANIFEST_TAG}`;
  const r = await run(
    'wrk',
    [`-t${cfg.wrkThreads}`, `-c${cfg.wrkConnections}`, `-d${seconds}s`, '--timeout', '5s', '--latency', '-H', `Accept: ${MT.manifest}`, url],
    { timeoutMs: (seconds + 30) * 1000 },
  );
  if (r.code !== 0) throw new Error(`wrk exited ${String(r.code)}: ${r.stderr}`);
  return parseWrk(r.stdout);
}

/**
 * HEAD load with bench/loadgen.c (compiled by the driver): Debian's wrk 4.1.0
 * waits for a body after a HEAD response and reports 0 requests.
 */
export async function runLoadgen(cfg: BenchConfig, srv: Server, method: 'GET' | 'HEAD', seconds: number): Promise<WrkResult> {
  const url = `${srv.url}/v2/${MANIFEST_REPO}/manifests/${MANIFEST_TAG}`;
  const j = await loadgen(cfg.loadgen, url, { method, threads: cfg.wrkThreads, connections: cfg.wrkConnections, seconds, headers: [`Accept: ${MT.manifest}`] });
  return { requestsPerSecond: j.rps, requests: j.requests, non2xx: j.non2xx, socketErrors: j.errors, p50ms: j.p50ms, p99ms: j.p99ms, raw: j.raw };
}

export function manifestGroup(cfg: BenchConfig): AnyGroup {
  const seeded = new Set<string>();
  const ensureSeed = async (srv: Server): Promise<void> => {
    if (seeded.has(srv.url)) return;
    await seedManifest(srv);
    // Warm-up (JIT, caches) for both servers alike.
    await runWrk(cfg, srv, 2);
    await runLoadgen(cfg, srv, 'HEAD', 2);
    seeded.add(srv.url);
  };
  const conc = `${cfg.wrkConnections} connections, ${cfg.wrkThreads} threads, ${cfg.wrkSeconds} s`;
  const g: Group<ManifestCtx> = {
    id: 'manifests',
    metrics: [
      { id: 'manifest-get', title: `Manifest GET by tag (wrk, ${conc})`, unit: 'req/s' },
      { id: 'manifest-head', title: `Manifest HEAD by tag (loadgen, ${conc})`, unit: 'req/s' },
    ],
    prepareRep(rep) {
      return Promise.resolve({ rep });
    },
    async prepareMetric(srv) {
      await seedManifest(srv);
      seeded.add(srv.url);
    },
    async measure(srv, _ctx, metricId) {
      try {
        await ensureSeed(srv);
        const method = metricId === 'manifest-head' ? 'HEAD' : 'GET';
        const w = method === 'GET' ? await runWrk(cfg, srv, cfg.wrkSeconds) : await runLoadgen(cfg, srv, 'HEAD', cfg.wrkSeconds);
        if (!Number.isFinite(w.requestsPerSecond)) throw new Error(`could not parse load generator output:\n${w.raw}`);
        if (w.requests === 0) throw new Error(`no request completed in ${cfg.wrkSeconds} s:\n${w.raw}`);
        const detail: Record<string, number | string> = { requests: w.requests, non2xx: w.non2xx, socketErrors: w.socketErrors };
        if (w.p50ms !== null) detail['p50ms'] = w.p50ms;
        if (w.p99ms !== null) detail['p99ms'] = w.p99ms;
        if (w.non2xx > 0 || w.socketErrors > 0) {
          // Show one failing exchange verbatim.
          const res = await request(`${srv.url}/v2/${MANIFEST_REPO}/manifests/${MANIFEST_TAG}`, {
            method,
            headers: { accept: MT.manifest },
          });
          return {
            value: null,
            error: `${method === 'GET' ? 'wrk' : 'loadgen'} saw ${w.non2xx} non-2xx responses and ${w.socketErrors} socket errors of ${w.requests} requests.\n${w.raw}\nA single request now:\n\n${describeExchange(res.exchange)}`,
            detail,
          };
        }
        return { value: w.requestsPerSecond, detail };
      } catch (e) {
        return failure(e);
      }
    },
    cleanupRep() {
      return Promise.resolve();
    },
  };
  return erase(g);
}
