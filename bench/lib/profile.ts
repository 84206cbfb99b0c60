/**
 * Reads a V8 .cpuprofile (from `node --cpu-prof`) and lists the functions with
 * the most self time.
 */
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface SelfTimeRow {
  fn: string;
  location: string;
  selfMs: number;
  /** Share of the non-idle profile time. */
  percent: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  busyMs: number;
  top: SelfTimeRow[];
  /** Self time grouped by where the code lives: berth / node internals / node_modules / GC / native. */
  byArea: { area: string; ms: number; percent: number }[];
  /** Whether only the samples taken during the measured operation were counted. */
  windowed?: boolean;
}

function location(cf: CallFrame, repoRoot: string): string {
  if (cf.url === '') return '';
  let u = cf.url.replace(/^file:\/\//, '');
  if (u.startsWith('/')) u = relative(repoRoot, u);
  return `${u}:${cf.lineNumber + 1}`;
}

function area(cf: CallFrame): string {
  const name = cf.functionName;
  if (name === '(garbage collector)') return 'garbage collector';
  if (name === '(program)') return 'V8/native (program)';
  if (name === '(idle)') return 'idle';
  const u = cf.url;
  if (u === '') return 'native / builtins';
  if (u.startsWith('node:')) return 'node core (JS)';
  if (u.includes('/node_modules/')) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
    return `node_modules: ${m?.[1] ?? '?'}`;
  }
  if (u.includes('/dist/')) return 'berth (dist/)';
  return 'other JS';
}

/**
 * `window` (CLOCK_MONOTONIC microseconds, the clock V8 stamps profiles with and
 * `process.hrtime` reads) restricts the summary to the measured operation, so
 * start-up and setup do not show.
 */
export async function summarizeProfile(
  path: string,
  repoRoot: string,
  topN = 15,
  window?: { fromUs: number; toUs: number },
): Promise<ProfileSummary & { windowed: boolean }> {
  const prof = JSON.parse(await readFile(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of prof.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  const samples = prof.samples ?? [];
  const deltas = prof.timeDeltas ?? [];
  let windowed = false;
  if (samples.length > 0 && deltas.length === samples.length) {
    const times: number[] = [];
    let t = prof.startTime;
    for (const d of deltas) {
      t += d;
      times.push(t);
    }
    const inWindow = window !== undefined && times.some((x) => x >= window.fromUs && x <= window.toUs) ? window : undefined;
    windowed = inWindow !== undefined;
    // timeDeltas[i] is the time between sample i-1 and i; attribute the interval
    // following a sample to that sample.
    for (let i = 0; i < samples.length; i++) {
      const id = samples[i];
      const at = times[i];
      if (id === undefined || at === undefined) continue;
      if (inWindow !== undefined && (at < inWindow.fromUs || at > inWindow.toUs)) continue;
      const d = deltas[i + 1] ?? 0;
      selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, d));
    }
  } else {
    const total = prof.endTime - prof.startTime;
    const hits = prof.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0);
    for (const n of prof.nodes) selfUs.set(n.id, hits === 0 ? 0 : ((n.hitCount ?? 0) / hits) * total);
  }
  const byFn = new Map<string, { fn: string; location: string; us: number }>();
  const byArea = new Map<string, number>();
  let idleUs = 0;
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (n === undefined) continue;
    totalUs += us;
    const cf = n.callFrame;
    if (cf.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const a = area(cf);
    byArea.set(a, (byArea.get(a) ?? 0) + us);
    const fn = cf.functionName === '' ? '(anonymous)' : cf.functionName;
    const loc = location(cf, repoRoot);
    const key = `${fn}\u0000${loc}`;
    const row = byFn.get(key) ?? { fn, location: loc, us: 0 };
    row.us += us;
    byFn.set(key, row);
  }
  const busyUs = totalUs - idleUs;
  const pct = (us: number): number => (busyUs > 0 ? (100 * us) / busyUs : 0);
  const top = [...byFn.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, topN)
    .map((r) => ({ fn: r.fn, location: r.location, selfMs: r.us / 1000, percent: pct(r.us) }));
  const areas = [...byArea.entries()].sort((a, b) => b[1] - a[1]).map(([a, us]) => ({ area: a, ms: us / 1000, percent: pct(us) }));
  return { totalMs: totalUs / 1000, idleMs: idleUs / 1000, busyMs: busyUs / 1000, top, byArea: areas, windowed };
}
