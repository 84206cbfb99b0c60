/**
 * A soak: one `berth serve` (auth on, files + SQLite) under a steady mixed load for ten minutes,
 * with its memory and event-loop delay sampled throughout, to show that nothing grows with time.
 *
 * Load, at fixed rates (open loop: a request starts on schedule whether or not earlier ones have
 * answered, up to a cap in flight):
 *   pushes     10 images/s, each a fresh 4 KiB layer + config + manifest under its own tag, to one
 *              of 20 repositories, with an access token bought by the refresh grant once a minute;
 *   pulls      100/s: GET of a recently pushed manifest and of its layer;
 *   grants     20/s: the refresh grant, as credential helpers renew.
 * Every 10 s: RSS (/proc), and from `GET /metrics`: the V8 heap in use and the event-loop delay's
 * p99 over the interval (Node's `monitorEventLoopDelay` through prom-client, reset at each scrape,
 * less its 10 ms sampling interval). A request answered
 * other than expected is counted as an error; any error fails the section.
 *
 *   node --import tsx bench/soak.ts [--quick] [--doc PATH] [--keep]
 *   (normally via `npm run bench`, or `npm run bench -- --only soak`)
 *
 * --quick soaks for 40 s instead of 600; BENCH_SOAK_SECONDS=N soaks for N. Writes its section of docs/benchmarks.md between
 * `<!-- soak-bench:start -->` and `<!-- soak-bench:end -->`, and bench/results/soak-latest.json.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { callJson, expect, judge, keepAliveAgent, passwordToken, postForm, pushImage, startBerth, stopBerth, tinyImage } from './lib/auth-lib.js';
import { MT } from './lib/fixtures.js';
import { machineInfo } from './lib/machine.js';
import { parseBenchOptions } from './lib/options.js';
import { request } from './lib/registry.js';
import { startMarkedSectionBench, startWatchdog } from './lib/section-bench.js';
import { readMem, type Server } from './lib/servers.js';
import { fmtNum, log, sectionTempDir } from './lib/util.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const resultsDir = join(repoRoot, 'bench', 'results');
const opt = parseBenchOptions();
const quick = opt.quick === true;
const markers = { start: '<!-- soak-bench:start -->', end: '<!-- soak-bench:end -->' };
const rates = { push: 10, pull: 100, grant: 20 };
const maxInFlight = 64;
const sampleEveryMs = 10_000;
/** The interval of the timer behind `berth_nodejs_eventloop_lag_*` (prom-client's default precision). */
const loopSampleMs = 10;

interface Sample {
  atSeconds: number;
  rssMiB: number;
  heapUsedMiB: number | null;
  loopDelayP99ms: number | null;
  done: Record<keyof typeof rates, number>;
}

interface Results {
  date: string;
  quick: boolean;
  seconds: number;
  machine: Awaited<ReturnType<typeof machineInfo>>;
  samples: Sample[];
  errors: number;
  firstError?: string;
  completed: Record<keyof typeof rates, number>;
}

