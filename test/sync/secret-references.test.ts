/**
 * An owner is not the host operator: a sync rule made through the API may reference server files
 * (`passwordFile`, `tokenFile`) only inside `secrets.fileDir` and environment variables only with
 * `secrets.envPrefix`, or the server would read any file or variable and send it, as a password,
 * to a source URL of the caller's choice. The "source" here is a capture server that asks for
 * Basic auth and records every Authorization header it is sent.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertError } from '../admin/helpers.js';
import type { TestServer } from '../support/server.js';
import { Api, startBerth, waitFor } from './helpers.js';

const hostSecret = 'the-host-operators-own-secret';
const allowedSecret = 'a-password-the-operator-placed';
const envSecret = 'a-password-in-an-allowed-variable';

interface Capture {
  url: string;
  /** Every Authorization header received, decoded when Basic. */
  seen: string[];
  stop(): Promise<void>;
}

async function startCapture(): Promise<Capture> {
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    const header = req.headers.authorization;
    if (header) seen.push(header.startsWith('Basic ') ? Buffer.from(header.slice(6), 'base64').toString('utf8') : header);
    res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="capture"', 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'no' }] }));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    stop: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

/** Runs a rule on demand and answers its reconcile error once the run has finished. */
async function runAndWaitForError(api: Api, rule: string): Promise<string> {
  const run = await api.post(`/sync/rules/${rule}/run`, {});
  assert.equal(run.status, 202, JSON.stringify(run.body));
  return waitFor(`the run of ${rule}`, async () => {
    const state = (await api.get(`/sync/rules/${rule}`)).body.state;
    return !state.reconciling && state.lastReconcileError ? String(state.lastReconcileError) : undefined;
  });
}

describe('sync rule secret references', () => {
  let root = '';
  let allowed = '';
  let capture: Capture;
  const rule = (name: string, credentials: Record<string, unknown>) => ({
    name,
    source: { url: capture.url, credentials },
    repositories: ['vendor/app'],
  });

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'berth-secret-refs-'));
    allowed = join(root, 'allowed');
    await mkdir(allowed);
    await writeFile(join(root, 'host-secret'), `${hostSecret}\n`);
    await writeFile(join(allowed, 'vendor-password'), `${allowedSecret}\n`);
    // Symlinks inside the directory that lead out of it: to a file that exists and to one that does not.
    await symlink(join(root, 'host-secret'), join(allowed, 'leads-out'));
    await symlink(join(root, 'no-such-file'), join(allowed, 'leads-nowhere'));
    capture = await startCapture();
  });
  after(async () => {
    await capture?.stop();
    await rm(root, { recursive: true, force: true });
  });

  describe('on a server whose operator allowed no references', () => {
    let server: TestServer;
    let api: Api;
    before(async () => {
      server = await startBerth();
      api = await Api.asOwner(server.url);
    });
    after(async () => server?.stop());

    it('refuses file and variable references with 400 naming the setting, and creates nothing', async () => {
      assertError(
        await api.post('/sync/rules', rule('file', { kind: 'basic', username: 'u', passwordFile: join(root, 'host-secret') })),
        400,
        'UNSUPPORTED',
        /passwordFile: .*secrets\.fileDir/,
      );
      assertError(
        await api.post('/sync/rules', rule('env', { kind: 'basic', username: 'u', passwordEnv: 'PATH' })),
        400,
        'UNSUPPORTED',
        /passwordEnv: .*secrets\.envPrefix/,
      );
      assertError(
        await api.post('/sync/rules', rule('oidc', { kind: 'oidc', clientId: 'c', tokenFile: join(root, 'host-secret') })),
        400,
        'UNSUPPORTED',
        /tokenFile: .*secrets\.fileDir/,
      );
      assert.equal(
        (await api.post('/sync/rules', rule('inline', { kind: 'basic', username: 'u', password: 'p' }))).status,
        201,
        'inline passwords need no setting',
      );
      assertError(
        await api.patch('/sync/rules/inline', { source: { credentials: { kind: 'basic', username: 'u', passwordFile: join(root, 'host-secret') } } }),
        400,
        'UNSUPPORTED',
        /secrets\.fileDir/,
      );
      assert.deepEqual(
        (await api.get('/sync/rules')).body.rules.map((r: { name: string }) => r.name),
        ['inline'],
      );
      assert.ok(!capture.seen.some((s) => s.includes(hostSecret)));
    });
  });

  describe('on a server with secrets.fileDir and secrets.envPrefix', () => {
    let server: TestServer;
    let api: Api;
    before(async () => {
      process.env['BERTH_SYNC_TEST_PASSWORD'] = envSecret;
      server = await startBerth({ secrets: { fileDir: allowed, envPrefix: 'BERTH_SYNC_TEST_' } });
      api = await Api.asOwner(server.url);
    });
    after(async () => {
      delete process.env['BERTH_SYNC_TEST_PASSWORD'];
      await server?.stop();
    });

    it('refuses paths out of the directory alike whether the file there exists or not', async () => {
      const answers: string[] = [];
      for (const passwordFile of [join(root, 'host-secret'), join(root, 'no-such-file'), '../host-secret', `${allowed}/../host-secret`, '/etc/passwd', '.']) {
        const res = await api.post('/sync/rules', rule('outside', { kind: 'basic', username: 'u', passwordFile }));
        assertError(res, 400, 'UNSUPPORTED', /passwordFile must name a file inside secrets\.fileDir/);
        answers.push(JSON.stringify(res.body));
      }
      assert.equal(new Set(answers).size, 1, `one answer for every outside path: ${answers.join('\n')}`);
      assertError(
        await api.post('/sync/rules', rule('env', { kind: 'basic', username: 'u', passwordEnv: 'PATH' })),
        400,
        'UNSUPPORTED',
        /secrets\.envPrefix \(BERTH_SYNC_TEST_\)/,
      );
      assertError(
        await api.post('/sync/rules', rule('env', { kind: 'basic', username: 'u', passwordEnv: 'BERTH_SYNC_TEST_' })),
        400,
        'UNSUPPORTED',
        /secrets\.envPrefix/,
      );
      assert.deepEqual((await api.get('/sync/rules')).body.rules, []);
    });

    it('sends a password read from a file in the directory (by relative or absolute name) or from an allowed variable', async () => {
      for (const [name, credentials, expected] of [
        ['relative', { kind: 'basic', username: 'r', passwordFile: 'vendor-password' }, `r:${allowedSecret}`],
        ['absolute', { kind: 'basic', username: 'a', passwordFile: join(allowed, 'vendor-password') }, `a:${allowedSecret}`],
        ['variable', { kind: 'basic', username: 'v', passwordEnv: 'BERTH_SYNC_TEST_PASSWORD' }, `v:${envSecret}`],
      ] as const) {
        const created = await api.post('/sync/rules', rule(name, credentials));
        assert.equal(created.status, 201, JSON.stringify(created.body));
        assert.match(await runAndWaitForError(api, name), /refused|denied|credentials/i, 'the capture server refuses whatever it is sent');
        assert.ok(capture.seen.includes(expected), `${name}: the source received ${expected}`);
      }
    });

    it('never reads through a symlink out of the directory, and fails alike whether its target exists', async () => {
      const errors: string[] = [];
      for (const [name, file] of [
        ['leads-out', 'leads-out'],
        ['leads-nowhere', 'leads-nowhere'],
      ] as const) {
        const created = await api.post('/sync/rules', rule(name, { kind: 'basic', username: 'u', passwordFile: file }));
        assert.equal(created.status, 201, 'the name is inside the directory; only reading it shows where it leads');
        errors.push((await runAndWaitForError(api, name)).replace(file, 'NAME'));
      }
      const oidc = await api.post('/sync/rules', rule('oidc-out', { kind: 'oidc', clientId: 'c', tokenFile: 'leads-out' }));
      assert.equal(oidc.status, 201);
      const oidcError = await runAndWaitForError(api, 'oidc-out');
      assert.match(oidcError, /tokenFile "leads-out": there is no readable file of that name in secrets\.fileDir/);
      assert.equal(errors[0], errors[1], 'the same answer whether the outside file exists or not');
      assert.match(errors[0] ?? '', /passwordFile "NAME": there is no readable file of that name in secrets\.fileDir/);
      assert.ok(!capture.seen.some((s) => s.includes(hostSecret)), 'the outside file never reached the source');
      const status = JSON.stringify((await api.get('/sync/rules')).body);
      assert.ok(!status.includes(hostSecret));
    });
  });
});
