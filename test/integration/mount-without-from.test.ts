// Mount without `from` with the token service on: "The registry MAY treat the `from` parameter as
// optional, and it MAY cross-mount the blob if it can be found" (distribution-spec v1.1, "Mounting a
// blob from another repository"); "Alternatively, if a registry ... is unable to mount the
// requested blob, it SHOULD return a `202`". The commit that added the sentence
// (opencontainers/distribution-spec#275) asks the registry to "perform the authz check": Berth mounts
// only from a repository the caller may pull (its token, or its principal's grants within the
// token's scope ceiling), so a blob is never revealed or linked to a caller who could not read it;
// otherwise the answer is the same 202 upload session as for a blob nobody holds.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { urls } from '../../src/api/urls.js';
import { bearer, tokenFor } from '../auth/helpers.js';
import { ownerToken, pushBlob } from '../webhooks/helpers.js';
import { startTestServer, type TestServer } from './helpers.js';

let server: TestServer;
let builderSecret = '';

before(async () => {
  server = await startTestServer({ auth: true });
  const { principals } = server.app.auth;
  // May push to team/app and pull every team/* repository, nothing else.
  const created = await principals.createPrincipal('user', 'builder', { grants: [{ pattern: 'team/*', permission: 'push' }] });
  builderSecret = created.secret ?? '';
});
after(async () => {
  await server.stop();
});

/** Pushes `data` as the owner into each repository; returns its digest. */
async function seed(data: Buffer, repositories: string[]): Promise<string> {
  let digest = '';
  for (const repository of repositories) {
    const token = await ownerToken(server.url, [`repository:${repository}:pull,push`]);
    digest = (await pushBlob(server.url, token, repository, data)).digest;
  }
  return digest;
}

/** The builder's token for pushing to `repository` (the scope a client asks for a mount without `from`). */
async function builderToken(repository: string): Promise<string> {
  return String((await tokenFor(server.url, 'builder', builderSecret, [`repository:${repository}:pull,push`]))['token']);
}

async function mount(token: string, repository: string, digest: string): Promise<Response> {
  return fetch(`${server.url}${urls.uploads(repository, { mount: digest })}`, { method: 'POST', headers: { ...bearer(token), 'Content-Length': '0' } });
}

async function blobStatus(token: string, repository: string, digest: string): Promise<number> {
  return (await fetch(`${server.url}${urls.blob(repository, digest)}`, { method: 'HEAD', headers: bearer(token) })).status;
}

describe('mount without from, token service on', () => {
  it('mounts from a repository the caller may pull, though its token names only the target', async () => {
    const digest = await seed(randomBytes(500), ['secret/vault', 'team/lib']);
    const token = await builderToken('team/app');
    const res = await mount(token, 'team/app', digest);
    assert.equal(res.status, 201, await res.text());
    assert.equal(res.headers.get('location'), urls.blob('team/app', digest));
    assert.equal(await blobStatus(token, 'team/app', digest), 200);
  });

  it('never links a blob only repositories the caller cannot pull hold: 202 and an upload, as for an unknown blob', async () => {
    const data = randomBytes(400);
    const digest = await seed(data, ['secret/vault', 'other/thing']);
    const token = await builderToken('team/app2');
    const res = await mount(token, 'team/app2', digest);
    assert.equal(res.status, 202, await res.text());
    const location = res.headers.get('location') ?? '';
    assert.match(location, /\/v2\/team\/app2\/blobs\/uploads\/[0-9a-f-]{36}$/);
    assert.equal(await blobStatus(token, 'team/app2', digest), 404, 'not linked');

    // The answer looks like the one for a blob nobody holds.
    const unknown = await mount(token, 'team/app2', `sha256:${randomBytes(32).toString('hex')}`);
    assert.equal(unknown.status, 202);
    assert.deepEqual([...res.headers.keys()].filter((k) => k !== 'date').sort(), [...unknown.headers.keys()].filter((k) => k !== 'date').sort());

    // The session is a real one: pushing the bytes works.
    const put = await fetch(`${new URL(location, server.url).href}?digest=${digest}`, {
      method: 'PUT',
      headers: { ...bearer(token), 'Content-Type': 'application/octet-stream' },
      body: data,
    });
    assert.equal(put.status, 201, await put.text());
    assert.equal(await blobStatus(token, 'team/app2', digest), 200);
  });

  it('challenges for the target alone: no scope is asked on an unnamed source', async () => {
    const digest = await seed(randomBytes(300), ['secret/vault']);
    const anonymous = await fetch(`${server.url}${urls.uploads('team/app3', { mount: digest })}`, { method: 'POST' });
    assert.equal(anonymous.status, 401);
    const challenge = anonymous.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /scope="repository:team\/app3:pull,push"/, 'the challenge names no source repository');
  });
});
