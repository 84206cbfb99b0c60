/**
 * Berth-only auth benchmark: token issuance (password, refresh, federated client_credentials,
 * the ACR exchange with an OIDC token) and manifest GET with auth on vs off.
 *
 *   node --import tsx bench/auth.ts [options]      (normally via `npm run bench`, after bench/run.ts)
 *
 * It accepts the same options as bench/run.ts (scripts/bench.sh passes it the same arguments) and
 * uses these:
 *   --quick                 shorter loops and wrk runs, 1 wrk run per side
 *   --reps N                wrk runs per side (default 3)
 *   --wrk-seconds N         duration of each wrk run (default 10; 2 with --quick)
 *   --profile 0             never profile (otherwise: auth-on manifest GET under `node --cpu-prof`
 *                           when it reaches less than 0.8x of auth off; BENCH_AUTH_PROFILE=1 forces it)
 *   --doc PATH              the Markdown file to put the section in
 *   --only …                which doc: `--only auth` alone writes docs/benchmarks.md, a mix
 *                           (`--only raw,auth`) the partial doc the main run just wrote
 *   --keep                  keep the temporary data directory
 *   --report-only FILE      re-insert the last auth section (bench/results/auth-latest.json) into the
 *                           doc that bench/run.ts --report-only FILE just rewrote
 *   --candidate distribution  (self-test) nothing to do
 *
 * Writes the section between `<!-- auth-bench:start -->` and `<!-- auth-bench:end -->` and
 * bench/results/auth-<stamp>.json + auth-latest.json (`partial-` prefix with --quick).
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startOidcIssuer } from '../test/support/oidc-issuer.js';
import type { OidcIssuer } from '../test/support/oidc-issuer.js';
import {
  callJson,
  cpuMs,
  expect,
  judge,
  keepAliveAgent,
  loadLoop,
  passwordToken,
  postForm,
  pushImage,
  startBerth,
  stopBerth,
  tinyImage,
} from './lib/auth-lib.js';
import type { Form, LoadResult } from './lib/auth-lib.js';
import { insertSection, problemBlock, PROFILE_BELOW, renderAuthSection } from './lib/auth-report.js';
import { buildLoadgen, runLoadgen } from './lib/loadgen.js';
import type { AuthResults, AuthRow, LoadRecord, WrkRecord } from './lib/auth-report.js';
import { MT } from './lib/fixtures.js';
import { machineInfo } from './lib/machine.js';
import { summarizeProfile } from './lib/profile.js';
import { describeExchange, ProtocolError, request } from './lib/registry.js';
import { parseWrk } from './lib/scenarios.js';
import type { WrkResult } from './lib/scenarios.js';
import type { Server } from './lib/servers.js';
import { fmtNum, log, median, run, syncDisks, sectionTempDir } from './lib/util.js';
import { parseBenchOptions } from './lib/options.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const resultsDir = join(repoRoot, 'bench', 'results');

const opt = parseBenchOptions();

const MANIFEST_REPO = 'bench/manifest';
const MANIFEST_TAG = 'bench';
const TOKEN_SCOPE = 'repository:bench/app:pull';
const CLIENT_ID = 'bench-ci';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

const started: Server[] = [];
let issuer: OidcIssuer | null = null;
let parentDir: string | null = null;

async function emergencyCleanup(): Promise<void> {
  for (const s of started) s.child.kill('SIGKILL');
  started.length = 0;
  await issuer?.stop().catch(() => undefined);
  issuer = null;
  if (parentDir !== null && opt.keep !== true) await rm(parentDir, { recursive: true, force: true }).catch(() => undefined);
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping servers and removing temporary data`);
    void emergencyCleanup().finally(() => process.exit(130));
  });
}

/** Which Markdown file the section goes in: the one bench/run.ts just wrote, or docs/benchmarks.md for `--only auth`. */
function docPath(partial: boolean): string {
  if (opt.doc !== undefined) return resolve(opt.doc);
  return partial ? join(resultsDir, 'benchmarks-partial.md') : join(repoRoot, 'docs', 'benchmarks.md');
}

function onlyGroups(): string[] | undefined {
  return opt.only
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** `--report-only FILE`: put the last auth section back into the doc bench/run.ts just re-rendered. */
async function reinsert(file: string): Promise<void> {
  const main = JSON.parse(await readFile(file, 'utf8')) as { selfTest?: boolean; mode?: string; partial?: boolean };
  if (main.selfTest === true) {
    log('auth: self-test results; no auth section');
    return;
  }
  const partial = main.mode === 'quick' || main.partial === true;
  const candidates = partial ? ['partial-auth-latest.json', 'auth-latest.json'] : ['auth-latest.json'];
  for (const name of candidates) {
    const text = await readFile(join(resultsDir, name), 'utf8').catch(() => null);
    if (text === null) continue;
    const doc = docPath(partial);
    await insertSection(doc, renderAuthSection(JSON.parse(text) as AuthResults));
    log(`auth: re-inserted the section from bench/results/${name} into ${relative(repoRoot, doc)}`);
    return;
  }
  log('auth: no earlier auth results in bench/results; nothing to re-insert');
}

function loadRecord(id: string, r: LoadResult): LoadRecord {
  return {
    id,
    ok: r.ok,
    failed: r.failed,
    seconds: r.seconds,
    perSecond: r.perSecond,
    p50ms: r.p50ms,
    p99ms: r.p99ms,
    ...(r.firstFailure !== undefined ? { firstFailure: r.firstFailure } : {}),
  };
}

async function runWrk(url: string, token: string | null, threads: number, connections: number, seconds: number): Promise<WrkResult> {
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '--latency', '-H', `Accept: ${MT.manifest}`];
  if (token !== null) args.push('-H', `Authorization: Bearer ${token}`);
  args.push(`${url}/v2/${MANIFEST_REPO}/manifests/${MANIFEST_TAG}`);
  const r = await run('wrk', args, { timeoutMs: (seconds + 30) * 1000 });
  if (r.code !== 0) throw new Error(`wrk exited ${String(r.code)}: ${r.stderr}`);
  return parseWrk(r.stdout);
}

