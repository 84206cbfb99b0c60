import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../support/server.js';

/** Sends raw bytes on one connection and collects everything until the server has answered `count` times. */
function exchange(url: string, raw: string, count: number): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((ok, fail) => {
    const socket = connect(Number(port), hostname, () => socket.write(raw));
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if ((text.match(/HTTP\/1\.1 \d{3}/g) ?? []).length >= count && /\r\n\r\n[^]*$/.test(text)) {
        setTimeout(() => socket.end(), 50);
      }
    });
    socket.on('end', () => ok(text));
    socket.on('close', () => ok(text));
    socket.on('error', fail);
  });
}

describe('kept-alive and pipelined connections', () => {
  let server: TestServer;
  let digest = '';
  before(async () => {
    server = await startTestServer();
    const data = randomBytes(1024);
    digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    await fetch(`${server.url}/v2/ka/app/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data });
  });
  after(async () => server.stop());

  it('answers an error that follows a success on the same connection (a queued response is not a gone client)', async () => {
    const missing = `sha256:${'0'.repeat(64)}`;
    const host = new URL(server.url).host;
    const text = await exchange(
      server.url,
      `GET /v2/ka/app/blobs/${digest} HTTP/1.1\r\nHost: ${host}\r\n\r\n` +
        `GET /v2/ka/app/blobs/${missing} HTTP/1.1\r\nHost: ${host}\r\n\r\n` +
        `HEAD /v2/ka/app/blobs/${missing} HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
      3,
    );
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    assert.deepEqual(statuses, ['200', '404', '404']);
    assert.match(text, /BLOB_UNKNOWN/);
  });
});
