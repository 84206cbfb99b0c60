/**
 * Helpers for the Berth-only auth benchmark (bench/auth.ts): starting Berth with a config file
 * and auth on or off, form and JSON calls to the token service and the management API, pushing a
 * tiny image with a bearer token, and a bounded closed-loop load generator on node:http.
 *
 * Everything talks to 127.0.0.1 only. Every load loop stops at a request count or a deadline,
 * whichever comes first; every request has its own timeout.
 */
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { Agent } from 'node:http';
import type { OutgoingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { randomBlobs } from './fixtures.js';
import { imageJson, MT } from './fixtures.js';
import { describeExchange, ProtocolError, request, withDigest } from './registry.js';
import type { Exchange } from './registry.js';
import { berthEnv, berthNodeFlags, type Server } from './servers.js';
import { freePort, log, serverDataDir, sleep, spawnDaemon } from './util.js';

// ---------------------------------------------------------------------------
// Berth as a real process, with a config file.

export interface BerthStart {
  label: string;
  parent: string;
  slug: string;
  repoRoot: string;
  /** Written as JSON (a YAML subset) to `<parent>/<slug>-config.json`. */
  config: Record<string, unknown>;
  /** Extra environment, e.g. BERTH_AUTH_ENABLED=false. */
  env?: Record<string, string>;
  nodeFlags?: readonly string[];
}

async function listeningUrl(logPath: string, fromByte: number, deadlineMs: number, exited: () => boolean): Promise<string> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until && !exited()) {
    const text = (await readFile(logPath).catch(() => Buffer.alloc(0))).subarray(fromByte).toString('utf8');
    for (const line of text.split('\n')) {
      if (!line.includes('"msg":"listening"')) continue;
      const m = /"url":"(http:\/\/[^"]+)"/.exec(line);
      if (m?.[1] !== undefined) return m[1].replace(/\/$/, '');
    }
    await sleep(50);
  }
  const tail = (await readFile(logPath, 'utf8').catch(() => '')).slice(-3000);
  throw new Error(`Berth did not print a "listening" line within ${deadlineMs} ms${exited() ? ' (it exited)' : ''}. Log tail:\n${tail}`);
}

/** Starts `<berthEnv> node <berthNodeFlags> dist/bin/berth.js serve --addr 127.0.0.1:<port> --data <dir> --config <file>`. */
export async function startBerth(opts: BerthStart): Promise<Server> {
  const port = await freePort();
  const dataDir = serverDataDir(opts.parent, opts.slug);
  await mkdir(dataDir, { recursive: true });
  const cfgPath = join(opts.parent, `${opts.slug}-config.json`);
  await writeFile(cfgPath, `${JSON.stringify(opts.config, null, 2)}\n`, { mode: 0o600 });
  const logPath = join(opts.parent, `${opts.slug}.log`);
  const fromByte = await stat(logPath)
    .then((st) => st.size)
    .catch(() => 0);
  const fd = openSync(logPath, 'a');
  const bin = join(opts.repoRoot, 'dist', 'bin', 'berth.js');
  const child = spawnDaemon(
    process.execPath,
    [...berthNodeFlags, ...(opts.nodeFlags ?? []), bin, 'serve', '--addr', `127.0.0.1:${port}`, '--data', dataDir, '--config', cfgPath],
    fd,
    { ...process.env, ...berthEnv, ...(opts.env ?? {}) },
  );
  closeSync(fd);
  let hasExited = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      hasExited = true;
      resolve({ code, signal });
    });
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start Berth');
  let url = `http://127.0.0.1:${port}`;
  try {
    const announced = await listeningUrl(logPath, fromByte, 60_000, () => hasExited);
    if (announced !== url) {
      log(`note: Berth announced ${announced}, expected ${url}; using the announced URL`);
      url = announced;
    }
    // Auth on answers /v2/ with 401 and a challenge, auth off with 200: either means "serving".
    const until = Date.now() + 30_000;
    for (;;) {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2000) }).catch(() => null);
      if (res !== null) await res.arrayBuffer();
      if (res !== null && (res.status === 200 || res.status === 401)) break;
      if (Date.now() > until) throw new Error(`${url}/v2/ not ready after 30 s`);
      await sleep(100);
    }
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  log(`${opts.label} ready at ${url}, pid ${pid}`);
  return { kind: 'berth', label: opts.label, url, port, pid, dataDir, logPath, child, exited };
}

