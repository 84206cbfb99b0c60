/**
 * Where `berth login --oidc` and docker-credential-berth get a workload's OIDC token: GitHub
 * Actions' ID-token endpoint (served here by the loopback test issuer, as a job sees it), a file,
 * an environment variable. Each failure is one line saying what to fix.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatOidcSource, OidcSourceError, parseOidcSource, readOidcToken } from '../../src/client/oidc-sources.js';
import { startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.js';

function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('OIDC token sources', () => {
  let issuer: OidcIssuer;
  let dir = '';
  let actionsEnv: NodeJS.ProcessEnv = {};

  before(async () => {
    issuer = await startOidcIssuer();
    dir = await mkdtemp(join(tmpdir(), 'berth-oidc-sources-'));
    actionsEnv = { ACTIONS_ID_TOKEN_REQUEST_URL: issuer.actionsTokenUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: issuer.actionsRequestToken };
  });
  after(async () => {
    await issuer.stop();
    await rm(dir, { recursive: true, force: true });
  });

  describe('--oidc SOURCE', () => {
    it("github asks for the registry's advertised audience unless --audience says otherwise", () => {
      assert.deepEqual(parseOidcSource('github'), { type: 'github', audience: undefined });
      assert.deepEqual(parseOidcSource('github', { audience: 'https://reg.example.com' }), { type: 'github', audience: 'https://reg.example.com' });
    });

    it('file:PATH is made absolute (the credential helper reads it from another directory)', () => {
      assert.deepEqual(parseOidcSource('file:token', { cwd: '/work/job' }), { type: 'file', path: '/work/job/token' });
      assert.deepEqual(parseOidcSource('file:/var/run/secrets/tokens/berth'), { type: 'file', path: '/var/run/secrets/tokens/berth' });
    });

    it('env:VAR names a variable', () => {
      assert.deepEqual(parseOidcSource('env:CI_JOB_JWT_V2'), { type: 'env', variable: 'CI_JOB_JWT_V2' });
    });

    it('formats back to what --oidc takes', () => {
      for (const spec of ['github', 'file:/t/token', 'env:TOKEN']) assert.equal(formatOidcSource(parseOidcSource(spec)), spec);
    });

    it('refuses an unknown source, an empty path or variable, and --audience off github', () => {
      assert.throws(() => parseOidcSource('gitlab'), /^OidcSourceError: unknown --oidc source "gitlab": use github, file:PATH or env:VAR$/);
      assert.throws(() => parseOidcSource('file:'), /--oidc file: needs a path/);
      assert.throws(() => parseOidcSource('env:'), /--oidc env: needs an environment variable name/);
      assert.throws(() => parseOidcSource('env:NOT-A-NAME'), /--oidc env: needs an environment variable name/);
      assert.throws(() => parseOidcSource('file:/t', { audience: 'x' }), /--audience applies to --oidc github only/);
      assert.throws(() => parseOidcSource('github', { audience: ' ' }), /--audience must not be empty/);
    });
  });

  describe('github', () => {
    it('GETs $ACTIONS_ID_TOKEN_REQUEST_URL with &audience= and "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN"', async () => {
      const seen: Array<{ url: string; authorization: string | null }> = [];
      const spy: typeof fetch = async (input, init) => {
        seen.push({ url: String(input), authorization: new Headers(init?.headers).get('authorization') });
        return fetch(input, init);
      };
      const token = await readOidcToken({ type: 'github', audience: 'berth' }, { env: actionsEnv, fetch: spy });
      assert.equal(seen.length, 1);
      const url = new URL(seen[0]?.url ?? '');
      assert.equal(url.searchParams.get('api-version'), '2.0', 'the query GitHub gives is kept');
      assert.equal(url.searchParams.get('audience'), 'berth');
      assert.equal(seen[0]?.authorization, `bearer ${issuer.actionsRequestToken}`);
      assert.equal(claims(token)['iss'], issuer.issuer);
      assert.equal(claims(token)['aud'], 'berth');
    });

    it('asks for another audience when told', async () => {
      const token = await readOidcToken({ type: 'github', audience: 'https://reg.example.com' }, { env: actionsEnv });
      assert.equal(claims(token)['aud'], 'https://reg.example.com');
    });

    it('without its own audience, asks for the one the registry advertises (the legacy berth for one that advertises none)', async () => {
      const advertised = await readOidcToken({ type: 'github', audience: undefined }, { env: actionsEnv, advertisedAudience: 'urn:berth:reg-a' });
      assert.equal(claims(advertised)['aud'], 'urn:berth:reg-a');
      const own = await readOidcToken({ type: 'github', audience: 'https://reg.example.com' }, { env: actionsEnv, advertisedAudience: 'urn:berth:reg-a' });
      assert.equal(claims(own)['aud'], 'https://reg.example.com', '--audience wins');
      assert.equal(claims(await readOidcToken({ type: 'github', audience: undefined }, { env: actionsEnv }))['aud'], 'berth');
    });

    it('outside an Actions job with id-token: write, says to add the permission', async () => {
      await assert.rejects(
        readOidcToken({ type: 'github', audience: 'berth' }, { env: {} }),
        (err: Error) =>
          err instanceof OidcSourceError &&
          err.message ===
            '--oidc github needs a GitHub Actions job allowed to request ID tokens (ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN not set): add `permissions: id-token: write` to the workflow or job',
      );
      await assert.rejects(
        readOidcToken({ type: 'github', audience: 'berth' }, { env: { ACTIONS_ID_TOKEN_REQUEST_URL: issuer.actionsTokenUrl } }),
        /\(ACTIONS_ID_TOKEN_REQUEST_TOKEN not set\): add `permissions: id-token: write`/,
      );
    });

    it("passes on GitHub's refusal", async () => {
      await assert.rejects(
        readOidcToken({ type: 'github', audience: 'berth' }, { env: { ...actionsEnv, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'wrong' } }),
        /^OidcSourceError: GitHub refused the ID-token request \(HTTP 401: bad request token\)/,
      );
    });

    it('never sends the request token over plain HTTP off loopback, and says when the endpoint is down', async () => {
      await assert.rejects(
        readOidcToken(
          { type: 'github', audience: 'berth' },
          { env: { ...actionsEnv, ACTIONS_ID_TOKEN_REQUEST_URL: 'http://actions.example.com/token?api-version=2.0' } },
        ),
        /refusing to send ACTIONS_ID_TOKEN_REQUEST_TOKEN to http:\/\/actions\.example\.com over plain HTTP/,
      );
      const down = await startOidcIssuer();
      const url = down.actionsTokenUrl;
      await down.stop();
      await assert.rejects(
        readOidcToken({ type: 'github', audience: 'berth' }, { env: { ...actionsEnv, ACTIONS_ID_TOKEN_REQUEST_URL: url } }),
        /^OidcSourceError: cannot reach GitHub's ID-token endpoint http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED$/,
      );
    });
  });

  describe('file:PATH', () => {
    it('reads the token anew each time, without its trailing newline', async () => {
      const path = join(dir, 'token');
      const first = await issuer.kubernetes({ namespace: 'prod', serviceAccount: 'web' });
      await writeFile(path, `${first}\n`);
      assert.equal(await readOidcToken({ type: 'file', path }, { env: {} }), first);
      const second = await issuer.kubernetes({ namespace: 'prod', serviceAccount: 'web' });
      await writeFile(path, second);
      assert.equal(await readOidcToken({ type: 'file', path }, { env: {} }), second);
    });

    it('says why a file gives no token: missing, a directory, empty, not a JWT', async () => {
      const read = (path: string) => readOidcToken({ type: 'file', path }, { env: {} });
      await assert.rejects(read(join(dir, 'missing')), new RegExp(`^OidcSourceError: cannot read the OIDC token file ${dir}/missing: no such file$`));
      await mkdir(join(dir, 'a-dir'));
      await assert.rejects(read(join(dir, 'a-dir')), /cannot read the OIDC token file .*a-dir: it is a directory$/);
      await writeFile(join(dir, 'empty'), '\n');
      await assert.rejects(read(join(dir, 'empty')), /the OIDC token file .*empty is empty$/);
      await writeFile(join(dir, 'garbage'), 'not-a-token');
      await assert.rejects(read(join(dir, 'garbage')), /the OIDC token file .*garbage does not hold an OIDC token \(a JWT with an issuer\)$/);
    });

    it('says so when the file may not be read', { skip: process.getuid?.() === 0 ? 'root reads any file' : false }, async () => {
      const path = join(dir, 'secret');
      await writeFile(path, 'x', { mode: 0o000 });
      await assert.rejects(readOidcToken({ type: 'file', path }, { env: {} }), /cannot read the OIDC token file .*secret: permission denied$/);
    });
  });

  describe('env:VAR', () => {
    it('reads the variable', async () => {
      const token = await issuer.mint({ sub: 'project_path:acme/app:ref_type:branch:ref:main', aud: 'berth' });
      assert.equal(await readOidcToken({ type: 'env', variable: 'CI_JOB_JWT' }, { env: { CI_JOB_JWT: token } }), token);
    });

    it('says when it is unset or holds no token', async () => {
      await assert.rejects(
        readOidcToken({ type: 'env', variable: 'CI_JOB_JWT' }, { env: {} }),
        /^OidcSourceError: the environment variable CI_JOB_JWT is not set or empty \(it should hold the OIDC token\)$/,
      );
      await assert.rejects(readOidcToken({ type: 'env', variable: 'CI_JOB_JWT' }, { env: { CI_JOB_JWT: 'a.b.c' } }), /CI_JOB_JWT does not hold an OIDC token/);
    });
  });
});
