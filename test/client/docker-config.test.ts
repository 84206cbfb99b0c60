/** docker's config.json as Berth writes it: only a refresh token, nothing else disturbed, never half-written. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { credentialHelperFor, readDockerConfig, removeAuth, storeIdentityToken } from '../../src/client/docker-config.js';

describe('docker config.json', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-client-config-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  const fresh = async (name: string, content?: unknown): Promise<string> => {
    const path = join(dir, name, 'config.json');
    await mkdir(join(dir, name), { recursive: true });
    if (content !== undefined) await writeFile(path, JSON.stringify(content));
    return path;
  };

  it('stores the refresh token as identitytoken with the null-GUID user in auth, and no password', async () => {
    const path = await fresh('new');
    await storeIdentityToken('127.0.0.1:5000', 'refresh.jwt.value', path);
    const config = await readDockerConfig(path);
    assert.deepEqual(config.auths?.['127.0.0.1:5000'], {
      auth: Buffer.from('00000000-0000-0000-0000-000000000000:').toString('base64'),
      identitytoken: 'refresh.jwt.value',
    });
  });

  it('keeps every key it does not own: other registries, credHelpers, credsStore, proxies, unknown keys', async () => {
    const original = {
      auths: { 'other.example.com': { auth: 'dXNlcjpwYXNz', email: 'x@example.com' } },
      credHelpers: { 'gcr.io': 'gcloud' },
      credsStore: 'desktop',
      proxies: { default: { httpProxy: 'http://proxy:3128' } },
      'x-future-key': [1, 2, 3],
    };
    const path = await fresh('keep', original);
    await storeIdentityToken('127.0.0.1:5000', 'tok', path);
    const config = await readDockerConfig(path);
    assert.deepEqual(config.auths?.['other.example.com'], original.auths['other.example.com']);
    assert.deepEqual(config.credHelpers, original.credHelpers);
    assert.equal(config['credsStore'], 'desktop');
    assert.deepEqual(config['proxies'], original.proxies);
    assert.deepEqual(config['x-future-key'], [1, 2, 3]);

    assert.equal(await removeAuth('127.0.0.1:5000', path), true);
    assert.equal(await removeAuth('127.0.0.1:5000', path), false);
    assert.deepEqual(await readDockerConfig(path), original);
  });

  it('writes the file with mode 0600', async () => {
    const path = await fresh('mode');
    await storeIdentityToken('127.0.0.1:5000', 'tok', path);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });

  it('replaces the file atomically (rename): a reader of the old file still sees it whole, and no temp file is left', async () => {
    const path = await fresh('atomic');
    await storeIdentityToken('first.example.com', 'one', path);
    const oldContent = await readFile(path, 'utf8');
    const handle = await open(path, 'r');
    try {
      await storeIdentityToken('second.example.com', 'two', path);
      assert.equal(await handle.readFile('utf8'), oldContent, 'the open file was rewritten in place');
    } finally {
      await handle.close();
    }
    assert.deepEqual(await readdir(join(dir, 'atomic')), ['config.json']);
    assert.deepEqual(Object.keys((await readDockerConfig(path)).auths ?? {}).sort(), ['first.example.com', 'second.example.com']);
  });

  it('reads a missing file as empty and names the file when it is not JSON', async () => {
    assert.deepEqual(await readDockerConfig(join(dir, 'absent', 'config.json')), {});
    const path = await fresh('broken', {});
    await writeFile(path, '{not json');
    await assert.rejects(readDockerConfig(path), (err: Error) => err.message.includes(path));
  });

  it('names the credential helper docker uses for a registry: credHelpers first, then credsStore', () => {
    assert.equal(credentialHelperFor({ credHelpers: { 'a:5000': 'berth' }, credsStore: 'desktop' }, 'a:5000'), 'berth');
    assert.equal(credentialHelperFor({ credHelpers: { 'a:5000': 'berth' }, credsStore: 'desktop' }, 'b'), 'desktop');
    assert.equal(credentialHelperFor({ auths: {} }, 'a:5000'), undefined);
  });
});