/**
 * SIGTERM, then SIGKILL after `graceMs`. Like servers.ts's stopServer, but clears its grace timer,
 * so the driver exits as soon as it is done instead of 15 s later.
 */
export async function stopBerth(srv: Server, graceMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }> {
  if (srv.child.exitCode !== null || srv.child.signalCode !== null) return { ...(await srv.exited), killed: false };
  srv.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<'timeout'>((ok) => {
    timer = setTimeout(() => ok('timeout'), graceMs);
  });
  const r = await Promise.race([srv.exited, grace]);
  clearTimeout(timer);
  if (r === 'timeout') {
    srv.child.kill('SIGKILL');
    return { ...(await srv.exited), killed: true };
  }
  return { ...r, killed: false };
}

/** User + system CPU time of a process so far, in ms (from /proc/<pid>/stat; `ticksPerSecond` = CLK_TCK). */
export async function cpuMs(pid: number, ticksPerSecond: number): Promise<number | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return null;
  // Fields after the ")" that ends the command name: state is field 3, utime 14, stime 15.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]);
  return Number.isFinite(ticks) ? (ticks * 1000) / ticksPerSecond : null;
}

// ---------------------------------------------------------------------------
// Calls.

export function keepAliveAgent(maxSockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
}

export type Form = Record<string, string>;

export function formBody(form: Form): Buffer {
  return Buffer.from(new URLSearchParams(form).toString());
}

export interface Call {
  status: number;
  json: Record<string, unknown> | null;
  exchange: Exchange;
}

function parseJson(body: Buffer): Record<string, unknown> | null {
  if (body.length === 0) return null;
  try {
    const v = JSON.parse(body.toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export async function postForm(base: string, path: string, form: Form, agent?: Agent, headers: OutgoingHttpHeaders = {}): Promise<Call> {
  const res = await request(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: formBody(form),
    timeoutMs: 15_000,
    ...(agent !== undefined ? { agent } : {}),
  });
  return { status: res.status, json: parseJson(res.body), exchange: res.exchange };
}

export async function callJson(base: string, method: string, path: string, token: string, body?: unknown): Promise<Call> {
  const res = await request(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: Buffer.from(JSON.stringify(body)) } : {}),
    timeoutMs: 15_000,
  });
  return { status: res.status, json: parseJson(res.body), exchange: res.exchange };
}

/** Throws a ProtocolError quoting the exchange unless `status` is `want`. */
export function expect(call: Call, want: number, what: string): Record<string, unknown> {
  if (call.status !== want || call.json === null) {
    throw new ProtocolError(`${what}: expected HTTP ${want} with a JSON body, got ${call.status}`, call.exchange);
  }
  return call.json;
}

export function str(obj: Record<string, unknown>, key: string, what: string, exchange: Exchange): string {
  const v = obj[key];
  if (typeof v !== 'string' || v === '') throw new ProtocolError(`${what}: no "${key}" in the answer`, exchange);
  return v;
}

/** An access token from the password grant (POST /oauth2/token). */
export async function passwordToken(
  base: string,
  username: string,
  password: string,
  scope: string,
  offline = false,
): Promise<{ token: string; refresh?: string }> {
  const form: Form = { grant_type: 'password', username, password, service: 'berth', scope };
  if (offline) form['access_type'] = 'offline';
  const call = await postForm(base, '/oauth2/token', form);
  const body = expect(call, 200, `password grant for ${username} (${scope})`);
  const token = str(body, 'token', 'password grant', call.exchange);
  const refresh = body['refresh_token'];
  return typeof refresh === 'string' ? { token, refresh } : { token };
}

// ---------------------------------------------------------------------------
// A tiny image (config + one 4 KiB layer + manifest), pushed with a bearer token.

export interface TinyImage {
  layer: { data: Buffer; digest: string };
  config: { data: Buffer; digest: string };
  manifest: { data: Buffer; digest: string };
}

