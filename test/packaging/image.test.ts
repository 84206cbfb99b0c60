/**
 * Berth hosts its own image: the Containerfile is built with buildah, the image pushed to a Berth,
 * pulled back into a fresh store, inspected (non-root, entrypoint, production dependencies only)
 * and run: the pulled image serves a registry that answers /readyz.
 *
 * Without network access the public base images cannot be pulled, so this test assembles two
 * local stand-ins from this machine's Node.js (the binary and the shared libraries `ldd` lists,
 * and npm and the libraries of the bundler's native addon for the build stage) with `buildah from scratch`, at the paths the real ones use
 * (node:20-bookworm-slim's /usr/local/bin/node and npm, distroless' /nodejs/bin/node), and passes
 * them as the Containerfile's BUILD_IMAGE and RUNTIME_IMAGE. Everything else is the Containerfile
 * as shipped. RUN steps use buildah's chroot isolation (no user namespaces needed).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { cp, mkdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ClientBox } from '../support/client-box.js';
import { REPO_ROOT } from '../support/berth-process.js';
import { described, exec } from '../support/exec.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';

const buildBase = 'localhost/berth-test/node-build:20';
const runtimeBase = 'localhost/berth-test/node-runtime:20';

describe('the container image', () => {
  let server: TestServer;
  let builder: ClientBox;
  let puller: ClientBox;
  let host = '';
  const cleanup: Array<() => Promise<void>> = [];

  const buildah = async (box: ClientBox, args: string[]) => {
    const result = await box.run('buildah', args);
    assert.equal(result.code, 0, described(`buildah ${args.slice(0, 2).join(' ')}`, result));
    return result.stdout.trim();
  };

  before(async () => {
    server = await startTestServer({ auth: true });
    host = new URL(server.url).host;
    builder = await ClientBox.create(host, 'imgb');
    puller = await ClientBox.create(host, 'imgp');
    await assembleBase(builder, buildBase, '/usr/local/bin/node', true);
    await assembleBase(builder, runtimeBase, '/nodejs/bin/node', false);
  });
  after(async () => {
    for (const step of cleanup.reverse()) await step();
    await builder?.dispose();
    await puller?.dispose();
    await server?.stop();
  });

  /** A base image FROM scratch: this machine's node at `nodePath` with its shared libraries (and npm). */
  async function assembleBase(box: ClientBox, name: string, nodePath: string, withNpm: boolean): Promise<void> {
    const container = await buildah(box, ['from', 'scratch']);
    await buildah(box, ['copy', container, process.execPath, nodePath]);
    // The build stage also runs the console's bundler, whose native addon (rollup's) links a library
    // node does not (librt): a real glibc image has every one of them.
    const binaries = withNpm ? [process.execPath, ...nativeAddons(join(REPO_ROOT, 'node_modules', '@rollup'))] : [process.execPath];
    const libraries = new Map<string, string>();
    for (const binary of binaries) for (const library of await sharedLibraries(binary)) libraries.set(library.path, library.resolved);
    for (const [path, resolved] of libraries) await buildah(box, ['copy', container, resolved, path]);
    if (withNpm) {
      const npm = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm');
      assert.ok(existsSync(join(npm, 'bin', 'npm-cli.js')), `npm next to this node (${npm})`);
      await buildah(box, ['copy', container, npm, '/usr/local/lib/node_modules/npm']);
    }
    await buildah(box, ['config', '--env', 'PATH=/usr/local/bin:/nodejs/bin:/usr/bin:/bin', container]);
    await buildah(box, ['commit', '--quiet', '--rm', container, name]);
  }

  it('builds, is pushed to a Berth, pulled back, inspected and run', async () => {
    const reference = `${host}/berth/berth:test`;
    const context = await buildContext();
    if (context !== REPO_ROOT) cleanup.push(() => rm(context, { recursive: true, force: true }));
    await buildah(builder, [
      'bud',
      '--isolation',
      'chroot',
      '--pull-never',
      '--quiet',
      '--build-arg',
      `BUILD_IMAGE=${buildBase}`,
      '--build-arg',
      `RUNTIME_IMAGE=${runtimeBase}`,
      '--tag',
      reference,
      '--file',
      join(REPO_ROOT, 'Containerfile'),
      context,
    ]);
    const creds = `${ownerName}:${ownerPassword}`;
    await buildah(builder, ['push', '--tls-verify=false', '--creds', creds, reference, `docker://${reference}`]);

    // What the registry holds: the manifest and the image configuration.
    const config = JSON.parse(
      (
        await exec(
          'skopeo',
          ['--policy', puller.policyFile, 'inspect', '--config', '--tls-verify=false', '--creds', creds, `docker://${reference}`],
          puller.env,
        )
      ).stdout,
    ) as {
      config: {
        User?: string;
        Entrypoint?: string[];
        Cmd?: string[];
        Env?: string[];
        ExposedPorts?: Record<string, unknown>;
        Volumes?: Record<string, unknown>;
      };
    };
    assert.equal(config.config.User, '65532:65532', 'runs as a non-root user');
    assert.deepEqual(
      config.config.Entrypoint,
      ['/nodejs/bin/node', '--max-semi-space-size=2', '--heap-growing-percent=200', '/app/dist/bin/berth.js'],
      "with the young generation capped and the old generation's growth fixed (docs/operations.md, Memory)",
    );
    assert.deepEqual(config.config.Cmd, ['serve']);
    assert.ok(config.config.Env?.includes('BERTH_ADDR=0.0.0.0:5000'));
    assert.ok(config.config.Env?.includes('MALLOC_MMAP_THRESHOLD_=1048576'), 'large buffers in mappings of their own (docs/operations.md, Memory)');
    assert.ok(config.config.ExposedPorts?.['5000/tcp']);
    assert.ok(config.config.Volumes?.['/data']);

    // Pulled back into a store that never saw the build.
    await buildah(puller, ['pull', '--quiet', '--tls-verify=false', '--creds', creds, `docker://${reference}`]);
    const container = await buildah(puller, ['from', '--pull-never', reference]);
    cleanup.push(async () => void (await puller.run('buildah', ['rm', container])));
    const inside = (script: string) =>
      puller.run('buildah', ['run', '--isolation', 'chroot', '--user', '65532:65532', container, '--', '/nodejs/bin/node', '-e', script]);
    const dependencies = await inside(
      `const r = (m) => { try { require.resolve(m, { paths: ['/app'] }); return true } catch { return false } };
       console.log(JSON.stringify({ kysely: r('kysely'), sqlite: r('better-sqlite3'), typescript: r('typescript'), tsx: r('tsx'), eslint: r('eslint'),
         declarations: require('fs').readdirSync('/app/node_modules/kysely/dist/esm').some((f) => f.endsWith('.d.ts')) }))`,
    );
    assert.equal(dependencies.code, 0, described('node in the image', dependencies));
    assert.deepEqual(JSON.parse(dependencies.stdout), { kysely: true, sqlite: true, typescript: false, tsx: false, eslint: false, declarations: false });
    // The web console's front end is built into the image (served at / when the token service is on).
    const web = await inside(`const fs = require('fs'); const html = fs.readFileSync('/app/dist/web/index.html', 'utf8');
       console.log(JSON.stringify({ app: html.includes('<div id="app"></div>'), assets: fs.readdirSync('/app/dist/web/assets').some((f) => f.endsWith('.js')) }))`);
    assert.equal(web.code, 0, described('node in the image', web));
    assert.deepEqual(JSON.parse(web.stdout), { app: true, assets: true });

    // The pulled image runs a registry (chroot isolation shares this machine's network).
    const port = await freePort();
    const serving = spawn(
      'buildah',
      [
        'run',
        '--isolation',
        'chroot',
        '--user',
        '65532:65532',
        '--env',
        `BERTH_ADDR=127.0.0.1:${port}`,
        '--env',
        'BERTH_AUTH_ENABLED=false',
        container,
        '--',
        '/nodejs/bin/node',
        '/app/dist/bin/berth.js',
        'serve',
      ],
      { env: puller.env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    cleanup.push(() => stop(serving));
    let output = '';
    serving.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    serving.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const ready = await waitForReady(`http://127.0.0.1:${port}`, serving, () => output);
    assert.equal(ready.status, 'ready', JSON.stringify(ready));
    assert.match(output, /"msg":"listening"/, 'JSON logs when stdout is not a terminal');
  });
});

