/** Clients for the management API and the berth CLI, used by the admin tests. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { urls } from '../../src/api/urls.js';
import { REPO_ROOT, trackChild } from '../support/berth-process.js';
import { ownerName, ownerPassword } from '../support/server.js';
import { bearer, tokenFor } from '../auth/helpers.js';

export const adminScope = 'registry:admin:*';

export interface ApiResponse {
  status: number;
  headers: Headers;
  /** Parsed JSON, or undefined for an empty body. */
  // `any` for test convenience: shapes are asserted field by field
  body: any;
}

/** A management-API caller holding one access token. */
export class Api {
  constructor(
    readonly base: string,
    readonly token: string | undefined,
  ) {}

  static async asOwner(base: string): Promise<Api> {
    return Api.as(base, ownerName, ownerPassword);
  }

  static async as(base: string, user: string, password: string): Promise<Api> {
    return new Api(base, String((await tokenFor(base, user, password, [adminScope]))['token']));
  }

  get = (path: string) => this.call('GET', path);
  post = (path: string, body?: unknown) => this.call('POST', path, body);
  put = (path: string, body?: unknown) => this.call('PUT', path, body);
  patch = (path: string, body?: unknown) => this.call('PATCH', path, body);
  delete = (path: string) => this.call('DELETE', path);

  /** `body` is sent as JSON, or as is when it is already a string (to send malformed JSON). */
  async call(method: string, path: string, body?: unknown): Promise<ApiResponse> {
    const res = await fetch(`${this.base}${urls.api.root()}${path}`, {
      method,
      headers: { ...(this.token ? bearer(this.token) : {}), 'Content-Type': 'application/json' },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  }
}

/** Asserts a registry-style error: status, wire code and (optionally) a message fragment. */
export function assertError(res: ApiResponse, status: number, code: string, message?: RegExp): void {
  assert.equal(res.status, status, JSON.stringify(res.body));
  const error = res.body?.errors?.[0];
  assert.equal(error?.code, code, JSON.stringify(res.body));
  if (message) assert.match(String(error?.message), message);
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** How long one CLI run may take here: a command takes well under a second, so only a hang reaches it. */
const cliRunLimitMs = 120_000;

/**
 * Runs the berth CLI from source (`node --import tsx src/bin/berth.ts …`) as a real process. The
 * server under test lives in this process, so the child is awaited asynchronously, never with a
 * *Sync call that would block the server's event loop.
 */
export async function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; stdin?: string } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/bin/berth.ts', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = trackChild(child);
  child.stdin.end(options.stdin ?? '');
  // A command that hangs fails its test instead of stalling the whole suite (CI has one limit for all).
  let killed = false;
  const limit = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, cliRunLimitMs);
  const { code } = await exited;
  clearTimeout(limit);
  if (killed) stderr += `\nberth ${args.join(' ')}: still running after ${cliRunLimitMs / 1000} s, killed by the test`;
  return { code, stdout, stderr };
}

/** Asserts a CLI run succeeded (exit 0), showing its output otherwise; returns it for chaining. */
export function ok(result: CliResult): CliResult {
  assert.equal(result.code, 0, `exit ${result.code}\n${result.stderr}\n${result.stdout}`);
  return result;
}

/** Asserts a CLI run failed the way the house style says: exit 1, one line on stderr matching `message`. */
export function failsWith(result: CliResult, message: RegExp): void {
  assert.equal(result.code, 1, result.stdout);
  assert.match(result.stderr, message);
  assert.equal(result.stderr.trim().split('\n').length, 1, `one line: ${result.stderr}`);
}
