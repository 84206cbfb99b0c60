/**
 * Import jobs shared by several processes through one database: a job is claimed by exactly one
 * runner, a lapsed lease is taken over, a stopped server hands its job back, and two servers on
 * one database run every job exactly once.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ImportJobSpec } from '../../src/metadata/import-store.js';
import { openSqliteMetadata } from '../../src/metadata/sql/open.js';
import type { Metadata } from '../../src/metadata/store.js';
import { makeImage } from './fixtures.js';
import { Api, startImportServer, submit, waitForJob } from './helpers.js';
import { startHostileRegistry, type HostileRegistry } from './hostile-registry.js';

const spec: ImportJobSpec = {
  source: { registry: 'registry.example.com', url: 'https://registry.example.com', repository: 'vendor/app', reference: '1.0' },
  targets: [{ repository: 'team/app', tags: ['1.0'] }],
  force: false,
  includeReferrers: false,
};

describe('import job leases (two connections to one database)', () => {
  let dir: string;
  let a: Metadata;
  let b: Metadata;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-import-jobs-'));
    a = await openSqliteMetadata(join(dir, 'metadata.db'));
    b = await openSqliteMetadata(join(dir, 'metadata.db'));
  });
  after(async () => {
    await a.close();
    await b.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('gives a queued job to exactly one of two claiming workers', async () => {
    await a.imports.create({ id: 'job-1', spec, requestedBy: undefined, credentials: { username: 'u', password: 'p' } }, 1000);
    const [first, second] = await Promise.all([
      a.imports.claim({ owner: 'worker-a', now: 1000, until: 61_000, limit: 5 }),
      b.imports.claim({ owner: 'worker-b', now: 1000, until: 61_000, limit: 5 }),
    ]);
    const winners = [...first, ...second];
    assert.equal(winners.length, 1);
    assert.deepEqual(winners[0]?.credentials, { username: 'u', password: 'p' }, 'the runner gets the credentials');
    assert.equal(winners[0]?.attempts, 1);
    const loser = first.length === 1 ? 'worker-b' : 'worker-a';
    const winner = first.length === 1 ? 'worker-a' : 'worker-b';
    assert.equal(await b.imports.renew('job-1', { owner: loser, now: 2000, until: 62_000 }), false);
    assert.equal(await a.imports.renew('job-1', { owner: winner, now: 2000, until: 62_000 }), true);
    assert.equal((await a.imports.get('job-1'))?.hasCredentials, true);
  });

  it('lets another worker take over a job whose lease lapsed; the old holder can no longer finish it', async () => {
    const holder = (await a.imports.get('job-1'))!;
    assert.equal(holder.status, 'running');
    assert.deepEqual(await b.imports.claim({ owner: 'worker-c', now: 30_000, until: 90_000, limit: 5 }), [], 'lease still valid');
    const taken = await b.imports.claim({ owner: 'worker-c', now: 62_001, until: 122_001, limit: 5 });
    assert.deepEqual(
      taken.map((j) => [j.id, j.attempts]),
      [['job-1', 2]],
    );
    for (const stale of ['worker-a', 'worker-b']) {
      assert.equal(
        await a.imports.finish(
          'job-1',
          stale,
          { status: 'succeeded', result: { digest: 'sha256:x', mediaType: 'x', manifests: 1, blobsCopied: 0, blobsSkipped: 0, bytesCopied: 0 } },
          62_002,
        ),
        false,
      );
    }
    assert.equal(await b.imports.finish('job-1', 'worker-c', { status: 'failed', error: { code: 'UPSTREAM_DENIED', message: 'no' } }, 62_003), true);
    const failed = (await a.imports.get('job-1'))!;
    assert.deepEqual([failed.status, failed.error?.code, failed.finishedAt], ['failed', 'UPSTREAM_DENIED', 62_003]);
  });

  it('keeps credentials of a failed job until they expire, and requeues it with new ones', async () => {
    assert.equal(await a.imports.expireCredentials(62_003), 0, 'not before the cutoff');
    assert.equal(await a.imports.requeue('job-1', 70_000, { username: 'u2', password: 'p2' }), true);
    assert.equal(await a.imports.requeue('job-1', 70_000, undefined), false, 'only a failed job');
    const [claimed] = await a.imports.claim({ owner: 'worker-a', now: 70_000, until: 130_000, limit: 1 });
    assert.deepEqual([claimed?.attempts, claimed?.credentials?.username], [1, 'u2']);
    assert.equal(await a.imports.release('job-1', 'worker-a', 70_001), true, 'a stopping server hands the job back');
    const queued = (await a.imports.get('job-1'))!;
    assert.deepEqual([queued.status, queued.attempts], ['queued', 0]);
    const [again] = await b.imports.claim({ owner: 'worker-b', now: 70_002, until: 130_002, limit: 1 });
    assert.ok(again);
    await b.imports.finish('job-1', 'worker-b', { status: 'failed', error: { code: 'X', message: 'x' } }, 80_000);
    assert.equal(await a.imports.expireCredentials(80_001), 1);
    assert.equal((await a.imports.get('job-1'))?.hasCredentials, false);
    assert.equal(await a.imports.prune(80_001), 1);
    assert.equal(await a.imports.get('job-1'), undefined);
  });
});

describe('two servers on one database', () => {
  let source: HostileRegistry;
  let dir: string;

  before(async () => {
    source = await startHostileRegistry();
    dir = await mkdtemp(join(tmpdir(), 'berth-import-replicas-'));
  });
  after(async () => {
    await source.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs every job exactly once, whichever server claims it', async () => {
    const first = await startImportServer({ dataDir: join(dir, 'data'), importConfig: { concurrency: 2 } });
    const second = await startImportServer({ dataDir: join(dir, 'data'), importConfig: { concurrency: 2 } });
    try {
      const images = Array.from({ length: 6 }, () => makeImage({ platforms: 0, layers: 1 }));
      images.forEach((image, i) => source.serve(`vendor/r${i}`, image, ['v1']));
      const api = new Api(first.url, undefined);
      const jobs = await Promise.all(
        images.map((_, i) => submit(api, { source: { registryUri: source.host, sourceImage: `vendor/r${i}:v1` }, targetTags: [`mirror/r${i}:v1`] })),
      );
      const done = await Promise.all(jobs.map((job) => waitForJob(new Api(second.url, undefined), job.id)));
      for (const [i, job] of done.entries()) {
        assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
        assert.equal(job.attempts, 1);
        const image = images[i]!;
        assert.equal(source.count('GET', `/v2/vendor/r${i}/manifests/${image.root.digest}`), 1, `job ${i} ran once`);
        for (const blob of image.blobs) assert.equal(source.count('GET', `/v2/vendor/r${i}/blobs/${blob.digest}`), 1);
      }
    } finally {
      await first.stop();
      await second.stop();
    }
  });

  it('hands a running job back when its server stops, and another server finishes it', async () => {
    const image = makeImage({ platforms: 0, layers: 1 });
    source.serve('vendor/slow', image, ['v1']);
    const layer = image.blobs[1]!;
    let stall = true;
    source.intercept = (_req, res, path) => {
      if (path !== `/v2/vendor/slow/blobs/${layer.digest}` || !stall) return false;
      // Hold the first transfer open (never finish it) until the server running it stops.
      res.writeHead(200, { 'Content-Length': layer.size });
      res.write(layer.bytes.subarray(0, 10));
      return true;
    };
    const first = await startImportServer({ dataDir: join(dir, 'handover'), importConfig: { pollIntervalMs: 100 } });
    const api = new Api(first.url, undefined);
    const job = await submit(api, { source: { registryUri: source.host, sourceImage: 'vendor/slow:v1' }, targetTags: ['slow:v1'] });
    const deadline = Date.now() + 30_000;
    while (source.count('GET', `/v2/vendor/slow/blobs/${layer.digest}`) === 0) {
      assert.ok(Date.now() < deadline, 'the transfer started');
      await new Promise((ok) => setTimeout(ok, 20));
    }
    stall = false;
    await first.stop();
    source.intercept = undefined;
    const second = await startImportServer({ dataDir: join(dir, 'handover') });
    try {
      const finished = await waitForJob(new Api(second.url, undefined), job.id);
      assert.equal(finished.status, 'succeeded', JSON.stringify(finished.error));
      assert.equal(finished.attempts, 1, 'the interrupted run does not count');
    } finally {
      await second.stop();
    }
  });
});
