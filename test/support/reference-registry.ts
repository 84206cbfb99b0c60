/**
 * Runs Debian's `docker-registry` (CNCF Distribution 2.8) on a free loopback
 * port as a reference implementation: the e2e tests can be pointed at it to
 * check that a failure is Berth's and not the test's. Distribution 2.8 has no
 * referrers API.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { urls } from '../../src/api/urls.js';
import { captureOutput, raceTimeout, trackChild } from './berth-process.js';
import type { ExitInfo, ServerProcess } from './berth-process.js';

export const REFERENCE_REGISTRY_BIN = 'docker-registry';
const execFileAsync = promisify(execFile);

/** Bounds on a broken start, not assertions. */
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
/** The free port is found by binding :0 and releasing it, so another process may grab it first. */
const PORT_ATTEMPTS = 3;

export interface ReferenceRegistryOptions {
  /** Require HTTP Basic auth (Distribution's htpasswd, bcrypt via Debian's `htpasswd`) for this user. */
  htpasswd?: { username: string; password: string };
  /** Send Distribution's notifications (event envelopes) to this endpoint, with these headers. */
  notifications?: { url: string; headers?: Record<string, string> };
  /** Keep Distribution's access log (one line per request, on stdout): `requests()` reads it. */
  accessLog?: boolean;
}

/** A request as Distribution's access log (combined log format) records it. */
export interface LoggedRequest {
  method: string;
  path: string;
  status: number;
  userAgent: string;
}

export interface ReferenceRegistry extends ServerProcess {
  /** The requests served so far, in order (empty unless started with `accessLog`). */
  requests(): LoggedRequest[];
}

export async function startReferenceRegistry(options: ReferenceRegistryOptions = {}): Promise<ReferenceRegistry> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= PORT_ATTEMPTS; attempt++) {
    try {
      return await startOnce(await findFreePort(), options);
    } catch (err) {
      lastError = err;
      if (!(err instanceof PortInUseError)) throw err;
    }
  }
  throw lastError;
}

class PortInUseError extends Error {}

async function startOnce(port: number, options: ReferenceRegistryOptions): Promise<ReferenceRegistry> {
  const root = await mkdtemp(join(tmpdir(), 'berth-e2e-distribution-'));
  const dataDir = join(root, 'data');
  const configPath = join(root, 'config.yml');
  let htpasswdPath: string | undefined;
  if (options.htpasswd) {
    htpasswdPath = join(root, 'htpasswd');
    const { stdout } = await execFileAsync('htpasswd', ['-Bbn', options.htpasswd.username, options.htpasswd.password]);
    await writeFile(htpasswdPath, stdout);
  }
  await writeFile(configPath, distributionConfig(dataDir, port, htpasswdPath, options.notifications, options.accessLog === true));

  const proc = spawn(REFERENCE_REGISTRY_BIN, ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let spawnError: Error | undefined;
  proc.once('error', (err) => {
    spawnError = err;
  });
  const out = captureOutput(proc);
  const requests: LoggedRequest[] = [];
  out.onStdoutLine((line) => {
    const logged = parseAccessLogLine(line);
    if (logged) requests.push(logged);
  });
  const exited = trackChild(proc);
  const url = `http://127.0.0.1:${port}`;
  const cleanup = (): Promise<void> => rm(root, { recursive: true, force: true });
  const describe = (): string => `--- stderr ---\n${out.stderr()}\n--- stdout ---\n${out.stdout()}`;

  try {
    await waitUntilServing(url, exited, options.htpasswd !== undefined);
  } catch (err) {
    proc.kill('SIGKILL');
    await exited;
    await cleanup();
    const cause = spawnError === undefined ? '' : ` (${spawnError.message}; run scripts/ensure-test-deps.sh)`;
    const message = `${REFERENCE_REGISTRY_BIN} did not start on ${url}: ${(err as Error).message}${cause}\n${describe()}`;
    if (out.stderr().includes('address already in use')) throw new PortInUseError(message);
    throw new Error(message, { cause: err });
  }

  const terminate = async (signal: NodeJS.Signals): Promise<ExitInfo> => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    const info = await raceTimeout(exited, STOP_TIMEOUT_MS);
    if (info === undefined) proc.kill('SIGKILL');
    const final = info ?? (await exited);
    await cleanup();
    return final;
  };
  return {
    url,
    host: `127.0.0.1:${port}`,
    dataDir,
    proc,
    stop: () => terminate('SIGTERM'),
    kill: () => terminate('SIGKILL'),
    output: () => ({ stdout: out.stdout(), stderr: out.stderr() }),
    requests: () => [...requests],
  };
}

/** `127.0.0.1 - - [date] "GET /v2/… HTTP/1.1" 200 2 "referer" "user-agent"`, or undefined for another line. */
function parseAccessLogLine(line: string): LoggedRequest | undefined {
  const match = /"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3}) \S+ "[^"]*" "([^"]*)"/.exec(line);
  if (!match) return undefined;
  return { method: match[1] as string, path: (match[2] as string).split('?')[0] as string, status: Number(match[3]), userAgent: match[4] as string };
}

/** Filesystem storage, deletes enabled (for `skopeo delete`), no auth unless htpasswd, loopback only, no access log unless asked. */
function distributionConfig(
  dataDir: string,
  port: number,
  htpasswdPath?: string,
  notifications?: ReferenceRegistryOptions['notifications'],
  accessLog = false,
): string {
  const auth = htpasswdPath ? ['auth:', '  htpasswd:', '    realm: berth-test', `    path: ${JSON.stringify(htpasswdPath)}`] : [];
  // Distribution retries a failed batch after `backoff`, and stops for a while after `threshold` failures.
  const notify = notifications
    ? [
        'notifications:',
        '  endpoints:',
        '    - name: berth',
        `      url: ${JSON.stringify(notifications.url)}`,
        '      timeout: 2s',
        '      threshold: 10',
        '      backoff: 500ms',
        ...(notifications.headers
          ? ['      headers:', ...Object.entries(notifications.headers).map(([name, value]) => `        ${name}: [${JSON.stringify(value)}]`)]
          : []),
      ]
    : [];
  return [
    ...auth,
    ...notify,
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    `    disabled: ${accessLog ? 'false' : 'true'}`,
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(dataDir)}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: berth-e2e-not-a-secret',
    '',
  ].join('\n');
}

/** Polls `GET /v2/` until it answers 200 (401 with auth on); rejects on exit or after START_TIMEOUT_MS. */
async function waitUntilServing(url: string, exited: Promise<ExitInfo>, auth = false): Promise<void> {
  let exit: ExitInfo | undefined;
  void exited.then((info) => {
    exit = info;
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exit !== undefined) throw new Error(`exited early (code ${exit.code}, signal ${exit.signal})`);
    try {
      const res = await fetch(`${url}${urls.base()}`);
      await res.arrayBuffer();
      if (res.status === 200 || (auth && res.status === 401)) return;
    } catch {
      // not accepting connections yet
    }
    await sleep(100);
  }
  throw new Error(`GET /v2/ did not answer 200 within ${START_TIMEOUT_MS} ms`);
}

/** A port that was free a moment ago on 127.0.0.1. */
export function findFreePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolvePromise(port) : reject(new Error('could not read bound port'))));
    });
  });
}