async function main(): Promise<void> {
  if (opt['report-only'] !== undefined) {
    await reinsert(opt['report-only']);
    return;
  }
  if (opt.candidate !== 'berth') {
    log('auth: self-test (--candidate distribution): the auth bench is Berth only; skipped');
    return;
  }
  const t0 = Date.now();
  const startedAt = new Date().toISOString();
  const quick = opt.quick === true;
  const only = onlyGroups();
  const partialDoc = quick || opt.reps !== undefined || (only !== undefined && only.some((g) => g !== 'auth'));
  const wrkReps = Number(opt.reps ?? (quick ? 1 : 3));
  const wrkSeconds = Number(opt['wrk-seconds'] ?? (quick ? 2 : 10));
  if (!Number.isInteger(wrkReps) || wrkReps < 1 || wrkReps > 9) throw new Error('--reps must be 1..9');
  if (!Number.isFinite(wrkSeconds) || wrkSeconds < 1 || wrkSeconds > 120) throw new Error('--wrk-seconds must be 1..120');
  const cfg = {
    tokenConcurrency: 8,
    tokenMaxRequests: quick ? 400 : 2000,
    /** Timed runs per token row (after its warm-up), the rows taking turns; the median run by rate is reported. */
    tokenRuns: quick ? 1 : 5,
    tokenMaxSeconds: quick ? 1.5 : 5,
    /**
     * Untimed requests before each token row's runs. A fresh process keeps optimizing the token
     * endpoint's code for its first ~10,000 federated grants (V8's optimized functions: 586 after
     * 3,000 grants, 786 after 9,000, 800 after 15,000, the rate rising from ~1,200 to ~2,300/s),
     * and a registry serves its token endpoint for days: the rows describe that steady state.
     */
    warmupRequests: quick ? 50 : 8000,
    warmupSeconds: quick ? 2 : 12,
    coldLogins: quick ? 2 : 5,
    /** Distinct access tokens for the no-cache manifest GET loop (split among the repetitions). */
    freshTokens: quick ? 400 : 45000,
    /**
     * Further fresh tokens, used once each in an untimed warm-up: without it the first-time check's
     * code is optimised by V8 only while the first timed repetition runs (the warm-up above uses one token).
     */
    freshWarmup: quick ? 100 : 5000,
    freshReps: quick ? 1 : 3,
    wrkThreads: 2,
    wrkConnections: 32,
    wrkSeconds,
    wrkReps,
  };

  // Hard stop for the whole auth run, whatever happens.
  const watchdog = setTimeout(() => {
    log('auth: watchdog: the auth benchmark exceeded 10 minutes; aborting');
    void emergencyCleanup().finally(() => process.exit(3));
  }, 10 * 60_000);
  watchdog.unref();

  parentDir = await sectionTempDir('berth-bench-auth-');
  await mkdir(resultsDir, { recursive: true });
  log(`auth: temporary data under ${parentDir}`);
  const mi = await machineInfo(repoRoot, parentDir);
  const problems: string[] = [];

  issuer = await startOidcIssuer();
  const iss = issuer;
  const ownerName = 'bench-owner';
  const ownerPassword = randomBytes(18).toString('base64url');
  const baseConfig = {
    auth: { bootstrap: { user: ownerName, password: ownerPassword } },
    federation: { issuers: [{ issuer: iss.issuer, allowInsecureLoopback: true, allowPrivateNetwork: true }] },
  };
  const on = await startBerth({ label: 'Berth (auth on)', parent: parentDir, slug: 'berth-auth-on', repoRoot, config: baseConfig });
  started.push(on);
  const off = await startBerth({
    label: 'Berth (auth off)',
    parent: parentDir,
    slug: 'berth-auth-off',
    repoRoot,
    config: baseConfig,
    env: { BERTH_AUTH_ENABLED: 'false' },
  });
  started.push(off);

  // ---- setup through the management API
  const owner = (await passwordToken(on.url, ownerName, ownerPassword, 'registry:admin:*')).token;
  const api = async (method: string, path: string, body: unknown, want: number, what: string): Promise<Record<string, unknown>> => {
    const call = await callJson(on.url, method, `/api/v1${path}`, owner, body);
    return expect(call, want, what);
  };
  const secretOf = (created: Record<string, unknown>, what: string): string => {
    const s = created['secret'];
    const v = typeof s === 'object' && s !== null ? (s as Record<string, unknown>)['value'] : undefined;
    if (typeof v !== 'string' || v === '') throw new Error(`${what}: no secret.value in ${JSON.stringify(created).slice(0, 500)}`);
    return v;
  };
  const grants = [{ pattern: 'bench/**', permission: 'push' }];
  const userPassword = secretOf(await api('POST', '/principals', { kind: 'user', name: 'bench-user', grants }, 201, 'create user bench-user'), 'bench-user');
  const cold: Array<{ name: string; password: string }> = [];
  for (let i = 1; i <= cfg.coldLogins; i++) {
    const name = `bench-cold-${i}`;
    cold.push({
      name,
      password: secretOf(
        await api('POST', '/principals', { kind: 'user', name, grants: [{ pattern: 'bench/**', permission: 'pull' }] }, 201, `create user ${name}`),
        name,
      ),
    });
  }
  await api('POST', '/principals', { kind: 'service', name: CLIENT_ID, grants }, 201, `create service ${CLIENT_ID}`);
  await api(
    'POST',
    `/principals/${CLIENT_ID}/federated-credentials`,
    { name: 'github', issuer: iss.issuer, audiences: ['berth'], subject: 'repo:acme/app:*' },
    201,
    'create federated credential',
  );
  log('auth: principals and federated credential created');

  // ---- cold logins: the first login of fresh users, one at a time (a real scrypt verification each)
  const coldMs: number[] = [];
  for (const u of cold) {
    const s = process.hrtime.bigint();
    const call = await postForm(on.url, '/oauth2/token', {
      grant_type: 'password',
      username: u.name,
      password: u.password,
      service: 'berth',
      scope: TOKEN_SCOPE,
    });
    const ms = Number(process.hrtime.bigint() - s) / 1e6;
    const bad = judge(call, 200, 'token');
    if (bad !== null) problems.push(problemBlock(`Cold password login of ${u.name}`, bad));
    else coldMs.push(ms);
  }
  log(`auth: cold logins: ${coldMs.map((x) => x.toFixed(1)).join(', ')} ms`);

  // ---- token loops
  const agent = keepAliveAgent(cfg.tokenConcurrency);
  const refresh = (await passwordToken(on.url, 'bench-user', userPassword, TOKEN_SCOPE, true)).refresh;
  if (refresh === undefined) throw new Error('the password grant with access_type=offline returned no refresh_token');

  const poolSize = cfg.tokenRuns * cfg.tokenMaxRequests + cfg.warmupRequests;
  const mintPool = async (): Promise<string[]> => {
    const out: string[] = [];
    const until = Date.now() + 60_000;
    while (out.length < poolSize) {
      if (Date.now() > until) throw new Error(`minting ${poolSize} OIDC tokens took over 60 s`);
      const batch = await Promise.all(
        Array.from({ length: Math.min(64, poolSize - out.length) }, () => iss.github({ repository: 'acme/app', audience: 'berth' }, { expiresIn: 900 })),
      );
      out.push(...batch);
    }
    return out;
  };
  const m0 = Date.now();
  const assertions = await mintPool();
  const exchangeTokens = await mintPool();
  log(`auth: minted ${assertions.length + exchangeTokens.length} OIDC tokens in ${((Date.now() - m0) / 1000).toFixed(1)} s (not measured)`);

  interface Scenario {
    id: string;
    title: string;
    latencyTitle: string;
    unit: string;
    what: string;
    form: (i: number) => Form;
    path: string;
    key: string;
  }
  const scenarios: Scenario[] = [
    {
      id: 'password',
      title: 'Password grant (`POST /oauth2/token` `grant_type=password`), cached secret verification',
      latencyTitle: 'Password grant latency, p50 / p99',
      unit: 'tokens/s',
      what: 'access tokens',
      path: '/oauth2/token',
      key: 'token',
      form: () => ({ grant_type: 'password', username: 'bench-user', password: userPassword, service: 'berth', scope: TOKEN_SCOPE }),
    },
    {
      id: 'refresh',
      title: 'Refresh-token grant (`grant_type=refresh_token`)',
      latencyTitle: 'Refresh-token grant latency, p50 / p99',
      unit: 'tokens/s',
      what: 'access tokens',
      path: '/oauth2/token',
      key: 'token',
      form: () => ({ grant_type: 'refresh_token', refresh_token: refresh, service: 'berth', scope: TOKEN_SCOPE }),
    },
    {
      id: 'client-credentials',
      title: 'Federated: `grant_type=client_credentials` with a GitHub-shaped OIDC JWT as client assertion',
      latencyTitle: 'Federated client_credentials latency, p50 / p99',
      unit: 'tokens/s',
      what: 'access tokens',
      path: '/oauth2/token',
      key: 'token',
      form: (i) => ({
        grant_type: 'client_credentials',
        client_id: CLIENT_ID,
        client_assertion_type: JWT_BEARER,
        client_assertion: assertions[i] ?? '',
        service: 'berth',
        scope: TOKEN_SCOPE,
      }),
    },
    {
      id: 'exchange',
      title: 'Federated: `POST /oauth2/exchange` with the OIDC JWT (`grant_type=access_token`)',
      latencyTitle: 'Federated exchange latency, p50 / p99',
      unit: 'exchanges/s',
      what: 'refresh tokens',
      path: '/oauth2/exchange',
      key: 'refresh_token',
      form: (i) => ({ grant_type: 'access_token', access_token: exchangeTokens[i] ?? '', client_id: CLIENT_ID, service: 'berth' }),
    },
  ];

  const rows: AuthRow[] = [];
  const loads: LoadRecord[] = [];
  const fmtMs = (v: number | null): string => (v === null ? 'n/a' : fmtNum(v, v < 10 ? 2 : 1));
  // Warm-ups first, each the same request as its row (for the password grant this includes
  // bench-user's cold first login). Federated tokens are consumed in order: the warm-up uses the
  // tail of the pool, the timed runs the head.
  const warmups = new Map<string, LoadResult>();
  for (const sc of scenarios) {
    const warm = await loadLoop({
      concurrency: cfg.tokenConcurrency,
      maxRequests: cfg.warmupRequests,
      maxMs: cfg.warmupSeconds * 1000,
      one: async (i) => judge(await postForm(on.url, sc.path, sc.form(cfg.tokenRuns * cfg.tokenMaxRequests + i), agent), 200, sc.key),
    });
    if (warm.failed > 0) log(`auth: ${sc.id}: ${warm.failed} warm-up requests failed`);
    log(`auth: ${sc.id.padEnd(19)} warm-up: ${warm.ok + warm.failed} requests at ${warm.perSecond.toFixed(1)} ${sc.unit}`);
    warmups.set(sc.id, warm);
  }
  // Several short runs per row, the median reported: one run of 2,000 requests lasts under a
  // second, short enough for one pause of this VM to move its rate and p99 by a third. The rows
  // take turns (round r runs every row once), so a slow minute of the machine falls on all rows
  // alike instead of on whichever row's runs it happened to hit.
  const runsOf = new Map<string, LoadResult[]>(scenarios.map((sc) => [sc.id, []]));
  for (let run = 0; run < cfg.tokenRuns; run++) {
    for (const sc of scenarios) {
      const offset = run * cfg.tokenMaxRequests;
      // Every grant writes (a refresh token row, audit entries): start each run with no writeback
      // of earlier work pending (the main section before this one writes gigabytes).
      await syncDisks();
      const one = await loadLoop({
        concurrency: cfg.tokenConcurrency,
        maxRequests: cfg.tokenMaxRequests,
        maxMs: cfg.tokenMaxSeconds * 1000,
        one: async (i) => judge(await postForm(on.url, sc.path, sc.form(offset + i), agent), 200, sc.key),
      });
      runsOf.get(sc.id)?.push(one);
      log(
        `auth: ${sc.id.padEnd(19)} run ${run + 1}: ${one.perSecond.toFixed(1)} ${sc.unit} (${one.ok} ok, ${one.failed} failed in ${one.seconds.toFixed(2)} s), p50 ${fmtMs(one.p50ms)} ms, p99 ${fmtMs(one.p99ms)} ms`,
      );
    }
  }
  for (const sc of scenarios) {
    const runs = runsOf.get(sc.id) ?? [];
    const warm = warmups.get(sc.id) as LoadResult;
    const byRate = [...runs].sort((a, b) => a.perSecond - b.perSecond);
    const r = byRate[Math.floor((byRate.length - 1) / 2)] as LoadResult;
    loads.push(loadRecord(sc.id, r));
    const failedRun = runs.find((run) => run.failed > 0 || run.ok === 0);
    const failed = failedRun !== undefined;
    if (failedRun?.firstFailure !== undefined)
      problems.push(problemBlock(`${sc.title}: ${failedRun.failed} of ${failedRun.ok + failedRun.failed} requests failed; the first`, failedRun.firstFailure));
    const others = runs.length > 1 ? `; runs: ${runs.map((run) => fmtNum(run.perSecond, 0)).join(', ')}` : '';
    rows.push({
      id: `${sc.id}-rate`,
      title: sc.title,
      value: failed ? 'failed' : fmtNum(r.perSecond, 0),
      number: failed ? null : r.perSecond,
      unit: sc.unit,
      notes: `median of ${runs.length} run${runs.length === 1 ? '' : 's'} of ${fmtNum(cfg.tokenMaxRequests, 0)} ${sc.what}, ${cfg.tokenConcurrency} in flight${others}; after an untimed warm-up of ${fmtNum(warm.ok + warm.failed, 0)} at ${fmtNum(warm.perSecond, 0)}/s${failed ? '; **requests failed**' : ''}`,
    });
    rows.push({
      id: `${sc.id}-latency`,
      title: sc.latencyTitle,
      value: failed ? 'failed' : `${fmtMs(r.p50ms)} / ${fmtMs(r.p99ms)}`,
      number: failed ? null : r.p50ms,
      unit: 'ms',
      notes: `the median run, ${cfg.tokenConcurrency} in flight${runs.length > 1 ? `; p99 of the runs: ${runs.map((run) => fmtMs(run.p99ms)).join(', ')} ms` : ''}`,
    });
    if (sc.id === 'password') {
      const med = median(coldMs);
      rows.push({
        id: 'password-cold',
        title: 'Password grant, cold: first login of a fresh user (scrypt verification)',
        value: med === null ? 'failed' : fmtMs(med),
        number: med,
        unit: 'ms',
        notes:
          coldMs.length === 0
            ? 'every cold login failed'
            : `median of ${coldMs.length} first logins of fresh users, one at a time (${coldMs.map((x) => fmtNum(x, 1)).join(', ')} ms); the cached row above skips scrypt`,
      });
    }
  }
  agent.destroy();

  // ---- manifest GET with auth on vs off
  const img = tinyImage('auth-bench');
  const pushToken = (await passwordToken(on.url, 'bench-user', userPassword, `repository:${MANIFEST_REPO}:pull,push`)).token;
  await pushImage(on.url, MANIFEST_REPO, MANIFEST_TAG, img, pushToken);
  await pushImage(off.url, MANIFEST_REPO, MANIFEST_TAG, img, null);
  const pullToken = async (srv: Server): Promise<string> =>
    (await passwordToken(srv.url, 'bench-user', userPassword, `repository:${MANIFEST_REPO}:pull`)).token;
  // Untimed check: the token works, and auth really is on (no token: 401) and off (no token: 200).
  {
    const tok = await pullToken(on);
    const withTok = await request(`${on.url}/v2/${MANIFEST_REPO}/manifests/${MANIFEST_TAG}`, {
      method: 'GET',
      headers: { accept: MT.manifest, authorization: `Bearer ${tok}` },
    });
    if (withTok.status !== 200 || !withTok.body.equals(img.manifest.data))
      throw new ProtocolError(`auth on: manifest GET with a pull token: expected 200 and the pushed bytes, got ${withTok.status}`, withTok.exchange);
    const noTok = await request(`${on.url}/v2/${MANIFEST_REPO}/manifests/${MANIFEST_TAG}`, { method: 'GET', headers: { accept: MT.manifest } });
    if (noTok.status !== 401) throw new ProtocolError(`auth on: manifest GET without a token: expected 401, got ${noTok.status}`, noTok.exchange);
    const offRes = await request(`${off.url}/v2/${MANIFEST_REPO}/manifests/${MANIFEST_TAG}`, { method: 'GET', headers: { accept: MT.manifest } });
    if (offRes.status !== 200 || !offRes.body.equals(img.manifest.data))
      throw new ProtocolError(`auth off: manifest GET: expected 200 and the pushed bytes, got ${offRes.status}`, offRes.exchange);
  }
  const tck = Number((await run('getconf', ['CLK_TCK'], { timeoutMs: 10_000 })).stdout.trim());
  const ticksPerSecond = Number.isInteger(tck) && tck > 0 ? tck : 100;
  const wrkOnce = async (side: 'on' | 'off', rep: number, seconds: number): Promise<WrkRecord> => {
    const srv = side === 'on' ? on : off;
    const token = side === 'on' ? await pullToken(on) : null;
    try {
      const c0 = await cpuMs(srv.pid, ticksPerSecond);
      const w = await runWrk(srv.url, token, cfg.wrkThreads, cfg.wrkConnections, seconds);
      const c1 = await cpuMs(srv.pid, ticksPerSecond);
      const rec: WrkRecord = {
        side,
        rep,
        requestsPerSecond: Number.isFinite(w.requestsPerSecond) ? w.requestsPerSecond : null,
        requests: w.requests,
        non2xx: w.non2xx,
        socketErrors: w.socketErrors,
        p50ms: w.p50ms,
        p99ms: w.p99ms,
      };
      if (c0 !== null && c1 !== null && w.requests > 0) rec.serverCpuUsPerRequest = ((c1 - c0) * 1000) / w.requests;
      if (w.non2xx > 0 || w.socketErrors > 0 || rec.requestsPerSecond === null || w.requests === 0) {
        const one = await request(`${srv.url}/v2/${MANIFEST_REPO}/manifests/${MANIFEST_TAG}`, {
          method: 'GET',
          headers: { accept: MT.manifest, ...(token !== null ? { authorization: `Bearer ${token}` } : {}) },
        });
        rec.requestsPerSecond = null;
        rec.error = `wrk saw ${w.non2xx} non-2xx responses and ${w.socketErrors} socket errors of ${w.requests} requests.\n${w.raw}\nA single request now:\n\n${describeExchange(one.exchange)}`;
      }
      return rec;
    } catch (e) {
      return {
        side,
        rep,
        requestsPerSecond: null,
        requests: 0,
        non2xx: 0,
        socketErrors: 0,
        p50ms: null,
        p99ms: null,
        error: e instanceof Error ? e.message : String(e),
      };
    }
  };
  log('auth: wrk warm-up (2 s each)');
  await wrkOnce('off', 0, 2);
  await wrkOnce('on', 0, 2);
  const wrk: WrkRecord[] = [];
  for (let rep = 1; rep <= cfg.wrkReps; rep++) {
    const order: Array<'on' | 'off'> = rep % 2 === 1 ? ['off', 'on'] : ['on', 'off'];
    for (const side of order) {
      const rec = await wrkOnce(side, rep, cfg.wrkSeconds);
      wrk.push(rec);
      log(
        `auth: manifest GET auth ${side.padEnd(3)} rep ${rep}: ${rec.requestsPerSecond === null ? `FAILED: ${(rec.error ?? '').split('\n')[0] ?? ''}` : `${rec.requestsPerSecond.toFixed(0)} req/s`}`,
      );
      if (rec.error !== undefined) problems.push(problemBlock(`Manifest GET, auth ${side}, run ${rep}`, rec.error));
    }
  }
  const sideMedian = (side: 'on' | 'off'): number | null => {
    const rs = wrk.filter((w) => w.side === side);
    if (rs.some((w) => w.requestsPerSecond === null)) return null;
    return median(rs.map((w) => w.requestsPerSecond ?? 0));
  };
  const rpsOff = sideMedian('off');
  const rpsOn = sideMedian('on');
  const ratio = rpsOn !== null && rpsOff !== null && rpsOff > 0 ? rpsOn / rpsOff : null;
  /** Median server CPU per request (user + system, from /proc) over a side's runs. */
  const cpuPerRequest = (side: 'on' | 'off'): number | null =>
    median(wrk.filter((w) => w.side === side && w.serverCpuUsPerRequest !== undefined).map((w) => w.serverCpuUsPerRequest ?? 0));
  const wrkNotes = (side: 'on' | 'off'): string => {
    const rs = wrk.filter((w) => w.side === side);
    const runs = rs.map((w) => (w.requestsPerSecond === null ? 'failed' : fmtNum(w.requestsPerSecond, 0))).join(', ');
    const p50 = median(rs.map((w) => w.p50ms).filter((x): x is number => x !== null));
    const p99 = median(rs.map((w) => w.p99ms).filter((x): x is number => x !== null));
    const cpu = cpuPerRequest(side);
    return `wrk ${cfg.wrkConnections} connections, ${cfg.wrkSeconds} s; runs: ${runs}; p50 ${fmtMs(p50)} ms, p99 ${fmtMs(p99)} ms${cpu !== null ? `; Berth used ${fmtNum(cpu, 0)} µs of CPU per request` : ''}`;
  };
  rows.push({
    id: 'manifest-get-off',
    title: 'Manifest GET by tag, auth off (`BERTH_AUTH_ENABLED=false`)',
    value: rpsOff === null ? 'failed' : fmtNum(rpsOff, 0),
    number: rpsOff,
    unit: 'req/s',
    notes: wrkNotes('off'),
  });
  rows.push({
    id: 'manifest-get-on',
    title: 'Manifest GET by tag, auth on (`Authorization: Bearer`, pull token)',
    value: rpsOn === null ? 'failed' : fmtNum(rpsOn, 0),
    number: rpsOn,
    unit: 'req/s',
    notes: wrkNotes('on'),
  });
  const cpuOn = cpuPerRequest('on');
  const cpuOff = cpuPerRequest('off');
  const extraUs = cpuOn !== null && cpuOff !== null ? cpuOn - cpuOff : null;
  rows.push({
    id: 'manifest-get-ratio',
    title: 'Manifest GET, auth on / auth off',
    value: ratio === null ? 'failed' : fmtNum(ratio, 2),
    number: ratio,
    unit: '×',
    notes:
      extraUs === null
        ? "one token throughout, so after the first request Berth's verified-token cache answers (next row: without it)"
        : `auth on costs Berth ${extraUs >= 0 ? '' : '−'}${fmtNum(Math.abs(extraUs), 1)} µs more CPU per request (medians above); one token throughout, so after the first request Berth's verified-token cache answers (next row: without it)`,
  });

  // ---- the registry caches verified access tokens, so wrk with one token measures a cache hit.
  // Same request with a different token every time (each verified once), against the same
  // client and count with one token and with auth off, to see the token check itself.
  const manifestUrl = (srv: Server): string => `${srv.url}/v2/${MANIFEST_REPO}/manifests/${MANIFEST_TAG}`;
  const fresh: string[] = [];
  const freshRefresh = (await passwordToken(on.url, 'bench-user', userPassword, `repository:${MANIFEST_REPO}:pull`, true)).refresh;
  if (freshRefresh === undefined) throw new Error('the password grant with access_type=offline returned no refresh_token');
  const mintAgent = keepAliveAgent(cfg.tokenConcurrency);
  await loadLoop({
    concurrency: cfg.tokenConcurrency,
    maxRequests: cfg.freshTokens + cfg.freshWarmup,
    maxMs: 30_000,
    one: async () => {
      const call = await postForm(
        on.url,
        '/oauth2/token',
        { grant_type: 'refresh_token', refresh_token: freshRefresh, service: 'berth', scope: `repository:${MANIFEST_REPO}:pull` },
        mintAgent,
      );
      const bad = judge(call, 200, 'token');
      if (bad === null) fresh.push(String(call.json?.['token']));
      return bad;
    },
  });
  mintAgent.destroy();
  const oneToken = await pullToken(on);
  const loadgenBinary = await buildLoadgen(repoRoot, parentDir);
  /**
   * Closed-loop manifest GETs with bench/loadgen.c, `count` of them: with no token, one token
   * throughout, or (`tokensFile`) the next token of the file on each request. Also Berth's CPU per
   * completed request (µs, from /proc).
   */
  type LoopResult = LoadResult & { cpuUs: number | null };
  const getLoop = async (srv: Server, auth: { token: string } | { tokensFile: string } | null, count: number): Promise<LoopResult> => {
    const c0 = await cpuMs(srv.pid, ticksPerSecond);
    const r = await runLoadgen(loadgenBinary, manifestUrl(srv), {
      threads: cfg.wrkThreads,
      connections: cfg.wrkConnections,
      seconds: cfg.tokenMaxSeconds * 4,
      headers: [`Accept: ${MT.manifest}`, ...(auth !== null && 'token' in auth ? [`Authorization: Bearer ${auth.token}`] : [])],
      requests: count,
      ...(auth !== null && 'tokensFile' in auth ? { tokensFile: auth.tokensFile } : {}),
    });
    const c1 = await cpuMs(srv.pid, ticksPerSecond);
    const failed = r.non2xx + r.errors + Math.max(0, count - r.requests);
    let firstFailure: string | undefined;
    if (failed > 0) {
      const again = await request(manifestUrl(srv), {
        method: 'GET',
        headers: { accept: MT.manifest, ...(auth !== null && 'token' in auth ? { authorization: `Bearer ${auth.token}` } : {}) },
        timeoutMs: 15_000,
      });
      firstFailure = `loadgen: ${r.raw.trim()} (${count} requests asked)\n\nA single request now:\n\n${describeExchange(again.exchange)}`;
    }
    return {
      ok: r.requests - r.non2xx,
      failed,
      seconds: r.seconds,
      perSecond: r.rps,
      p50ms: r.p50ms,
      p99ms: r.p99ms,
      ...(firstFailure !== undefined ? { firstFailure } : {}),
      cpuUs: c0 !== null && c1 !== null && r.requests > 0 ? ((c1 - c0) * 1000) / r.requests : null,
    };
  };
  // Untimed warm-up of both servers, and of the first-time check with tokens the timed runs never send.
  const tokensFile = join(parentDir, 'fresh-tokens.txt');
  const warmTokens = fresh.splice(0, Math.min(cfg.freshWarmup, Math.floor(fresh.length / 10)));
  await getLoop(off, null, 5000);
  await getLoop(on, { token: oneToken }, 5000);
  if (warmTokens.length > 0) {
    await writeFile(tokensFile, `${warmTokens.join('\n')}\n`, { mode: 0o600 });
    await getLoop(on, { tokensFile }, warmTokens.length);
  }
  // Each repetition: auth off, one token, then a slice of the fresh tokens (each used once), the
  // same number of requests each; the row gives the median repetition of each kind.
  const n = Math.floor(fresh.length / cfg.freshReps);
  const reps: Array<{ off: LoopResult; one: LoopResult; fresh: LoopResult }> = [];
  for (let rep = 0; rep < cfg.freshReps && n > 0; rep++) {
    await writeFile(tokensFile, `${fresh.slice(rep * n, (rep + 1) * n).join('\n')}\n`, { mode: 0o600 });
    const off1 = await getLoop(off, null, n);
    const one1 = await getLoop(on, { token: oneToken }, n);
    const fresh1 = await getLoop(on, { tokensFile }, n);
    reps.push({ off: off1, one: one1, fresh: fresh1 });
    for (const [id, r] of [
      ['get-off', off1],
      ['get-on-one-token', one1],
      ['get-on-fresh-tokens', fresh1],
    ] as const) {
      log(
        `auth: ${id.padEnd(20)} rep ${rep + 1}: ${r.perSecond.toFixed(0)} req/s (${r.ok} ok, ${r.failed} failed in ${r.seconds.toFixed(2)} s), Berth CPU ${r.cpuUs?.toFixed(0) ?? '?'} µs/request`,
      );
      if (r.firstFailure !== undefined)
        problems.push(problemBlock(`Manifest GET (${id}): ${r.failed} of ${r.ok + r.failed} requests failed; the first`, r.firstFailure));
    }
  }
  /** The repetition with the median rate of one kind (its latencies and CPU go with it). */
  const medianRep = (kind: 'off' | 'one' | 'fresh'): LoopResult | undefined =>
    [...reps.map((r) => r[kind])].sort((a, b) => a.perSecond - b.perSecond)[Math.floor(reps.length / 2)];
  const medianCpu = (kind: 'off' | 'one' | 'fresh'): number | null => {
    const cpus = reps.map((r) => r[kind].cpuUs);
    if (cpus.some((c) => c === null)) return null;
    return (cpus as number[]).sort((a, b) => a - b)[Math.floor(cpus.length / 2)] ?? null;
  };
  const loopOff = medianRep('off');
  const loopOne = medianRep('one');
  const loopFresh = medianRep('fresh');
  for (const [id, r] of [
    ['get-off', loopOff],
    ['get-on-one-token', loopOne],
    ['get-on-fresh-tokens', loopFresh],
  ] as const) {
    if (r !== undefined) loads.push({ ...loadRecord(id, r), ...(r.cpuUs !== null ? { serverCpuUsPerRequest: r.cpuUs } : {}) });
  }
  const freshFailed =
    loopOff === undefined || loopOne === undefined || loopFresh === undefined || reps.some((r) => r.fresh.failed + r.one.failed + r.off.failed > 0);
  const [offCpu, oneCpu, freshCpu] = [medianCpu('off'), medianCpu('one'), medianCpu('fresh')];
  const perCheckUs = !freshFailed && freshCpu !== null && oneCpu !== null ? freshCpu - oneCpu : null;
  const cpuNote = (cpu: number | null): string => (cpu === null ? '' : `, ${fmtNum(cpu, 0)} µs Berth CPU per request`);
  const range = (kind: 'off' | 'one' | 'fresh'): string => (reps.length < 2 ? '' : ` (${reps.map((r) => fmtNum(r[kind].perSecond, 0)).join(', ')})`);
  const freshRatio = !freshFailed && loopOff.perSecond > 0 ? loopFresh.perSecond / loopOff.perSecond : null;
  rows.push({
    id: 'manifest-get-fresh-tokens',
    title: 'Manifest GET, auth on, a different token on every request (no verification-cache hit)',
    value: freshFailed ? 'failed' : fmtNum(loopFresh.perSecond, 0),
    number: freshFailed ? null : loopFresh.perSecond,
    unit: 'req/s',
    notes: freshFailed
      ? `${fresh.length} tokens; see Problems`
      : `loadgen, ${cfg.wrkConnections} connections, ${reps.length} × ${fmtNum(n, 0)} requests${warmTokens.length > 0 ? ` (after ${fmtNum(warmTokens.length, 0)} untimed ones with new tokens of their own)` : ''}, median${range('fresh')}, p50 ${fmtMs(loopFresh.p50ms)} ms${cpuNote(freshCpu)}; the same client, interleaved: ${fmtNum(loopOne.perSecond, 0)} req/s with one token${range('one')} (cache hit${cpuNote(oneCpu)}), ${fmtNum(loopOff.perSecond, 0)} req/s with auth off${range('off')}${cpuNote(offCpu)}${freshRatio !== null ? `: ${fmtNum(freshRatio, 2)}× of auth off` : ''}${perCheckUs !== null ? `. A first-time token check costs about ${fmtNum(perCheckUs, 0)} µs of Berth CPU` : ''}`,
  });

  // ---- profile auth on if it is well behind auth off
  let profile: AuthResults['profile'] = null;
  const forceProfile = process.env['BENCH_AUTH_PROFILE'] === '1';
  if (opt.profile !== '0' && (forceProfile || (ratio !== null && ratio < PROFILE_BELOW))) {
    log(`auth: profiling auth-on manifest GET (ratio ${ratio?.toFixed(2) ?? 'n/a'}${forceProfile ? ', forced by BENCH_AUTH_PROFILE=1' : ''})`);
    profile = { value: null, file: null, summary: null };
    try {
      const e1 = await stopBerth(on);
      started.splice(started.indexOf(on), 1);
      if (e1.killed) problems.push(`**Berth (auth on)** did not exit within 15 s of SIGTERM before the profile run (killed).`);
      const profDir = join(parentDir, 'auth-on-cpuprof');
      const prof = await startBerth({
        label: 'Berth (auth on, profiled)',
        parent: parentDir,
        slug: 'berth-auth-on',
        repoRoot,
        config: baseConfig,
        nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profDir}`],
      });
      started.push(prof);
      const token = await pullToken(prof);
      await runWrk(prof.url, token, cfg.wrkThreads, cfg.wrkConnections, 2);
      const fromUs = Number(process.hrtime.bigint() / 1000n);
      const w = await runWrk(prof.url, token, cfg.wrkThreads, cfg.wrkConnections, cfg.wrkSeconds);
      const toUs = Number(process.hrtime.bigint() / 1000n);
      profile.value = Number.isFinite(w.requestsPerSecond) ? w.requestsPerSecond : null;
      const exit = await stopBerth(prof, 60_000);
      started.splice(started.indexOf(prof), 1);
      const files = (await readdir(profDir).catch(() => [] as string[])).filter((f) => f.endsWith('.cpuprofile'));
      const f = files[0];
      if (f === undefined) {
        profile.error = `Berth wrote no .cpuprofile (exit code ${String(exit.code)}, signal ${String(exit.signal)}${exit.killed ? ', killed after 60 s' : ''})`;
      } else {
        const dest = join(resultsDir, 'profiles', `${startedAt.replace(/[:.]/g, '-')}-auth-manifest-get.cpuprofile`);
        await mkdir(dirname(dest), { recursive: true });
        await copyFile(join(profDir, f), dest);
        profile.file = relative(repoRoot, dest);
        profile.summary = await summarizeProfile(dest, repoRoot, 12, { fromUs, toUs });
      }
    } catch (e) {
      profile.error = e instanceof Error ? e.message : String(e);
    }
    if (profile.error !== undefined) log(`auth: profile: ${profile.error}`);
  }

  // ---- shut down
  for (const s of [...started]) {
    const e = await stopBerth(s);
    if (e.killed || (e.code !== 0 && e.code !== null) || (e.signal !== null && e.signal !== 'SIGTERM')) {
      problems.push(
        `**${s.label}** did not shut down cleanly on SIGTERM (code ${String(e.code)}, signal ${String(e.signal)}, killed after 15 s: ${e.killed}).`,
      );
    }
  }
  started.length = 0;
  const jwksFetches = iss.jwksFetches;
  await iss.stop();
  issuer = null;

  const args = process.argv.slice(2);
  const res: AuthResults = {
    startedAt,
    finishedAt: new Date().toISOString(),
    durationSeconds: (Date.now() - t0) / 1000,
    command: `npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`,
    mode: quick ? 'quick' : 'full',
    machine: { cpu: mi.cpuModel, cores: mi.cores, memoryGiB: mi.memoryGiB, os: mi.os, kernel: mi.kernel, node: mi.node, berth: mi.berth, wrk: mi.wrk },
    config: {
      tokenConcurrency: cfg.tokenConcurrency,
      tokenMaxRequests: cfg.tokenMaxRequests,
      tokenRuns: cfg.tokenRuns,
      tokenMaxSeconds: cfg.tokenMaxSeconds,
      warmupRequests: cfg.warmupRequests,
      warmupSeconds: cfg.warmupSeconds,
      coldLogins: cfg.coldLogins,
      freshTokens: cfg.freshTokens,
      freshReps: cfg.freshReps,
      wrkThreads: cfg.wrkThreads,
      wrkConnections: cfg.wrkConnections,
      wrkSeconds: cfg.wrkSeconds,
      wrkReps: cfg.wrkReps,
    },
    rows,
    loads,
    coldLoginMs: coldMs,
    wrk,
    ratio,
    jwksFetches,
    profile,
    problems,
  };
  const stamp = startedAt.replace(/[:.]/g, '-');
  const prefix = quick ? 'partial-' : '';
  const json = JSON.stringify(res, null, 2);
  await writeFile(join(resultsDir, `${prefix}auth-${stamp}.json`), json);
  await writeFile(join(resultsDir, `${prefix}auth-latest.json`), json);
  const doc = docPath(partialDoc);
  await insertSection(doc, renderAuthSection(res));
  log(`auth: wrote the auth section of ${relative(repoRoot, doc)}`);

  for (const r of rows) process.stdout.write(`${r.id.padEnd(28)} ${r.value.padStart(14)} ${r.unit}\n`);

  if (opt.keep !== true) await rm(parentDir, { recursive: true, force: true });
  else log(`auth: kept ${parentDir}`);
  parentDir = null;
  clearTimeout(watchdog);
  log(`auth: done in ${Math.round((Date.now() - t0) / 1000)} s`);
}

main().catch(async (e: unknown) => {
  const detail = e instanceof ProtocolError && e.exchange !== null ? `\n\n${describeExchange(e.exchange)}` : '';
  log(`auth benchmark failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}${detail}`);
  await emergencyCleanup();
  process.exit(1);
});
