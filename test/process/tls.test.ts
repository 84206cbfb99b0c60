import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../support/server.js';
import { loopbackCertificate } from '../support/tls.js';

describe('TLS', () => {
  let server: TestServer | undefined;
  let dir = '';
  after(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves the API over HTTPS when tls.cert and tls.key are set', async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-tls-'));
    const { cert, key } = await loopbackCertificate(dir, 'tls');
    server = await startTestServer({ tls: { cert, key } });
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const { status, version } = await new Promise<{ status: number; version: string | undefined }>((ok, fail) => {
      get(`${server?.url}/v2/`, { rejectUnauthorized: false }, (res) => {
        res.resume();
        ok({ status: res.statusCode ?? 0, version: res.headers['docker-distribution-api-version'] as string | undefined });
      }).on('error', fail);
    });
    assert.equal(status, 200);
    assert.equal(version, 'registry/2.0');
  });
});
