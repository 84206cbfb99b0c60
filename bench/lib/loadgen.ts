/**
 * bench/loadgen.c, the bench's own closed-loop HTTP load generator (see its header for why it
 * exists next to wrk): built once per run with the system's gcc, run with one JSON line out.
 */
import { join } from 'node:path';
import { run, runOk } from './util.js';

export interface LoadgenOptions {
  method?: 'GET' | 'HEAD';
  threads: number;
  connections: number;
  /** The run's limit in seconds (it ends earlier with `requests` or `tokensFile`). */
  seconds: number;
  /** Request header lines, `Name: value`. */
  headers?: readonly string[];
  /** Stop after this many requests; the rate is then over the time they took. */
  requests?: number;
  /** A file of bearer tokens, one per line: each request carries the next one, each once. */
  tokensFile?: string;
}

export interface LoadgenResult {
  requests: number;
  seconds: number;
  rps: number;
  non2xx: number;
  errors: number;
  p50ms: number;
  p99ms: number;
  /** loadgen's output line, for problem reports. */
  raw: string;
}

/** Compiles bench/loadgen.c into `dir`; returns the binary's path. */
export async function buildLoadgen(repoRoot: string, dir: string): Promise<string> {
  const binary = join(dir, 'loadgen');
  await runOk('gcc', ['-O2', '-pthread', '-o', binary, join(repoRoot, 'bench', 'loadgen.c')], { timeoutMs: 120_000 });
  return binary;
}

export async function runLoadgen(binary: string, url: string, o: LoadgenOptions): Promise<LoadgenResult> {
  const args = ['-m', o.method ?? 'GET', '-t', String(o.threads), '-c', String(o.connections), '-d', String(o.seconds)];
  for (const h of o.headers ?? []) args.push('-H', h);
  if (o.requests !== undefined) args.push('-n', String(o.requests));
  if (o.tokensFile !== undefined) args.push('-B', o.tokensFile);
  args.push(url);
  const r = await run(binary, args, { timeoutMs: (o.seconds + 30) * 1000 });
  if (r.code !== 0) throw new Error(`loadgen exited ${String(r.code)}: ${r.stderr}`);
  const j = JSON.parse(r.stdout.trim()) as { requests: number; seconds: number; rps: number; non2xx: number; errors: number; p50_us: number; p99_us: number };
  return {
    requests: j.requests,
    seconds: j.seconds,
    rps: j.rps,
    non2xx: j.non2xx,
    errors: j.errors,
    p50ms: j.p50_us / 1000,
    p99ms: j.p99_us / 1000,
    raw: r.stdout,
  };
}
