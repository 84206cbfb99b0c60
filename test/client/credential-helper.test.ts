/**
 * docker-credential-berth's protocol and renewal, against an in-process Berth whose clock the test
 * moves (the same clock the helper reads), so expiry is exercised without waiting.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { CredentialStore } from '../../src/client/credential-store.js';
import { discover, requestTokens, tokenTimes } from '../../src/remote/tokens.js';
import { credentialHelper, CredentialsNotFoundError, type HelperDeps } from '../../src/cli/credential-helper.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';

const nullUser = '00000000-0000-0000-0000-000000000000';
const hour = 3600_000;
const clock = { offset: 0, now: () => Date.now() + clock.offset };

describe('docker-credential-berth', () => {
  let server: TestServer;
  let host = '';
  let dir = '';
  let deps: HelperDeps;
  const warnings: string[] = [];

  before(async () => {
    server = await startTestServer({ auth: true, clock });
    host = new URL(server.url).host;
    dir = await mkdtemp(join(tmpdir(), 'berth-helper-'));
  });
  after(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    clock.offset = 0;
    warnings.length = 0;
    deps = {
      store: new CredentialStore(join(dir, `${Math.random().toString(36).slice(2)}`, 'credentials.json')),
      now: clock.now,
      warn: (l) => warnings.push(l),
      version: 'test',
    };
  });

  const helper = (action: string, input = '') => credentialHelper(action, input, deps);
  const get = async (serverUrl = host) => JSON.parse(await helper('get', serverUrl)) as { ServerURL: string; Username: string; Secret: string };
  const storePassword = () => helper('store', JSON.stringify({ ServerURL: host, Username: ownerName, Secret: ownerPassword }));
  /** The token works: the registry grants an access token for it. */
  const assertUsable = async (refreshToken: string) => {
    const challenge = await discover(server.url);
    assert.ok(challenge);
    const tokens = await requestTokens(challenge, { refreshToken }, ['repository:any/repo:pull'], false);
    assert.equal(tokens.scope, 'repository:any/repo:pull');
  };

  describe('get', () => {
    it('answers an unknown server with exactly "credentials not found in native keychain"', async () => {
      await assert.rejects(
        helper('get', 'unknown.example.com'),
        (err: Error) => err instanceof CredentialsNotFoundError && err.message === 'credentials not found in native keychain',
      );
      await assert.rejects(helper('get', 'not a url at all'), CredentialsNotFoundError);
    });

    it('returns {ServerURL, Username: the null GUID, Secret: the refresh token} for a stored server, however its URL is written', async () => {
      await storePassword();
      const creds = await get();
      assert.equal(creds.ServerURL, host);
      assert.equal(creds.Username, nullUser);
      await assertUsable(creds.Secret);
      assert.equal((await get(`http://${host}/`)).Secret, creds.Secret);
    });

    it('hands out the same token while more than half of its lifetime is left', async () => {
      await storePassword();
      const first = await get();
      clock.offset = 1 * hour; // default refresh lifetime: 3 h
      assert.equal((await get()).Secret, first.Secret);
    });

    it('exchanges a token past half its lifetime for a fresh one and stores it', async () => {
      await storePassword();
      const first = await get();
      clock.offset = 2 * hour;
      const renewed = await get();
      assert.notEqual(renewed.Secret, first.Secret);
      assert.ok((tokenTimes(renewed.Secret)?.expiresAt ?? 0) > (tokenTimes(first.Secret)?.expiresAt ?? 0));
      assert.equal((await deps.store.get(host))?.refreshToken, renewed.Secret);
      await assertUsable(renewed.Secret);
      clock.offset = 3 * hour + 5 * 60_000; // the first token has expired; the renewed one lives on
      await assert.rejects(assertUsable(first.Secret), /refresh token is invalid, expired or revoked/);
      assert.equal((await get()).Secret, renewed.Secret);
      await assertUsable(renewed.Secret);
    });

    it('renews a login bound to named scopes within its bound (the renewal never widens)', async () => {
      const owner = (await requestTokens((await discover(server.url))!, { username: ownerName, password: ownerPassword }, [], true)).refreshToken ?? '';
      const exchanged = await fetch(`${server.url}/oauth2/exchange`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: owner, service: 'berth', scope: 'repository:team/app:pull' }),
      });
      const bound = ((await exchanged.json()) as { refresh_token: string }).refresh_token;
      await helper('store', JSON.stringify({ ServerURL: host, Username: '<token>', Secret: bound }));
      clock.offset = 2 * hour;
      const renewed = await get();
      assert.notEqual(renewed.Secret, bound);
      const challenge = await discover(server.url);
      assert.ok(challenge);
      assert.equal(
        (await requestTokens(challenge, { refreshToken: renewed.Secret }, ['repository:team/app:pull,push'], false)).scope,
        'repository:team/app:pull',
      );
      assert.equal((await requestTokens(challenge, { refreshToken: renewed.Secret }, ['repository:other/app:pull'], false)).scope, undefined);
    });

    it('renews once when several gets run at the same time', async () => {
      await storePassword();
      clock.offset = 2 * hour;
      const secrets = new Set((await Promise.all([get(), get(), get(), get()])).map((c) => c.Secret));
      assert.equal(secrets.size, 1);
    });

    it('says to log in again when the stored token has expired', async () => {
      await storePassword();
      clock.offset = 4 * hour;
      await assert.rejects(get(), (err: Error) => {
        assert.match(err.message, new RegExp(`^the stored login for ${host} has expired or was revoked \\(.*\\); run: berth login ${host}$`));
        return true;
      });
    });

    it('says to log in again when the token was revoked (its password rotated)', async () => {
      await storePassword();
      const owner = await server.app.metadata.auth.principals.findByName(ownerName);
      assert.ok(owner);
      await server.app.auth.principals.setSecret(owner.id, 'password', { secret: ownerPassword });
      clock.offset = 2 * hour;
      await assert.rejects(get(), /has expired or was revoked .*; run: berth login/);
    });

    it('keeps using a still-valid token when the registry cannot be reached to renew it, with a warning', async () => {
      const token = (
        await requestTokens(
          { realm: `${server.url}/oauth2/token`, service: 'berth', scope: undefined },
          { username: ownerName, password: ownerPassword },
          [],
          true,
        )
      ).refreshToken;
      assert.ok(token);
      await deps.store.put('127.0.0.1:9', { username: nullUser, refreshToken: token });
      clock.offset = 2 * hour;
      assert.equal((await get('127.0.0.1:9')).Secret, token);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0] ?? '', /could not renew the refresh token for 127\.0\.0\.1:9/);
    });
  });

  describe('store, erase, list', () => {
    it('trades a password for a refresh token and never writes the password down', async () => {
      await storePassword();
      const text = await readFile(deps.store.path, 'utf8');
      assert.ok(!text.includes(ownerPassword));
      assert.deepEqual(JSON.parse(await helper('list')), { [host]: nullUser });
    });

    it('keeps a refresh token given as docker does after login (Username "<token>") or with the null GUID', async () => {
      await helper('store', JSON.stringify({ ServerURL: `https://a.example.com`, Username: '<token>', Secret: 'tok-a' }));
      await helper('store', JSON.stringify({ ServerURL: 'b.example.com:5000', Username: nullUser, Secret: 'tok-b' }));
      assert.deepEqual(await deps.store.get('a.example.com'), { username: nullUser, refreshToken: 'tok-a' });
      assert.deepEqual(JSON.parse(await helper('list')), { 'a.example.com': nullUser, 'b.example.com:5000': nullUser });
    });

    it('refuses a password the registry rejects, storing nothing', async () => {
      await assert.rejects(helper('store', JSON.stringify({ ServerURL: host, Username: ownerName, Secret: 'wrong-password' })), /invalid username or password/);
      assert.deepEqual(JSON.parse(await helper('list')), {});
    });

    it('rejects store input that is not the protocol JSON', async () => {
      await assert.rejects(helper('store', 'nope'), /store expects \{"ServerURL","Username","Secret"\}/);
      await assert.rejects(helper('store', JSON.stringify({ ServerURL: host })), /non-empty Secret/);
    });

    it('erases one server, and erasing an unknown server is not an error', async () => {
      await helper('store', JSON.stringify({ ServerURL: 'a.example.com', Username: '<token>', Secret: 'a' }));
      await helper('store', JSON.stringify({ ServerURL: 'b.example.com', Username: '<token>', Secret: 'b' }));
      assert.equal(await helper('erase', 'a.example.com\n'), '');
      assert.equal(await helper('erase', 'never.example.com'), '');
      assert.deepEqual(JSON.parse(await helper('list')), { 'b.example.com': nullUser });
      await assert.rejects(helper('get', 'a.example.com'), CredentialsNotFoundError);
    });

    it('lists nothing before anything is stored, and answers version and a wrong action', async () => {
      assert.equal(await helper('list'), '{}\n');
      assert.match(await helper('version'), /^docker-credential-berth \(Berth\) test\n$/);
      await assert.rejects(helper('bogus'), /^Error: usage: docker-credential-berth get\|store\|erase\|list\|version/);
    });
  });

  describe('its file', () => {
    it('is mode 0600 in a 0700 directory and keeps keys it does not know', async () => {
      await helper('store', JSON.stringify({ ServerURL: 'a.example.com', Username: '<token>', Secret: 'a' }));
      assert.equal((await stat(deps.store.path)).mode & 0o777, 0o600);
      assert.equal((await stat(join(deps.store.path, '..'))).mode & 0o777, 0o700);
      const content = JSON.parse(await readFile(deps.store.path, 'utf8')) as Record<string, unknown>;
      await writeFile(deps.store.path, JSON.stringify({ ...content, note: 'kept' }));
      await helper('store', JSON.stringify({ ServerURL: 'b.example.com', Username: '<token>', Secret: 'b' }));
      assert.equal((JSON.parse(await readFile(deps.store.path, 'utf8')) as Record<string, unknown>)['note'], 'kept');
    });

    it('loses no entry when many helpers write at once', async () => {
      const names = Array.from({ length: 12 }, (_, i) => `r${i}.example.com`);
      await Promise.all(names.map((name) => new CredentialStore(deps.store.path).put(name, { username: nullUser, refreshToken: name })));
      assert.deepEqual(Object.keys(await deps.store.list()).sort(), [...names].sort());
    });

    it('says how to recover when the file is corrupt', async () => {
      await helper('store', JSON.stringify({ ServerURL: 'a.example.com', Username: '<token>', Secret: 'a' }));
      await writeFile(deps.store.path, '{broken');
      await assert.rejects(helper('list'), /is corrupt .*; delete it and log in again/);
    });
  });
});
