/**
 * /healthz and /readyz while the backends come and go: a Berth on a PostgreSQL and a Ceph RGW of
 * this test's own (the shared ones must not be stopped), each stopped and started again. While one
 * is down the replica says it is not ready, with a reason naming it, and stays alive (liveness and
 * the metrics scrape still answer); once it is back the replica is ready again and serves pushes
 * and pulls without a restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { tokenFor } from '../auth/helpers.js';
import { startPrivatePostgres, type PrivatePostgres } from '../support/postgres.js';
import { startPrivateS3, type PrivateS3 } from '../support/s3.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';
import { pullSmallImage, pushSmallImage, waitFor } from './helpers.js';

interface Readiness {
  status: string;
  reason?: string;
  checks: Record<string, { ok: boolean; reason?: string }>;
}

describe('probes while PostgreSQL and S3 are stopped and started again', () => {
  let postgres: PrivatePostgres;
  let s3: PrivateS3;
  let server: TestServer;

  before(async () => {
    [postgres, s3] = await Promise.all([startPrivatePostgres(), startPrivateS3()]);
    server = await startTestServer({
      auth: true,
      config: { metadata: await postgres.metadataFor('berth_probes'), storage: await s3.storageFor('berth-probes') },
    });
  });
  after(async () => {
    await server?.stop();
    await postgres?.stop();
    await s3?.stop();
  });

  const readiness = async (): Promise<{ status: number; body: Readiness }> => {
    const res = await fetch(`${server.url}/readyz`);
    return { status: res.status, body: (await res.json()) as Readiness };
  };
  const alive = async () => {
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200, 'liveness does not depend on the backends');
    assert.equal((await fetch(`${server.url}/metrics`)).status, 200, 'the scrape answers (with the last database state)');
  };
  const pushAndPull = async (tag: string) => {
    const token = String((await tokenFor(server.url, ownerName, ownerPassword, ['repository:probes/app:pull,push']))['token']);
    await pushSmallImage(server.url, token, 'probes/app', tag);
    await pullSmallImage(server.url, token, 'probes/app', tag);
  };

  it('is ready with both backends up', async () => {
    const ready = await readiness();
    assert.equal(ready.status, 200, JSON.stringify(ready.body));
    assert.deepEqual(ready.body, { status: 'ready', checks: { database: { ok: true }, migrations: { ok: true }, storage: { ok: true } } });
    await pushAndPull('before');
  });

  it('PostgreSQL stopped: not ready (503, database), alive; started again: ready and serving', async () => {
    await postgres.stopServer();
    const down = await waitFor('readiness to fail', async () => {
      const r = await readiness();
      return r.status === 503 ? r : undefined;
    });
    assert.equal(down.body.status, 'not ready');
    assert.equal(down.body.checks['database']?.ok, false);
    assert.match(down.body.reason ?? '', /^database: /);
    assert.equal(down.body.checks['storage']?.ok, true, 'only the database is blamed');
    await alive();
    await postgres.startServer();
    await waitFor('readiness to return', async () => (await readiness()).status === 200);
    await pushAndPull('after-postgres');
  });

  it('S3 stopped: not ready (503, storage), alive; started again: ready and serving', async () => {
    await s3.stopGateway();
    const down = await waitFor('readiness to fail', async () => {
      const r = await readiness();
      return r.status === 503 ? r : undefined;
    });
    assert.equal(down.body.checks['storage']?.ok, false);
    assert.match(down.body.reason ?? '', /^storage: /);
    assert.equal(down.body.checks['database']?.ok, true, 'only the storage is blamed');
    await alive();
    await s3.startGateway();
    await waitFor('readiness to return', async () => (await readiness()).status === 200);
    await pushAndPull('after-s3');
  });
});