async function main(): Promise<void> {
  const started = await startMarkedSectionBench<Results>({ name: 'soak', selfTestReason: 'measures Berth only', opt, repoRoot, resultsDir, markers, render });
  if (!started) return;
  // BENCH_SOAK_SECONDS: a longer soak on demand (full collections can be minutes apart at this load).
  const seconds = quick ? 40 : Number(process.env['BENCH_SOAK_SECONDS'] ?? 600);
  if (!Number.isInteger(seconds) || seconds < 10) throw new Error('BENCH_SOAK_SECONDS must be a whole number of seconds, at least 10');
  const stopWatchdog = startWatchdog('soak', (seconds + 180) * 1000);
  const parent = await sectionTempDir('berth-bench-soak-');
  let srv: Server | undefined;
  try {
    const ownerPassword = randomBytes(18).toString('base64url');
    srv = await startBerth({
      label: 'Berth (soak)',
      parent,
      slug: 'soak',
      repoRoot,
      config: { auth: { bootstrap: { user: 'soak-owner', password: ownerPassword } } },
    });
    const base = srv.url;
    const owner = (await passwordToken(base, 'soak-owner', ownerPassword, 'registry:admin:*')).token;
    const created = expect(
      await callJson(base, 'POST', '/api/v1/principals', owner, { kind: 'user', name: 'soak-user', grants: [{ pattern: 'soak/**', permission: 'push' }] }),
      201,
      'create soak-user',
    );
    const password = (created['secret'] as { value: string }).value;
    const repositories = Array.from({ length: 20 }, (_, i) => `soak/app-${i}`);
    const scope = repositories.map((r) => `repository:${r}:pull,push`).join(' ');
    const refresh = (await passwordToken(base, 'soak-user', password, scope, true)).refresh;
    if (refresh === undefined) throw new Error('no refresh token');
    const agent = keepAliveAgent(maxInFlight);
    const grant = async (): Promise<string> => {
      const call = await postForm(base, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: refresh, service: 'berth', scope }, agent);
      const problem = judge(call, 200, 'token');
      if (problem !== null) throw new Error(problem);
      return String(call.json?.['token']);
    };
    let token = await grant();
    const pushed: Array<{ repository: string; manifest: string; layer: string }> = [];
    let pushes = 0;
    const completed = { push: 0, pull: 0, grant: 0 };
    let errors = 0;
    let firstError: string | undefined;
    const ops: Record<keyof typeof rates, () => Promise<void>> = {
      push: async () => {
        const n = pushes++;
        const repository = repositories[n % repositories.length] as string;
        const image = tinyImage(`soak-${n}`);
        await pushImage(base, repository, `t${n}`, image, token);
        pushed.push({ repository, manifest: image.manifest.digest, layer: image.layer.digest });
        if (pushed.length > 1000) pushed.splice(0, pushed.length - 1000);
      },
      pull: async () => {
        const image = pushed[Math.floor(Math.random() * pushed.length)];
        if (!image) return;
        const headers = { authorization: `Bearer ${token}`, accept: MT.manifest };
        for (const path of [`manifests/${image.manifest}`, `blobs/${image.layer}`]) {
          const res = await request(`${base}/v2/${image.repository}/${path}`, { method: 'GET', headers, agent, discardBody: true, timeoutMs: 15_000 });
          if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
        }
      },
      grant: async () => {
        await grant();
      },
    };
    const tokenTimer = setInterval(() => {
      grant().then(
        (t) => (token = t),
        () => undefined,
      );
    }, 60_000);
    let inFlight = 0;
    const t0 = Date.now();
    const due = { push: 0, pull: 0, grant: 0 };
    const tick = setInterval(() => {
      const elapsed = (Date.now() - t0) / 1000;
      for (const kind of Object.keys(rates) as Array<keyof typeof rates>) {
        while (due[kind] < elapsed * rates[kind] && inFlight < maxInFlight) {
          due[kind]++;
          inFlight++;
          ops[kind]()
            .then(
              () => completed[kind]++,
              (err: unknown) => {
                errors++;
                firstError ??= `${kind}: ${err instanceof Error ? err.message : String(err)}`;
              },
            )
            .finally(() => inFlight--);
        }
      }
    }, 20);
    const samples: Sample[] = [];
    const sample = async (): Promise<void> => {
      const mem = await readMem(srv!.pid);
      const metrics = await request(`${base}/metrics`, { method: 'GET', timeoutMs: 15_000 });
      const text = metrics.body.toString('utf8');
      const value = (name: string): number | null => {
        const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
        return match ? Number(match[1]) : null;
      };
      const heap = value('berth_nodejs_heap_size_used_bytes');
      const lag = value('berth_nodejs_eventloop_lag_p99_seconds');
      samples.push({
        atSeconds: Math.round((Date.now() - t0) / 1000),
        rssMiB: mem === null ? 0 : mem.rssKiB / 1024,
        heapUsedMiB: heap === null ? null : heap / 1024 / 1024,
        // prom-client samples with a 10 ms timer (its default precision) and reports how long each
        // interval took, so an idle loop reads 10 ms: what is above that is the delay.
        loopDelayP99ms: lag === null ? null : Math.max(0, lag * 1000 - loopSampleMs),
        done: { ...completed },
      });
      const last = samples[samples.length - 1] as Sample;
      log(
        `soak: ${last.atSeconds} s: RSS ${fmtNum(last.rssMiB, 0)} MiB, heap ${fmtNum(last.heapUsedMiB, 0)} MiB, loop delay p99 ${fmtNum(last.loopDelayP99ms, 1)} ms, ${JSON.stringify(completed)}, ${errors} errors`,
      );
    };
    await request(`${base}/metrics`, { method: 'GET', timeoutMs: 15_000 }); // starts Node's process metrics
    while (Date.now() - t0 < seconds * 1000) {
      await new Promise((ok) => setTimeout(ok, sampleEveryMs));
      await sample();
    }
    clearInterval(tick);
    clearInterval(tokenTimer);
    while (inFlight > 0) await new Promise((ok) => setTimeout(ok, 50));
    const results: Results = {
      date: new Date().toISOString(),
      quick,
      seconds,
      machine: await machineInfo(repoRoot, parent),
      samples,
      errors,
      ...(firstError !== undefined ? { firstError } : {}),
      completed,
    };
    await started.publish(results);
  } finally {
    stopWatchdog();
    if (srv) await stopBerth(srv).catch(() => undefined);
    if (opt.keep !== true) await rm(parent, { recursive: true, force: true });
  }
}