/** The native addons (`*.node`) of the packages under `dir` (one level of packages). */
function nativeAddons(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((pkg) =>
    readdirSync(join(dir, pkg))
      .filter((file) => file.endsWith('.node'))
      .map((file) => join(dir, pkg, file)),
  );
}

/** The shared libraries a binary loads (`ldd`), with the files they resolve to. */
async function sharedLibraries(binary: string): Promise<Array<{ path: string; resolved: string }>> {
  const result = await exec('ldd', [binary], process.env);
  assert.equal(result.code, 0, described('ldd', result));
  const libraries: Array<{ path: string; resolved: string }> = [];
  for (const line of result.stdout.split('\n')) {
    const linked = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (!linked?.[1]) continue;
    const { realpath } = await import('node:fs/promises');
    libraries.push({ path: linked[1], resolved: await realpath(linked[1]) });
  }
  assert.ok(
    libraries.some((l) => /ld-linux/.test(l.path)),
    'the dynamic loader is among them',
  );
  return libraries;
}

/**
 * The build context: the checkout itself when node_modules is a directory in it; otherwise (a
 * worktree whose node_modules is a symbolic link) a copy with the link followed, since a context
 * cannot send what a link points to.
 */
async function buildContext(): Promise<string> {
  if (!lstatSync(join(REPO_ROOT, 'node_modules')).isSymbolicLink()) return REPO_ROOT;
  const dir = join(REPO_ROOT, '..', `.berth-image-context-${process.pid}`);
  await mkdir(dir, { recursive: true });
  for (const entry of [
    'Containerfile',
    '.containerignore',
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    'tsconfig.build.json',
    'src',
    'console',
    'scripts',
  ]) {
    await cp(join(REPO_ROOT, entry), join(dir, entry), { recursive: true });
  }
  await cp(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), { recursive: true, dereference: true });
  return dir;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function waitForReady(base: string, child: ChildProcess, output: () => string): Promise<{ status: string }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) assert.fail(`the containerised berth exited ${child.exitCode}:\n${output()}`);
    try {
      const res = await fetch(`${base}/readyz`);
      if (res.status === 200) return (await res.json()) as { status: string };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) assert.fail(`the containerised berth never became ready:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}