export function tinyImage(nonce: string): TinyImage {
  const layer = randomBlobs(1, 4096)[0];
  if (layer === undefined) throw new Error('unreachable');
  const img = imageJson({ digest: layer.digest, size: layer.data.length }, nonce);
  return {
    layer: { data: layer.data, digest: layer.digest },
    config: { data: img.config.bytes, digest: img.config.ref.digest },
    manifest: { data: img.manifest.bytes, digest: img.manifest.ref.digest },
  };
}

export async function pushImage(base: string, repo: string, tag: string, img: TinyImage, token: string | null): Promise<void> {
  const auth: OutgoingHttpHeaders = token === null ? {} : { authorization: `Bearer ${token}` };
  for (const blob of [img.layer, img.config]) {
    const start = await request(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { ...auth, 'content-length': 0 }, timeoutMs: 15_000 });
    const loc = start.headers['location'];
    if (start.status !== 202 || typeof loc !== 'string')
      throw new ProtocolError(`start blob upload: expected 202 with Location, got ${start.status}`, start.exchange);
    const put = await request(withDigest(base, new URL(loc, base).toString(), blob.digest), {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: blob.data,
      timeoutMs: 15_000,
    });
    if (put.status !== 201) throw new ProtocolError(`complete blob upload: expected 201, got ${put.status}`, put.exchange);
  }
  const res = await request(`${base}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { ...auth, 'content-type': MT.manifest },
    body: img.manifest.data,
    timeoutMs: 15_000,
  });
  if (res.status !== 201) throw new ProtocolError(`PUT manifest: expected 201, got ${res.status}`, res.exchange);
}

// ---------------------------------------------------------------------------
// Closed-loop load: `concurrency` workers, each sends its next request when the last one answers.

export interface LoadResult {
  /** Requests answered as expected. */
  ok: number;
  failed: number;
  seconds: number;
  perSecond: number;
  p50ms: number | null;
  p99ms: number | null;
  /** The first unexpected answer (or transport error), verbatim. */
  firstFailure?: string;
}

export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? null;
}

/**
 * Runs `one(i)` for i = 0, 1, … with `concurrency` in flight, until `maxRequests` were started or
 * `maxMs` passed. `one` resolves to null when the answer was right, else to a description of it.
 */
export async function loadLoop(opts: {
  concurrency: number;
  maxRequests: number;
  maxMs: number;
  one: (i: number) => Promise<string | null>;
}): Promise<LoadResult> {
  const lat: number[] = [];
  let next = 0;
  let ok = 0;
  let failed = 0;
  let firstFailure: string | undefined;
  const t0 = process.hrtime.bigint();
  const deadline = Date.now() + opts.maxMs;
  const worker = async (): Promise<void> => {
    while (next < opts.maxRequests && Date.now() < deadline) {
      const i = next++;
      const s = process.hrtime.bigint();
      let problem: string | null;
      try {
        problem = await opts.one(i);
      } catch (e) {
        problem =
          e instanceof ProtocolError && e.exchange !== null ? `${e.message}\n\n${describeExchange(e.exchange)}` : e instanceof Error ? e.message : String(e);
      }
      const ms = Number(process.hrtime.bigint() - s) / 1e6;
      if (problem === null) {
        ok++;
        lat.push(ms);
      } else {
        failed++;
        firstFailure ??= problem;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, () => worker()));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort((a, b) => a - b);
  return {
    ok,
    failed,
    seconds,
    perSecond: seconds > 0 ? ok / seconds : 0,
    p50ms: percentile(lat, 50),
    p99ms: percentile(lat, 99),
    ...(firstFailure !== undefined ? { firstFailure } : {}),
  };
}

/** For `one`: null if the call answered `want` with `key` in its JSON, else the exchange verbatim. */
export function judge(call: Call, want: number, key: string): string | null {
  if (call.status === want && call.json !== null && typeof call.json[key] === 'string') return null;
  return `expected HTTP ${want} with "${key}", got ${call.status}\n\n${describeExchange(call.exchange)}`;
}