function render(r: Results): string {
  const minute = (s: Sample) => Math.max(1, Math.ceil(s.atSeconds / 60));
  const byMinute = new Map<number, Sample[]>();
  for (const s of r.samples) byMinute.set(minute(s), [...(byMinute.get(minute(s)) ?? []), s]);
  const max = (values: Array<number | null>) => {
    const known = values.filter((v): v is number => v !== null);
    return known.length === 0 ? null : Math.max(...known);
  };
  const rows = [...byMinute].map(([m, samples]) => {
    const last = samples[samples.length - 1] as Sample;
    return `| ${m} | ${fmtNum(max(samples.map((s) => s.rssMiB)), 0)} | ${fmtNum(max(samples.map((s) => s.heapUsedMiB)), 0)} | ${fmtNum(max(samples.map((s) => s.loopDelayP99ms)), 1)} | ${fmtNum(last.done.push, 0)} / ${fmtNum(last.done.pull, 0)} / ${fmtNum(last.done.grant, 0)} |`;
  });
  const secondMinute = r.samples.filter((s) => minute(s) === 2);
  const lastMinute = r.samples.filter((s) => minute(s) === Math.max(...r.samples.map(minute)));
  const growth =
    secondMinute.length > 0 && lastMinute.length > 0 ? (max(lastMinute.map((s) => s.rssMiB)) ?? 0) - (max(secondMinute.map((s) => s.rssMiB)) ?? 0) : null;
  return [
    markers.start,
    '## Soak: ten minutes of steady mixed load',
    '',
    `Generated by \`bench/soak.ts\` (\`npm run bench -- --only soak\`) on ${r.date.slice(0, 10)}, ${r.machine.cores} cores (${r.machine.cpuModel}), Node.js ${r.machine.node}. ` +
      `One \`berth serve\` (auth on, files + SQLite) for ${fmtNum(r.seconds, 0)} s at fixed rates: ${rates.push} pushes/s (a fresh 4 KiB layer, config and manifest each, over 20 repositories), ${rates.pull} pulls/s (a recent manifest and its layer), ${rates.grant} refresh grants/s; at most ${maxInFlight} requests in flight. ` +
      `Sampled every ${sampleEveryMs / 1000} s: RSS from /proc, and from \`/metrics\` the V8 heap in use and the event-loop delay's p99 over the interval (how much later than due Node's ${loopSampleMs} ms sampling timer fired). Per minute, the highest sample:`,
    '',
    '| Minute | RSS MiB | Heap used MiB | Event-loop delay p99 ms | Done so far: pushes / pulls / grants |',
    '| ---: | ---: | ---: | ---: | --- |',
    ...rows,
    '',
    `Errors: **${fmtNum(r.errors, 0)}**${r.firstError ? ` (first: ${r.firstError.split('\n')[0]})` : ''}. RSS in the last minute against the second: ${growth === null ? 'n/a' : `${growth >= 0 ? '+' : ''}${fmtNum(growth, 0)} MiB`}.${r.quick ? ' (Quick mode: too short to judge growth.)' : ''}`,
    markers.end,
  ].join('\n');
}

await main();
