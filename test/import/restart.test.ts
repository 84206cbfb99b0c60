/**
 * `berth serve` as a real process runs import jobs, and a job survives the process being killed
 * mid-transfer: after the lease lapses, the restarted server takes the job over and finishes it,
 * without downloading again the blobs that were stored before the crash.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { BERTH_SOURCE_CLI, startBerth, type BerthProcess } from '../support/berth-process.js';
import { makeImage } from './fixtures.js';
import { Api, loopbackAllowed, submit, waitForJob, type ImportJobView } from './helpers.js';
import { startHostileRegistry, type HostileRegistry } from './hostile-registry.js';

describe('import jobs across a server crash', () => {
  let source: HostileRegistry;
  let dir: string;
  let configFile: string;

  const serve = (): Promise<BerthProcess> =>
    startBerth({ dataDir: join(dir, 'data'), cliPath: BERTH_SOURCE_CLI, nodeArgs: ['--import', 'tsx'], args: ['--config', configFile] });

  before(async () => {
    source = await startHostileRegistry();
    dir = await mkdtemp(join(tmpdir(), 'berth-import-restart-'));
    configFile = join(dir, 'berth.json');
    // A short lease so the restarted server takes the crashed one's job over quickly.
    await writeFile(configFile, JSON.stringify({ egress: { allow: loopbackAllowed }, import: { leaseMs: 1500, pollIntervalMs: 200 } }));
  });
  after(async () => {
    await source.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('resumes after SIGKILL and a restart, skipping the blobs that arrived before the crash', async () => {
    const image = makeImage({ platforms: 0, layers: 3, layerBytes: 32 * 1024 });
    source.serve('vendor/app', image, ['v1']);
    const stuck = image.blobs[3]!;
    let stall = true;
    source.intercept = (_req, res, path) => {
      if (!stall || path !== `/v2/vendor/app/blobs/${stuck.digest}`) return false;
      res.writeHead(200, { 'Content-Length': stuck.size });
      res.write(stuck.bytes.subarray(0, 100)); // and never the rest, while the first server lives
      return true;
    };
    const others = image.blobs.filter((b) => b !== stuck);

    let server = await serve();
    let job: ImportJobView;
    try {
      const api = new Api(server.url, undefined);
      job = await submit(api, { source: { registryUri: source.host, sourceImage: 'vendor/app:v1' }, targetTags: ['mirror/app:v1'] });
      const deadline = Date.now() + 60_000;
      for (;;) {
        const view = (await api.get(`/imports/${job.id}`)).body as ImportJobView;
        if (view.progress && view.progress.blobsDone >= others.length && source.count('GET', `/v2/vendor/app/blobs/${stuck.digest}`) > 0) break;
        assert.ok(Date.now() < deadline, `the first server stored the other blobs: ${JSON.stringify(view)}`);
        await sleep(50);
      }
    } finally {
      await server.kill();
    }

    stall = false;
    server = await serve();
    try {
      const done = await waitForJob(new Api(server.url, undefined), job.id);
      assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
      assert.equal(done.attempts, 2, 'the crashed run and the one that finished');
      assert.deepEqual([done.result?.blobsCopied, done.result?.blobsSkipped], [1, others.length]);
      for (const b of others) assert.equal(source.count('GET', `/v2/vendor/app/blobs/${b.digest}`), 1, `${b.digest} fetched once in all`);
      const res = await fetch(`${server.url}/v2/mirror/app/manifests/v1`, { method: 'HEAD', headers: { Accept: image.root.mediaType } });
      assert.equal(res.headers.get('docker-content-digest'), image.root.digest);
    } finally {
      source.intercept = undefined;
      await server.stop();
    }
  });
});
