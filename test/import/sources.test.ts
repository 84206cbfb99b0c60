/**
 * POST /api/v1/import from real foreign sources into a Berth with auth on, digests preserved:
 * Debian's docker-registry (CNCF Distribution) anonymous and with htpasswd Basic auth; another
 * Berth with Docker token auth; another Berth through federation (a service principal's client id
 * and an OIDC token, given with the request or read from a token file the config names).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.js';
import { startReferenceRegistry } from '../support/reference-registry.js';
import type { ServerProcess } from '../support/berth-process.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';
import { basic, bearerFor, makeImage, MT, pushImage, putManifest, sbomType, sha256, type TestImage } from './fixtures.js';
import { importOk, ownerApi, startImportServer, submit, waitForJob, type Api } from './helpers.js';

/** Asserts the target holds the image byte for byte: manifests by digest, the tags, every blob linked. */
async function assertImported(server: TestServer, repository: string, tags: string[], image: TestImage, withReferrer = false): Promise<void> {
  const { manifests, blobs } = server.app.metadata;
  for (const tag of tags) assert.equal((await manifests.getByTag(repository, tag))?.digest, image.root.digest, `${repository}:${tag}`);
  for (const m of [image.root, ...image.children, ...(withReferrer && image.referrer ? [image.referrer] : [])]) {
    assert.deepEqual((await manifests.getByDigest(repository, m.digest))?.content, m.bytes, `manifest ${m.digest} in ${repository}`);
  }
  for (const b of [...image.blobs, ...(withReferrer ? image.referrerBlobs : [])]) {
    assert.ok(await blobs.getInRepository(repository, b.digest), `blob ${b.digest} in ${repository}`);
  }
}

describe('import from CNCF Distribution', () => {
  let distribution: ServerProcess;
  let secured: ServerProcess;
  let target: TestServer;
  let api: Api;

  before(async () => {
    [distribution, secured, target] = await Promise.all([
      startReferenceRegistry(),
      startReferenceRegistry({ htpasswd: { username: 'vendor', password: 'vendor-secret-1' } }),
      startImportServer({ auth: true }),
    ]);
    api = await ownerApi(target);
  });
  after(async () => {
    await Promise.all([distribution.stop(), secured.stop(), target.stop()]);
  });

  it('copies a multi-platform index anonymously, with the referrers it keeps under the sha256-<hex> tag', async () => {
    const image = makeImage({ platforms: 2, layers: 3, referrer: true });
    await pushImage(distribution.url, 'vendor/app', '1.0', image);
    // Distribution 2.8 has no referrers API: clients keep referrers in an index tagged sha256-<hex>.
    const fallback = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.ociIndex,
        manifests: [{ mediaType: MT.ociManifest, digest: image.referrer!.digest, size: image.referrer!.bytes.length, artifactType: sbomType }],
      }),
    );
    await putManifest(distribution.url, 'vendor/app', image.root.digest.replace(':', '-'), {
      digest: sha256(fallback),
      mediaType: MT.ociIndex,
      bytes: fallback,
    });

    const job = await importOk(api, {
      source: { registryUri: distribution.host, sourceImage: 'vendor/app:1.0' },
      targetTags: ['mirror/app:1.0', 'mirror/app:latest'],
      untaggedTargetRepositories: ['archive/app'],
      mode: 'NoForce',
      includeReferrers: true,
    });
    assert.equal(job.result?.digest, image.root.digest);
    assert.equal(job.result?.blobsCopied, image.blobs.length + image.referrerBlobs.length, 'downloaded once, for the first target');
    assert.equal(job.result?.blobsSkipped, image.blobs.length + image.referrerBlobs.length, 'linked for the second target');
    assert.deepEqual(job.progress && [job.progress.targetsDone, job.progress.blobsDone === job.progress.blobsTotal], [1, true]);
    await assertImported(target, 'mirror/app', ['1.0', 'latest'], image, true);
    await assertImported(target, 'archive/app', [], image, true);
    assert.deepEqual(await target.app.metadata.manifests.listTags('archive/app', {}), []);
    const referrers = await target.app.metadata.manifests.listReferrers('mirror/app', image.root.digest);
    assert.deepEqual(
      referrers.map((r) => r.digest),
      [image.referrer!.digest],
    );
  });

  it('imports with htpasswd Basic credentials, and fails with UPSTREAM_DENIED without them', async () => {
    const image = makeImage({ platforms: 0, layers: 2 });
    await pushImage(secured.url, 'vendor/secure', 'v1', image, basic('vendor', 'vendor-secret-1'));

    const denied = await waitForJob(
      api,
      (await submit(api, { source: { registryUri: secured.host, sourceImage: 'vendor/secure:v1' }, targetTags: ['secure:v1'] })).id,
    );
    assert.equal(denied.status, 'failed');
    assert.equal(denied.error?.code, 'UPSTREAM_DENIED');
    assert.match(denied.error?.message ?? '', /credentials/);

    const wrong = await waitForJob(
      api,
      (
        await submit(api, {
          source: { registryUri: secured.host, sourceImage: 'vendor/secure:v1', credentials: { username: 'vendor', password: 'wrong-password' } },
          targetTags: ['secure:v1'],
        })
      ).id,
    );
    assert.equal(wrong.error?.code, 'UPSTREAM_DENIED');

    const job = await importOk(api, {
      source: { registryUri: `http://${secured.host}`, sourceImage: 'vendor/secure:v1', credentials: { username: 'vendor', password: 'vendor-secret-1' } },
      targetTags: ['secure:v1'],
    });
    assert.equal(job.credentials, 'server', 'request credentials are forgotten once the job succeeded');
    assert.equal(JSON.stringify(job).includes('vendor-secret-1'), false);
    await assertImported(target, 'secure', ['v1'], image);
  });
});

