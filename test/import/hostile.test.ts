/**
 * Import from a source that lies, stalls or breaks (test/import/hostile-registry.ts): the import
 * fails with a clear code and stores nothing it could not verify; a source that asks to back off
 * is waited for; a broken transfer resumes on retry without downloading again what arrived; a
 * redirect does not carry credentials to another origin, and cannot lead into a refused network.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createEgress } from '../../src/net/egress.js';
import { parseDigest } from '../../src/oci/digest.js';
import { isCodedError } from '../../src/shared/coded-error.js';
import { RemoteRegistry } from '../../src/remote/client.js';
import { blobPath } from '../../src/storage/paths.js';
import type { TestServer } from '../support/server.js';
import { basic, makeImage, MT, putManifest, sha256, type TestImage } from './fixtures.js';
import { Api, startImportServer, submit, waitForJob, type ImportJobView } from './helpers.js';
import { startHostileRegistry, type HostileRegistry } from './hostile-registry.js';

describe('import from a hostile or failing source', () => {
  let source: HostileRegistry;
  let target: TestServer;
  let api: Api;

  before(async () => {
    source = await startHostileRegistry();
    // Auth off: every caller may import; maxAttempts 2 so one automatic retry is visible; one HTTP attempt per request except where a test needs more.
    target = await startImportServer({ importConfig: { maxAttempts: 2, defaults: { retries: 2 } } });
    api = new Api(target.url, undefined);
  });
  after(async () => {
    await source.stop();
    await target.stop();
  });

  async function run(repository: string, targetTag: string): Promise<ImportJobView> {
    return waitForJob(api, (await submit(api, { source: { registryUri: source.host, sourceImage: `${repository}:v1` }, targetTags: [targetTag] })).id);
  }

  /** Nothing of `image` is visible in `repository`, and no blob content of it is stored at all. */
  async function assertNothingStored(repository: string, image: TestImage, blobs = image.blobs): Promise<void> {
    const { metadata, storage } = target.app;
    assert.deepEqual((await metadata.manifests.listTags(repository, {})) ?? [], []);
    for (const m of [image.root, ...image.children]) assert.equal(await metadata.manifests.getByDigest(repository, m.digest), undefined);
    for (const b of blobs) {
      assert.equal(await metadata.blobs.get(b.digest), undefined, `blob ${b.digest} not recorded`);
      assert.equal(await storage.stat(blobPath(parseDigest(b.digest))), undefined, `blob ${b.digest} not in storage`);
    }
    assert.deepEqual(await storage.list('uploads'), [], 'no upload left behind');
  }

  it('fails with UPSTREAM_INVALID when the manifest is garbage, creating nothing', async () => {
    const image = makeImage({ platforms: 0 });
    source.serve('garbage/app', image, ['v1']);
    source.intercept = (_req, res, path) => {
      if (!path.startsWith('/v2/garbage/app/manifests/')) return false;
      res.writeHead(200, { 'Content-Type': MT.ociManifest });
      res.end('<html>this is not a manifest</html>');
      return true;
    };
    const job = await run('garbage/app', 'garbage:v1');
    source.intercept = undefined;
    assert.equal(job.status, 'failed');
    assert.equal(job.error?.code, 'UPSTREAM_INVALID');
    assert.equal(job.attempts, 1, 'invalid content is not retried automatically');
    assert.equal(await target.app.metadata.repositories.exists('garbage'), false);
  });

  it('fails with UPSTREAM_INVALID when a platform manifest does not match its digest', async () => {
    const image = makeImage({ platforms: 2 });
    source.serve('tampered/app', image, ['v1']);
    const victim = image.children[1]!;
    const forged = Buffer.from(victim.bytes.toString('utf8').replace('"schemaVersion":2', '"schemaVersion":2,"x":1'));
    source.intercept = (_req, res, path) => {
      if (path !== `/v2/tampered/app/manifests/${victim.digest}`) return false;
      res.writeHead(200, { 'Content-Type': MT.ociManifest, 'Content-Length': forged.length });
      res.end(forged);
      return true;
    };
    const job = await run('tampered/app', 'tampered:v1');
    source.intercept = undefined;
    assert.equal(job.error?.code, 'UPSTREAM_INVALID');
    assert.match(job.error?.message ?? '', /digest/);
    await assertNothingStored('tampered', image);
  });

  it('fails with UPSTREAM_INVALID when Docker-Content-Digest contradicts the bytes', async () => {
    const image = makeImage({ platforms: 0 });
    source.serve('liar/app', image, ['v1']);
    source.intercept = (_req, res, path) => {
      if (path !== '/v2/liar/app/manifests/v1') return false;
      res.writeHead(200, { 'Content-Type': MT.ociManifest, 'Docker-Content-Digest': sha256(Buffer.from('something else')) });
      res.end(image.root.bytes);
      return true;
    };
    const job = await run('liar/app', 'liar:v1');
    source.intercept = undefined;
    assert.equal(job.error?.code, 'UPSTREAM_INVALID');
    await assertNothingStored('liar', image);
  });

  it('fails with UPSTREAM_INVALID when a blob does not match its digest, and stores nothing of it', async () => {
    const image = makeImage({ platforms: 0, layers: 1 });
    source.serve('badblob/app', image, ['v1']);
    const layer = image.blobs[1]!;
    source.intercept = (_req, res, path) => {
      if (path !== `/v2/badblob/app/blobs/${layer.digest}`) return false;
      const wrong = Buffer.alloc(layer.size, 0x41);
      res.writeHead(200, { 'Content-Length': wrong.length });
      res.end(wrong);
      return true;
    };
    const job = await run('badblob/app', 'badblob:v1');
    source.intercept = undefined;
    assert.equal(job.status, 'failed');
    assert.equal(job.error?.code, 'UPSTREAM_INVALID');
    assert.match(job.error?.message ?? '', /does not match its digest/);
    await assertNothingStored('badblob', image, [layer]);
  });

  it("never links a stored blob on the strength of the source's manifest, even for an owner's import", async () => {
    // A private layer stored here; the source names its digest without having the bytes.
    const secret = makeImage({ platforms: 0, layers: 1 });
    // Monolithic pushes (POST ?digest=): no upload session is left for assertNothingStored to see.
    for (const b of secret.blobs) {
      const res = await fetch(`${target.url}/v2/private/app/blobs/uploads/?digest=${b.digest}`, { method: 'POST', body: b.bytes });
      assert.equal(res.status, 201);
    }
    await putManifest(target.url, 'private/app', 'v1', secret.root);
    const privateLayer = secret.blobs[1]!;
    source.serve('bait/app', makeImage({ platforms: 0, layers: 1, shared: [privateLayer] }), ['v1']);
    const job = await run('bait/app', 'mirror/bait:v1'); // auth off: the requester counts as an owner
    assert.equal(job.status, 'failed');
    assert.equal(job.error?.code, 'UPSTREAM_NOT_FOUND', JSON.stringify(job.error));
    assert.equal(await target.app.metadata.blobs.getInRepository('mirror/bait', privateLayer.digest), undefined);
    assert.equal((await fetch(`${target.url}/v2/mirror/bait/blobs/${privateLayer.digest}`)).status, 404);
  });

  it('fails with UPSTREAM_INVALID when a blob is longer than its descriptor says', async () => {
    const image = makeImage({ platforms: 0, layers: 1 });
    source.serve('long/app', image, ['v1']);
    const layer = image.blobs[1]!;
    source.intercept = (_req, res, path) => {
      if (path !== `/v2/long/app/blobs/${layer.digest}`) return false;
      res.writeHead(200, { 'Transfer-Encoding': 'chunked' });
      res.end(Buffer.concat([layer.bytes, Buffer.from('trailing junk')]));
      return true;
    };
    const job = await run('long/app', 'long:v1');
    source.intercept = undefined;
    assert.equal(job.error?.code, 'UPSTREAM_INVALID');
    await assertNothingStored('long', image, [layer]);
  });

  it('waits for Retry-After when the source answers 429, then succeeds', async () => {
    const image = makeImage({ platforms: 0 });
    source.serve('busy/app', image, ['v1']);
    let refusals = 0;
    source.intercept = (_req, res, path) => {
      if (path !== '/v2/busy/app/manifests/v1' || refusals > 0) return false;
      refusals++;
      res.writeHead(429, { 'Retry-After': '1', 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'slow down' }] }));
      return true;
    };
    const job = await run('busy/app', 'busy:v1');
    source.intercept = undefined;
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    assert.equal(refusals, 1);
    assert.ok(source.count('HEAD', '/v2/busy/app/manifests/v1') + source.count('GET', '/v2/busy/app/manifests/v1') >= 2);
  });

  it('gives up at once on a Retry-After longer than it will wait, and says how long the source asked for', async () => {
    const egress = createEgress({ allowPrivateNetworks: true, allow: [] });
    source.intercept = (_req, res, path) => {
      if (path !== '/v2/slow/app/manifests/v1') return false;
      res.writeHead(429, { 'Retry-After': '3600', 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'come back in an hour' }] }));
      return true;
    };
    try {
      const remote = new RemoteRegistry({ baseUrl: `http://${source.host}`, credentials: { kind: 'anonymous' }, egress });
      await assert.rejects(remote.resolve('slow/app', 'v1'), (err: unknown) => {
        assert.ok(isCodedError(err));
        assert.equal(err.code, 'UPSTREAM_UNREACHABLE');
        assert.match(err.message, /asks to wait 3600 s \(HTTP 429\)/);
        assert.deepEqual(err.detail, { retryAfterMs: 3_600_000 });
        return true;
      });
    } finally {
      source.intercept = undefined;
      await egress.close();
    }
  });

  /** Sends the headers and half the body, then drops the connection. */
  function breakMidBody(res: ServerResponse, bytes: Buffer): void {
    res.writeHead(200, { 'Content-Length': bytes.length });
    res.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => res.destroy());
  }

  it('resumes a failed import on retry: blobs that arrived are not downloaded again', async () => {
    const image = makeImage({ platforms: 2, layers: 2 });
    source.serve('flaky/app', image, ['v1']);
    const broken = image.blobs[3]!;
    let healthy = false;
    source.intercept = (_req, res, path) => {
      if (healthy || path !== `/v2/flaky/app/blobs/${broken.digest}`) return false;
      breakMidBody(res, broken.bytes);
      return true;
    };
    const failed = await run('flaky/app', 'flaky:v1');
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error?.code, 'UPSTREAM_UNREACHABLE');
    assert.equal(failed.attempts, 2, 'retried automatically once (import.maxAttempts 2) before failing');
    assert.ok(failed.progress && failed.progress.blobsDone < failed.progress.blobsTotal);
    assert.equal(await target.app.metadata.manifests.getByTag('flaky', 'v1'), undefined, 'no tag on an incomplete image');
    const others = image.blobs.filter((b) => b !== broken);
    for (const b of others) assert.equal(source.count('GET', `/v2/flaky/app/blobs/${b.digest}`), 1, 'the second run skipped what the first stored');

    healthy = true;
    const retried = await api.post(`/imports/${failed.id}/retry`, {});
    assert.equal(retried.status, 202, JSON.stringify(retried.body));
    const job = await waitForJob(api, failed.id);
    source.intercept = undefined;
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    assert.deepEqual([job.result?.blobsCopied, job.result?.blobsSkipped], [1, others.length]);
    for (const b of others) assert.equal(source.count('GET', `/v2/flaky/app/blobs/${b.digest}`), 1, `${b.digest} downloaded once in all`);
    assert.equal((await target.app.metadata.manifests.getByTag('flaky', 'v1'))?.digest, image.root.digest);

    const again = await api.post(`/imports/${failed.id}/retry`, {});
    assert.equal(again.status, 409, 'only a failed import can be retried');
  });

  it('retries an unreachable source automatically and succeeds on the next run', async () => {
    const image = makeImage({ platforms: 0, layers: 1 });
    source.serve('blip/app', image, ['v1']);
    const layer = image.blobs[1]!;
    let drops = 0;
    source.intercept = (_req, res, path) => {
      if (path !== `/v2/blip/app/blobs/${layer.digest}` || drops >= 3) return false;
      drops++; // three drops: every attempt of the first run (copy retries a blob three times)
      breakMidBody(res, layer.bytes);
      return true;
    };
    const job = await run('blip/app', 'blip:v1');
    source.intercept = undefined;
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    assert.equal(job.attempts, 2);
    assert.equal(job.error, null);
  });

  it('follows a redirect to another origin without sending it the credentials', async () => {
    const image = makeImage({ platforms: 0, layers: 1 });
    source.serve('cdn/app', image, ['v1']);
    const layer = image.blobs[1]!;
    const seen: Array<string | undefined> = [];
    const cdn = createServer((req: IncomingMessage, res: ServerResponse) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'Content-Length': layer.size });
      res.end(layer.bytes);
    });
    await new Promise<void>((ok) => cdn.listen(0, '127.0.0.1', ok));
    const cdnUrl = `http://127.0.0.1:${(cdn.address() as AddressInfo).port}`;
    const authorization = basic('customer', 'customer-secret');
    source.requireAuthorization = authorization;
    source.intercept = (req, res, path) => {
      if (path !== `/v2/cdn/app/blobs/${layer.digest}` || req.headers.authorization !== authorization) return false;
      res.writeHead(307, { Location: `${cdnUrl}/blob?sig=1` });
      res.end();
      return true;
    };
    try {
      const job = await waitForJob(
        api,
        (
          await submit(api, {
            source: { registryUri: source.host, sourceImage: 'cdn/app:v1', credentials: { username: 'customer', password: 'customer-secret' } },
            targetTags: ['cdn:v1'],
          })
        ).id,
      );
      assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
      assert.deepEqual(seen, [undefined], 'the CDN got the request, without the Authorization header');
    } finally {
      source.intercept = undefined;
      source.requireAuthorization = undefined;
      await new Promise<void>((ok) => cdn.close(() => ok()));
    }
  });

  it('refuses a redirect into a network the egress policy refuses', async () => {
    const image = makeImage({ platforms: 0, layers: 1 });
    source.serve('metadata/app', image, ['v1']);
    const layer = image.blobs[1]!;
    source.intercept = (_req, res, path) => {
      if (path !== `/v2/metadata/app/blobs/${layer.digest}`) return false;
      res.writeHead(302, { Location: 'http://169.254.169.254/latest/meta-data/' });
      res.end();
      return true;
    };
    const job = await run('metadata/app', 'meta:v1');
    source.intercept = undefined;
    assert.equal(job.status, 'failed');
    assert.equal(job.error?.code, 'EGRESS_REFUSED');
    assert.match(job.error?.message ?? '', /169\.254\.169\.254/);
  });
});
