/**
 * The `berth` command's first two lines (src/bin/berth.ts) are run by the shell, as the kernel runs
 * them for `berth …`: `berth serve` must get the V8 flags and the allocator setting of
 * docs/operations.md "Memory", a client command a plain `node` (any V8 flag makes Node drop its
 * code cache). Observed in /proc: the shell execs node, so the process keeps its pid.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { BERTH_CLI } from '../support/berth-process.js';

const serverFlags = ['--max-semi-space-size=2', '--heap-growing-percent=200'];

/** The argv of `pid` once the shell has exec'd node (its first word is node's), with its environment. */
async function asNode(pid: number): Promise<{ argv: string[]; env: string[] }> {
  for (let i = 0; i < 600; i++) {
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean);
    if (argv[0] !== undefined && /(^|\/)node$/.test(argv[0])) {
      return { argv, env: (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0') };
    }
    await sleep(50);
  }
  throw new Error(`process ${pid} never became node`);
}

describe('the berth command as the shell runs it', () => {
  let dir = '';
  const children: ChildProcess[] = [];
  // Without the variable in the parent, only the first line's setting can put it in the child.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'MALLOC_MMAP_THRESHOLD_'));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-entry-'));
  });
  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('berth serve runs node with the memory flags and the allocator setting, and stops on SIGTERM', async () => {
    const child = spawn('/bin/sh', [BERTH_CLI, 'serve', '--addr', '127.0.0.1:0', '--data', join(dir, 'data')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let output = '';
    const listening = new Promise<string>((resolve) =>
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const url = /"url":"([^"]+)"[^\n]*"msg":"listening"/.exec(output)?.[1];
        if (url !== undefined) resolve(url);
      }),
    );
    const { argv, env: childEnv } = await asNode(child.pid!);
    assert.deepEqual(argv.slice(1), [...serverFlags, BERTH_CLI, 'serve', '--addr', '127.0.0.1:0', '--data', join(dir, 'data')]);
    assert.ok(childEnv.includes('MALLOC_MMAP_THRESHOLD_=1048576'), 'the allocator setting');
    // Once it has answered a request, its signal handlers are in place (they are installed right
    // after the "listening" line): SIGTERM is a graceful stop.
    const health = await fetch(`${await listening}/healthz`);
    assert.equal(health.status, 200);
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    assert.deepEqual(await exited, [0, null]);
  });

  it('a client command runs a plain node', async () => {
    const child = spawn('/bin/sh', [BERTH_CLI, 'login', '127.0.0.1:9', '--username', 'u', '--password-stdin'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // It waits for the password on stdin, so it is still there to be looked at.
    const { argv, env: childEnv } = await asNode(child.pid!);
    assert.deepEqual(argv.slice(1), [BERTH_CLI, 'login', '127.0.0.1:9', '--username', 'u', '--password-stdin']);
    assert.ok(!childEnv.some((v) => v.startsWith('MALLOC_MMAP_THRESHOLD_=')));
    const exited = once(child, 'exit');
    child.stdin!.end('password\n');
    assert.deepEqual(await exited, [1, null]);
    assert.match(stderr, /cannot reach http:\/\/127\.0\.0\.1:9/, 'the command ran');
  });
});