describe('import from another Berth', () => {
  let issuer: OidcIssuer;
  let source: TestServer;
  let target: TestServer;
  let viaConfig: TestServer;
  let api: Api;
  let tokenDir: string;
  const image = makeImage({ platforms: 2, layers: 2, referrer: true });

  before(async () => {
    issuer = await startOidcIssuer();
    source = await startTestServer({ auth: true, federationIssuers: [{ issuer: issuer.issuer }] });
    const { principals } = source.app.auth;
    await principals.createPrincipal('user', 'reader', { grants: [{ pattern: 'vendor/**', permission: 'pull' }], secret: 'reader-password-1' });
    const service = await principals.createPrincipal('service', 'customer-sync', {
      grants: [{ pattern: 'vendor/**', permission: 'pull' }],
      withoutSecret: true,
    });
    await source.app.metadata.auth.federatedCredentials.put({
      id: 'fc-1',
      principalId: service.principal.id,
      name: 'cluster',
      issuer: issuer.issuer,
      audiences: ['berth'],
      subject: 'system:serviceaccount:import:berth',
      conditions: [],
      createdAt: Date.now(),
    });
    await pushImage(source.url, 'vendor/app', '2.0', image, await bearerFor(source.url, ownerName, ownerPassword, 'repository:vendor/app:pull,push'));

    tokenDir = await mkdtemp(join(tmpdir(), 'berth-import-oidc-'));
    await writeFile(join(tokenDir, 'token'), await issuer.kubernetes({ namespace: 'import', serviceAccount: 'berth' }));
    target = await startImportServer({ auth: true });
    viaConfig = await startImportServer({
      auth: true,
      importConfig: { sources: [{ registry: new URL(source.url).host, clientId: 'customer-sync', tokenFile: join(tokenDir, 'token') }] },
    });
    api = await ownerApi(target);
  });
  after(async () => {
    await Promise.all([source.stop(), target.stop(), viaConfig.stop(), issuer.stop()]);
    await rm(tokenDir, { recursive: true, force: true });
  });

  it('uses Docker token auth with a user name and password', async () => {
    const job = await importOk(api, {
      source: { registryUri: new URL(source.url).host, sourceImage: 'vendor/app:2.0', credentials: { username: 'reader', password: 'reader-password-1' } },
      targetTags: ['customer/app:2.0'],
      includeReferrers: true,
    });
    assert.equal(job.result?.digest, image.root.digest);
    await assertImported(target, 'customer/app', ['2.0'], image, true);
  });

  it('refuses an image outside what the source credentials may pull with UPSTREAM_DENIED', async () => {
    await pushImage(
      source.url,
      'private/app',
      'v1',
      makeImage({ platforms: 0 }),
      await bearerFor(source.url, ownerName, ownerPassword, 'repository:private/app:pull,push'),
    );
    const job = await waitForJob(
      api,
      (
        await submit(api, {
          source: { registryUri: new URL(source.url).host, sourceImage: 'private/app:v1', credentials: { username: 'reader', password: 'reader-password-1' } },
          targetTags: ['customer/private:v1'],
        })
      ).id,
    );
    assert.equal(job.status, 'failed');
    assert.equal(job.error?.code, 'UPSTREAM_DENIED');
  });

  it('federates with a client id and an OIDC token given in the request', async () => {
    const token = await issuer.kubernetes({ namespace: 'import', serviceAccount: 'berth' });
    const job = await importOk(api, {
      source: { registryUri: new URL(source.url).host, sourceImage: 'vendor/app:2.0', credentials: { identity: 'customer-sync', token } },
      targetTags: ['federated/app:2.0'],
    });
    assert.equal(job.result?.digest, image.root.digest);
    await assertImported(target, 'federated/app', ['2.0'], image);
  });

  it('federates with the client id and token file of import.sources, reading the file afresh', async () => {
    const configApi = await ownerApi(viaConfig);
    const job = await importOk(configApi, { source: { registryUri: new URL(source.url).host, sourceImage: 'vendor/app:2.0' }, targetTags: ['cfg/app:2.0'] });
    assert.equal(job.result?.digest, image.root.digest);
    await assertImported(viaConfig, 'cfg/app', ['2.0'], image);

    // A token the source does not trust (another subject) makes the next import fail: the file is read each time.
    await writeFile(join(tokenDir, 'token'), await issuer.kubernetes({ namespace: 'other', serviceAccount: 'intruder' }));
    const refused = await waitForJob(
      configApi,
      (await submit(configApi, { source: { registryUri: new URL(source.url).host, sourceImage: 'vendor/app:2.0' }, targetTags: ['cfg/again:2.0'] })).id,
    );
    assert.equal(refused.status, 'failed');
    assert.equal(refused.error?.code, 'UPSTREAM_DENIED');
  });
});
