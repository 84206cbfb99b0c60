/** `berth login`, `berth logout` and `berth token` against an in-process Berth, with their I/O captured. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import { CredentialStore } from '../../src/client/credential-store.js';
import { readDockerConfig } from '../../src/client/docker-config.js';
import { login, logout, type CliIo } from '../../src/cli/login.js';
import { token } from '../../src/cli/token.js';
import { basic } from '../auth/helpers.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';

const nullUser = '00000000-0000-0000-0000-000000000000';

interface Captured extends CliIo {
  out(): string;
  err(): string;
}

function io(env: NodeJS.ProcessEnv, stdin = ''): Captured {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  return { stdin: Readable.from([stdin]), stdout, stderr, env, out: () => out, err: () => err };
}

function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('berth login / logout / token', () => {
  let server: TestServer;
  let host = '';
  let dir = '';
  let env: NodeJS.ProcessEnv = {};

  before(async () => {
    server = await startTestServer({ auth: true });
    host = new URL(server.url).host;
    await server.app.auth.principals.createPrincipal('user', 'reader', { grants: [{ pattern: 'team/*', permission: 'pull' }], secret: 'reader-password-1' });
  });
  after(async () => server.stop());
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-login-'));
    env = { DOCKER_CONFIG: join(dir, 'docker'), BERTH_CONFIG_DIR: join(dir, 'berth') };
  });

  const loginAsOwner = async () => {
    const cli = io(env, `${ownerPassword}\n`);
    await login(host, { username: ownerName, passwordStdin: true }, cli);
    return cli;
  };

  describe('berth login', () => {
    it('prints "Login Succeeded" and stores only a refresh token as identitytoken in $DOCKER_CONFIG/config.json', async () => {
      const cli = await loginAsOwner();
      assert.equal(cli.out(), 'Login Succeeded\n');
      const entry = (await readDockerConfig(join(dir, 'docker', 'config.json'))).auths?.[host];
      assert.ok(entry?.identitytoken);
      assert.equal(Buffer.from(entry.auth ?? '', 'base64').toString(), `${nullUser}:`);
      assert.equal(claims(entry.identitytoken)['name'], ownerName);
      assert.ok(!(await readFile(join(dir, 'docker', 'config.json'), 'utf8')).includes(ownerPassword));
      // The stored token logs in as docker would send it: null-GUID user, token as password.
      const res = await fetch(`${server.url}/oauth2/token?service=berth&scope=repository:team/app:pull`, {
        headers: { Authorization: basic(nullUser, entry.identitytoken) },
      });
      assert.equal(res.status, 200);
    });

    it("stores into docker-credential-berth's file instead when config.json routes the registry to it", async () => {
      await mkdir(join(dir, 'docker'));
      await writeFile(join(dir, 'docker', 'config.json'), JSON.stringify({ credHelpers: { [host]: 'berth' } }));
      await loginAsOwner();
      assert.equal((await readDockerConfig(join(dir, 'docker', 'config.json'))).auths, undefined);
      assert.equal((await new CredentialStore(join(dir, 'berth', 'credentials.json')).get(host))?.username, nullUser);
    });

    it('logs in with the null-GUID user and a refresh token, storing a fresh refresh token', async () => {
      await loginAsOwner();
      const first = (await readDockerConfig(join(dir, 'docker', 'config.json'))).auths?.[host]?.identitytoken ?? '';
      const cli = io(env, first);
      await login(`http://${host}`, { username: nullUser, passwordStdin: true }, cli);
      assert.equal(cli.out(), 'Login Succeeded\n');
      const second = (await readDockerConfig(join(dir, 'docker', 'config.json'))).auths?.[host]?.identitytoken ?? '';
      assert.notEqual(second, first);
      assert.equal(claims(second)['name'], ownerName);
    });

    it('fails in one line on a wrong password, saying what to do, and stores nothing', async () => {
      await assert.rejects(login(host, { username: ownerName, passwordStdin: true }, io(env, 'wrong-password\n')), (err: Error) => {
        assert.equal(err.message, `login to ${host} failed: invalid username or password; check them and try again`);
        return true;
      });
      assert.deepEqual(await readDockerConfig(join(dir, 'docker', 'config.json')), {});
    });

    it('asks for --username --password-stdin when there is no terminal to prompt on', async () => {
      await assert.rejects(login(host, {}, io(env)), /no terminal to ask for a password: pass --username NAME --password-stdin/);
      await assert.rejects(login(host, { passwordStdin: true }, io(env, 'x')), /--password-stdin needs --username NAME/);
      await assert.rejects(login(host, { username: ownerName, passwordStdin: true }, io(env, '\n')), /no password given/);
    });

    it('refuses plain HTTP to a registry off loopback before connecting', async () => {
      await assert.rejects(
        login('http://registry.example.com', { username: 'u', passwordStdin: true }, io(env, 'p')),
        /^LoginError: refusing to log in to registry\.example\.com over plain HTTP .*; serve it over HTTPS/,
      );
    });
  });

  describe('berth logout', () => {
    it('removes the stored login, and says so when there was none', async () => {
      await loginAsOwner();
      const first = io(env);
      await logout(host, first);
      assert.equal(first.out(), `Removing login credentials for ${host}\n`);
      assert.equal((await readDockerConfig(join(dir, 'docker', 'config.json'))).auths?.[host], undefined);
      const second = io(env);
      await logout(host, second);
      assert.equal(second.out(), `Not logged in to ${host}\n`);
    });
  });

  describe('berth token', () => {
    it('prints an access token holding the requested scope', async () => {
      await loginAsOwner();
      const cli = io(env);
      await token(host, { scope: ['repository:team/app:pull,push'] }, cli);
      const access = claims(cli.out().trim());
      assert.deepEqual(access['access'], [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }]);
      assert.equal(cli.err(), '');
    });

    it('--expose prints {accessToken, loginServer, username} where accessToken is a refresh token for the null-GUID user', async () => {
      await loginAsOwner();
      const cli = io(env);
      await token(host, { expose: true }, cli);
      const exposed = JSON.parse(cli.out()) as { accessToken: string; loginServer: string; username: string };
      assert.deepEqual(Object.keys(exposed), ['accessToken', 'loginServer', 'username']);
      assert.equal(exposed.loginServer, host);
      assert.equal(exposed.username, nullUser);
      const stored = (await readDockerConfig(join(dir, 'docker', 'config.json'))).auths?.[host]?.identitytoken;
      assert.notEqual(exposed.accessToken, stored, 'a fresh refresh token, not the stored one');
      const res = await fetch(`${server.url}/oauth2/token?service=berth&scope=repository:x:pull`, {
        headers: { Authorization: basic(exposed.username, exposed.accessToken) },
      });
      assert.equal(res.status, 200);
    });

    it('--expose of a login bound to named scopes is bound the same way (it never widens)', async () => {
      await loginAsOwner();
      const stored = (await readDockerConfig(join(dir, 'docker', 'config.json'))).auths?.[host]?.identitytoken ?? '';
      const boundRes = await fetch(`${server.url}/oauth2/exchange`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: stored, service: 'berth', scope: 'repository:team/app:pull' }),
      });
      const bound = ((await boundRes.json()) as { refresh_token: string }).refresh_token;
      const cli = io(env, bound);
      await token(host, { expose: true, username: nullUser, passwordStdin: true }, cli);
      const exposed = (JSON.parse(cli.out()) as { accessToken: string }).accessToken;
      assert.notEqual(exposed, bound);
      const scopeOf = async (scope: string) => {
        const res = await fetch(`${server.url}/oauth2/token?service=berth&scope=${scope}`, { headers: { Authorization: basic(nullUser, exposed) } });
        assert.equal(res.status, 200);
        return ((await res.json()) as { scope?: string }).scope;
      };
      assert.equal(await scopeOf('repository:team/app:pull,push'), 'repository:team/app:pull');
      assert.equal(await scopeOf('repository:team/other:pull'), undefined);
    });

    it('warns when only part of the scope is granted, and fails when none is', async () => {
      const cli = io(env, 'reader-password-1');
      await token(host, { scope: ['repository:team/app:pull,push'], username: 'reader', passwordStdin: true }, cli);
      assert.deepEqual(claims(cli.out().trim())['access'], [{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
      assert.equal(cli.err(), `warning: ${host} granted only repository:team/app:pull\n`);
      await assert.rejects(
        token(host, { scope: ['repository:other/app:pull'], username: 'reader', passwordStdin: true }, io(env, 'reader-password-1')),
        new RegExp(`^LoginError: ${host} granted none of repository:other/app:pull to this login; ask an owner for a grant$`),
      );
    });

    it('says to log in first when nothing is stored', async () => {
      await assert.rejects(token(host, { scope: ['repository:a:pull'] }, io(env)), new RegExp(`not logged in to ${host}: run \`berth login ${host}\` first`));
    });
  });
});
