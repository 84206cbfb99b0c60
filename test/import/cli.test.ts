/**
 * `berth import` and `berth imports` as a real process against a real Berth: progress lines when
 * not on a terminal, the result on stdout, failures as one line that says what to do next.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ProgressReporter, bar, failureLine, formatBytes, type ImportJobView } from '../../src/cli/import.js';
import { ok, runCli } from '../admin/helpers.js';
import { ownerName, ownerPassword, type TestServer } from '../support/server.js';
import { basic, bearerFor, makeImage, pushImage } from './fixtures.js';
import { startImportServer } from './helpers.js';
import { startHostileRegistry, type HostileRegistry } from './hostile-registry.js';

describe('berth import (CLI)', () => {
  let source: HostileRegistry;
  let target: TestServer;
  let home: string;
  const image = makeImage({ platforms: 2, layers: 2, layerBytes: 64 * 1024 });
  const env = () => ({ DOCKER_CONFIG: home, BERTH_IMPORT_POLL_MS: '50', BERTH_REGISTRY: new URL(target.url).host });
  const asOwner = ['--username', ownerName, '--password-stdin'];

  before(async () => {
    source = await startHostileRegistry();
    source.serve('vendor/app', image, ['1.0']);
    target = await startImportServer({ auth: true });
    home = await mkdtemp(join(tmpdir(), 'berth-import-cli-'));
  });
  after(async () => {
    await source.stop();
    await target.stop();
    await rm(home, { recursive: true, force: true });
  });

  const lastLine = (text: string) => text.trim().split('\n').at(-1) ?? '';

  it('imports and waits, printing progress lines and then the result', async () => {
    const result = ok(
      await runCli(['import', `${source.host}/vendor/app:1.0`, '--image', 'team/app:1.0', '--image', 'team/app:stable', ...asOwner], {
        env: env(),
        stdin: `${ownerPassword}\n`,
      }),
    );
    assert.match(result.stdout, /^import [0-9a-f-]{36}: succeeded\n/);
    assert.match(result.stdout, new RegExp(`digest +${image.root.digest}`));
    assert.match(result.stdout, /copied +3 manifest\(s\), 6 blob\(s\)/);
    assert.match(result.stderr, /: queued\n/);
    assert.match(result.stderr, /: succeeded 100% /);
    assert.equal((await target.app.metadata.manifests.getByTag('team/app', 'stable'))?.digest, image.root.digest);
  });

  it('fails NoForce on an existing tag with one line naming --force, and --force overwrites', async () => {
    const other = makeImage({ platforms: 0 });
    await pushImage(target.url, 'held/app', '1.0', other, await bearerFor(target.url, ownerName, ownerPassword, 'repository:held/app:pull,push'));
    const failed = await runCli(['import', `${source.host}/vendor/app:1.0`, '--image', 'held/app:1.0', ...asOwner], {
      env: env(),
      stdin: `${ownerPassword}\n`,
    });
    assert.equal(failed.code, 1);
    assert.match(lastLine(failed.stderr), /^berth: import [0-9a-f-]{36} failed \(TAG_EXISTS\): held\/app:1\.0 already exists .*--force/);
    ok(
      await runCli(['import', `${source.host}/vendor/app:1.0`, '--image', 'held/app:1.0', '--force', ...asOwner], { env: env(), stdin: `${ownerPassword}\n` }),
    );
    assert.equal((await target.app.metadata.manifests.getByTag('held/app', '1.0'))?.digest, image.root.digest);
  });

  it('passes source credentials from stdin, and on refusal says how to retry', async () => {
    source.requireAuthorization = basic('vendor', 'vendor-password');
    try {
      // No --password-stdin for Berth here: log in once, as users do.
      ok(await runCli(['login', new URL(target.url).host, '--username', ownerName, '--password-stdin'], { env: env(), stdin: `${ownerPassword}\n` }));
      const denied = await runCli(
        ['import', `${source.host}/vendor/app:1.0`, '--image', 'secret/app:1.0', '--source-username', 'vendor', '--source-password-stdin'],
        { env: env(), stdin: 'wrong\n' },
      );
      assert.equal(denied.code, 1);
      const line = lastLine(denied.stderr);
      assert.match(line, /failed \(UPSTREAM_DENIED\): .*credentials.*berth imports retry [0-9a-f-]{36}` with --source-username/);
      const id = /retry ([0-9a-f-]{36})/.exec(line)?.[1] as string;
      assert.equal(denied.stderr.includes('wrong\n') || denied.stdout.includes('wrong'), false);

      const retried = ok(
        await runCli(['imports', 'retry', id, '--source-username', 'vendor', '--source-password-stdin'], { env: env(), stdin: 'vendor-password\n' }),
      );
      assert.match(retried.stdout, new RegExp(`^import ${id}: succeeded`));

      const listed = ok(await runCli(['imports', 'list', '--status', 'succeeded'], { env: env() }));
      assert.match(listed.stdout, /^ID +STATUS +SOURCE/);
      assert.match(listed.stdout, new RegExp(`${id} +succeeded +${source.host.replace(/\./g, '\\.')}/vendor/app:1\\.0 +secret/app:1\\.0`));
      const shown = ok(await runCli(['imports', 'show', id, '--json'], { env: env() }));
      const view = JSON.parse(shown.stdout) as ImportJobView;
      assert.equal(view.result?.digest, image.root.digest);
      assert.equal(shown.stdout.includes('vendor-password'), false);
    } finally {
      source.requireAuthorization = undefined;
    }
  });

  it('queues without waiting with --no-wait', async () => {
    const result = ok(await runCli(['import', `${source.host}/vendor/app:1.0`, '--repository', 'nowait/app', '--no-wait'], { env: env() }));
    assert.match(result.stdout, /^queued import [0-9a-f-]{36}: follow it with `berth imports show [0-9a-f-]{36}`\n$/);
  });

  it('refuses bad references and options with one line before contacting anyone', async () => {
    for (const [args, message] of [
      [['import', 'Not/A:Valid Ref'], /invalid/],
      [['import', 'alpine', '--image', `x@sha256:${'a'.repeat(64)}`], /--image .*REPO:TAG/],
      [['import', 'alpine', '--source-username', 'u'], /--source-password-stdin go together/],
      [['import', 'alpine', '--source-identity', 'client'], /--source-token-file go together/],
      [['imports', 'show', 'no-such-job'], /no import job .*berth imports list/],
    ] as Array<[string[], RegExp]>) {
      const result = await runCli(args, { env: env() });
      assert.equal(result.code, 1, `${args.join(' ')}: ${result.stdout}`);
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    }
  });

  it('reads --source-token-file for a federated source', async () => {
    const file = join(home, 'token');
    await writeFile(file, '');
    const result = await runCli(['import', `${source.host}/vendor/app:1.0`, '--source-identity', 'client', '--source-token-file', file], { env: env() });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /--source-token-file .* is empty/);
  });
});

describe('progress rendering', () => {
  const job = (over: Partial<ImportJobView>): ImportJobView => ({
    id: 'j',
    status: 'running',
    source: { registry: 'r.example', repository: 'a', reference: '1' },
    targets: [{ repository: 'b', tags: ['1'] }],
    mode: 'NoForce',
    includeReferrers: false,
    requestedBy: null,
    attempts: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    startedAt: null,
    finishedAt: null,
    retryAt: null,
    progress: {
      manifestsDone: 0,
      manifestsTotal: 3,
      blobsDone: 1,
      blobsTotal: 4,
      bytesDone: 512 * 1024,
      bytesTotal: 2 * 1024 * 1024,
      targetsDone: 0,
      targetsTotal: 1,
    },
    result: null,
    error: null,
    credentials: 'server',
    ...over,
  });

  it('draws a bar on a terminal, redrawing the same line', () => {
    let out = '';
    const reporter = new ProgressReporter({ write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream, true, 'r.example/a:1 → b:1');
    reporter.update(job({}));
    reporter.update(job({}));
    reporter.done();
    assert.equal(out, `\r\x1b[2Kr.example/a:1 → b:1  [######------------------] 25% 512 KiB/2.0 MiB, blobs 1/4, manifests 0/3\n`);
  });

  it('prints a line per status change and per tenth of the bytes otherwise', () => {
    let out = '';
    const reporter = new ProgressReporter({ write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream, false, '');
    reporter.update(job({ status: 'queued', progress: null }));
    reporter.update(job({}));
    reporter.update(job({ progress: { ...job({}).progress!, bytesDone: 600 * 1024 } }));
    reporter.update(job({ progress: { ...job({}).progress!, bytesDone: 1100 * 1024 } }));
    assert.deepEqual(
      out
        .trim()
        .split('\n')
        .map((l) => l.split(' ').slice(0, 3).join(' ')),
      ['import j: queued', 'import j: running', 'import j: running'],
    );
  });

  it('formats sizes, bars and failure lines', () => {
    assert.deepEqual([formatBytes(10), formatBytes(2048), formatBytes(3.5 * 1024 ** 3)], ['10 B', '2.0 KiB', '3.5 GiB']);
    assert.equal(bar(0.5, 4), '[##--]');
    assert.match(
      failureLine(job({ status: 'failed', error: { code: 'UPSTREAM_UNREACHABLE', message: 'cannot reach r.example' } })),
      /`berth imports retry j` resumes it$/,
    );
    assert.doesNotMatch(failureLine(job({ status: 'failed', error: { code: 'TAG_EXISTS', message: 'b:1 already exists: use --force' } })), /retry/);
  });
});
