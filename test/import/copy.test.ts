/**
 * copyImage (src/replication/copy.ts) between two real Berth servers on loopback: digests
 * preserved for the whole index, referrers on request, blobs present skipped, NoForce, and the
 * egress policy in the way of a loopback source unless allowed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { createEgress } from '../../src/net/egress.js';
import { parseDigest } from '../../src/oci/digest.js';
import { isApiError } from '../../src/api/errors.js';
import { copyImage, type CopyProgress } from '../../src/replication/copy.js';
import { RemoteRegistry } from '../../src/remote/client.js';
import { blobPath } from '../../src/storage/paths.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeImage, pushImage, sbomType } from './fixtures.js';
import { startHostileRegistry } from './hostile-registry.js';

const loopbackEgress = createEgress({ allowPrivateNetworks: false, allow: ['127.0.0.1/32', '::1/128'] });

describe('copyImage between two Berth servers', () => {
  let source: TestServer;
  let target: TestServer;
  let remote: RemoteRegistry;

  before(async () => {
    source = await startTestServer();
    target = await startTestServer();
    remote = new RemoteRegistry({ baseUrl: source.url, credentials: { kind: 'anonymous' }, egress: loopbackEgress, logger: pino({ level: 'silent' }) });
  });
  after(async () => {
    await source.stop();
    await target.stop();
    await loopbackEgress.close();
  });

  it('copies a multi-platform index with every platform and its referrers, digests unchanged', async () => {
    const image = makeImage({ platforms: 3, layers: 2, referrer: true });
    await pushImage(source.url, 'vendor/app', '1.0', image);
    const seen: CopyProgress[] = [];
    const result = await copyImage(target.app.registry, {
      source: remote,
      sourceRepository: 'vendor/app',
      reference: '1.0',
      targetRepository: 'mirror/app',
      targetTags: ['1.0', 'stable'],
      includeReferrers: true,
      force: false,
      onProgress: (p) => seen.push(p),
    });
    assert.equal(result.digest, image.root.digest);
    assert.equal(result.manifests, 1 + 3 + 1);
    assert.equal(result.blobsCopied, image.blobs.length + image.referrerBlobs.length);
    assert.equal(result.blobsSkipped, 0);

    const manifests = target.app.metadata.manifests;
    for (const tag of ['1.0', 'stable']) assert.equal((await manifests.getByTag('mirror/app', tag))?.digest, image.root.digest);
    for (const m of [image.root, ...image.children, image.referrer!]) {
      const stored = await manifests.getByDigest('mirror/app', m.digest);
      assert.ok(stored, `manifest ${m.digest} copied`);
      assert.deepEqual(stored.content, m.bytes, 'exact bytes');
    }
    for (const b of [...image.blobs, ...image.referrerBlobs]) {
      assert.ok(await target.app.metadata.blobs.getInRepository('mirror/app', b.digest), `blob ${b.digest} linked`);
    }
    const referrers = await manifests.listReferrers('mirror/app', image.root.digest);
    assert.deepEqual(
      referrers.map((r) => [r.digest, r.artifactType]),
      [[image.referrer!.digest, sbomType]],
    );
    const last = seen.at(-1)!;
    assert.equal(last.blobsDone, last.blobsTotal);
    assert.equal(last.bytesDone, last.bytesTotal);
    assert.equal(last.manifestsDone, last.manifestsTotal);
  });

  it('skips blobs the target already has; blobs stored for another repository are downloaded again to prove the source has them, and stored once', async () => {
    const image = makeImage({ platforms: 2, layers: 2 });
    await pushImage(source.url, 'vendor/skip', 'v1', image);
    const first = await copyImage(target.app.registry, {
      source: remote,
      sourceRepository: 'vendor/skip',
      reference: 'v1',
      targetRepository: 'one/skip',
      targetTags: ['v1'],
      force: false,
    });
    assert.equal(first.blobsCopied, image.blobs.length);
    const again = await copyImage(target.app.registry, {
      source: remote,
      sourceRepository: 'vendor/skip',
      reference: 'v1',
      targetRepository: 'one/skip',
      targetTags: ['v1'],
      force: false,
    });
    assert.deepEqual([again.blobsCopied, again.blobsSkipped, again.bytesCopied], [0, image.blobs.length, 0]);
    const elsewhere = await copyImage(target.app.registry, {
      source: remote,
      sourceRepository: 'vendor/skip',
      reference: 'v1',
      targetRepository: 'two/skip',
      targetTags: [],
      force: false,
    });
    // Before issue 11 these were linked without a download ([0, n]): a source's manifest naming a
    // digest is no proof that the source has the bytes (see 'never links a stored blob ...' below).
    assert.deepEqual([elsewhere.blobsCopied, elsewhere.blobsSkipped], [image.blobs.length, 0]);
    assert.ok(await target.app.metadata.manifests.getByDigest('two/skip', image.root.digest));
    for (const b of image.blobs) {
      const stored = await target.app.storage.stat(blobPath(parseDigest(b.digest)));
      assert.ok(stored && stored.size === b.size, `${b.digest}: one stored copy`);
    }

    // One job's second target links what the job itself downloaded and hashed for the first.
    const verifiedBlobs = new Set<string>();
    const first3 = await copyImage(target.app.registry, {
      source: remote,
      sourceRepository: 'vendor/skip',
      reference: 'v1',
      targetRepository: 'three/skip',
      targetTags: [],
      force: false,
      verifiedBlobs,
    });
    const second3 = await copyImage(target.app.registry, {
      source: remote,
      sourceRepository: 'vendor/skip',
      reference: 'v1',
      targetRepository: 'four/skip',
      targetTags: [],
      force: false,
      verifiedBlobs,
    });
    assert.deepEqual([first3.blobsCopied, second3.blobsCopied, second3.blobsSkipped], [image.blobs.length, 0, image.blobs.length]);
  });

  it('never links a stored blob because a source names its digest: a source that cannot serve the bytes fails the copy', async () => {
    // A private layer, stored here for a repository the mirror's readers cannot pull.
    const secret = makeImage({ platforms: 0, layers: 1 });
    await pushImage(target.url, 'private/app', 'v1', secret);
    const privateLayer = secret.blobs[1]!;
    // A hostile source whose manifest names that digest without having the bytes.
    const hostile = await startHostileRegistry();
    try {
      const bait = makeImage({ platforms: 0, layers: 1, shared: [privateLayer] });
      hostile.serve('bait/app', bait, ['v1']);
      const client = new RemoteRegistry({
        baseUrl: hostile.url,
        credentials: { kind: 'anonymous' },
        egress: loopbackEgress,
        logger: pino({ level: 'silent' }),
      });
      await assert.rejects(
        copyImage(target.app.registry, {
          source: client,
          sourceRepository: 'bait/app',
          reference: 'v1',
          targetRepository: 'mirror/bait',
          targetTags: ['v1'],
          force: false,
        }),
        (err: unknown) => isApiError(err) && err.code === 'UPSTREAM_NOT_FOUND',
      );
      assert.equal(
        await target.app.metadata.blobs.getInRepository('mirror/bait', privateLayer.digest),
        undefined,
        'the private layer is not linked into the mirror',
      );
      assert.equal(await target.app.metadata.manifests.getByTag('mirror/bait', 'v1'), undefined);
      const pulled = await fetch(`${target.url}/v2/mirror/bait/blobs/${privateLayer.digest}`);
      assert.equal(pulled.status, 404);
    } finally {
      await hostile.stop();
    }
  });

  it('without force refuses a target tag that points elsewhere before copying anything', async () => {
    const old = makeImage({ platforms: 0 });
    const next = makeImage({ platforms: 0 });
    await pushImage(target.url, 'held/app', 'v1', old);
    await pushImage(source.url, 'vendor/held', 'v1', next);
    await assert.rejects(
      copyImage(target.app.registry, {
        source: remote,
        sourceRepository: 'vendor/held',
        reference: 'v1',
        targetRepository: 'held/app',
        targetTags: ['v1'],
        force: false,
      }),
      (err: unknown) => isApiError(err) && err.code === 'TAG_EXISTS' && /--force/.test(err.message),
    );
    for (const b of next.blobs) assert.equal(await target.app.metadata.blobs.getInRepository('held/app', b.digest), undefined, 'nothing copied');
    assert.equal((await target.app.metadata.manifests.getByTag('held/app', 'v1'))?.digest, old.root.digest);

    const forced = await copyImage(target.app.registry, {
      source: remote,
      sourceRepository: 'vendor/held',
      reference: 'v1',
      targetRepository: 'held/app',
      targetTags: ['v1'],
      force: true,
    });
    assert.equal(forced.digest, next.root.digest);
    assert.equal((await target.app.metadata.manifests.getByTag('held/app', 'v1'))?.digest, next.root.digest);
  });

  it('copies by digest without tags', async () => {
    const image = makeImage({ platforms: 0 });
    await pushImage(source.url, 'vendor/bydigest', undefined, image);
    const result = await copyImage(target.app.registry, {
      source: remote,
      sourceRepository: 'vendor/bydigest',
      reference: image.root.digest,
      targetRepository: 'mirror/bydigest',
      targetTags: [],
      force: false,
    });
    assert.equal(result.digest, image.root.digest);
    assert.deepEqual(await target.app.metadata.manifests.listTags('mirror/bydigest', {}), []);
    const record = await target.app.registry.manifests.get('mirror/bydigest', { kind: 'digest', digest: parseDigest(image.root.digest) }, []);
    assert.deepEqual(record.content, image.root.bytes);
  });

  it('reports an unknown source image as UPSTREAM_NOT_FOUND', async () => {
    await assert.rejects(
      copyImage(target.app.registry, {
        source: remote,
        sourceRepository: 'vendor/none',
        reference: 'v1',
        targetRepository: 'x/none',
        targetTags: ['v1'],
        force: false,
      }),
      (err: unknown) => isApiError(err) && err.code === 'UPSTREAM_NOT_FOUND',
    );
  });

  it('refuses a loopback source when the egress policy does not allow it', async () => {
    const strict = createEgress({ allowPrivateNetworks: false, allow: [] });
    try {
      const blocked = new RemoteRegistry({ baseUrl: source.url, credentials: { kind: 'anonymous' }, egress: strict });
      await assert.rejects(blocked.ping(), (err: unknown) => isApiError(err) && err.code === 'EGRESS_REFUSED' && /egress/.test(err.message));
    } finally {
      await strict.close();
    }
  });
});
