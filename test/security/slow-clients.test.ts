// Slow clients cannot hold connections open without bound: a request head trickled byte by byte is
// cut by headersTimeout; a request body (a blob upload, a manifest, a token form) trickled a byte at
// a time is cut once a window passes with less than the minimum; a client that stops reading a
// blob download is cut the same way. A client that is slow but keeps up with the minimum is not.
// Windows are shortened by configuration so the test runs in seconds.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { urls } from '../../src/api/urls.js';
import { startTestServer, type TestServer } from '../support/server.js';

const windowMs = 300;
const minBytes = 256;

/** Resolves when the server closes `socket` (or rejects after `limitMs`: not cut). */
function closedWithin(socket: Socket, limitMs: number): Promise<{ afterMs: number; received: string }> {
  const started = Date.now();
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.on('error', () => {});
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`the server kept the connection open for ${limitMs} ms`)), limitMs);
    socket.once('close', () => {
      clearTimeout(timer);
      ok({ afterMs: Date.now() - started, received });
    });
  });
}

/** Opens a connection and sends `head`, then `body` one byte every `everyMs` (until closed). */
async function trickle(url: string, head: string, body: Buffer, everyMs: number): Promise<{ socket: Socket; sent: () => number }> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise<void>((ok) => socket.once('connect', ok));
  socket.write(head);
  let at = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || at >= body.length) return clearInterval(timer);
    socket.write(body.subarray(at, at + 1));
    at++;
  }, everyMs);
  socket.once('close', () => clearInterval(timer));
  return { socket, sent: () => at };
}

describe('slow clients', () => {
  let server: TestServer;
  const logLines: string[] = [];

  before(async () => {
    server = await startTestServer({
      logLines,
      config: { http: { headersTimeoutMs: 500, body: { windowMs, minBytes }, response: { windowMs, minBytes } } },
    });
  });
  after(() => server.stop());

  it('cuts a client that trickles the request head', async () => {
    const { socket } = await trickle(server.url, '', Buffer.from(`GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(500)}`), 20);
    const { received } = await closedWithin(socket, 10_000);
    assert.match(received, /^HTTP\/1\.1 408/);
  });

  it('cuts a blob upload whose body arrives a byte at a time', async () => {
    const start = await fetch(`${server.url}${urls.uploads('slow/app')}`, { method: 'POST' });
    assert.equal(start.status, 202);
    const location = start.headers.get('location') ?? '';
    const body = randomBytes(4096);
    const head = `PATCH ${location} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n`;
    const { socket, sent } = await trickle(server.url, head, body, 10);
    await closedWithin(socket, 10_000);
    assert.ok(sent() < body.length, 'cut before the body was complete');
    assert.ok(logLines.some((line) => line.includes('too slow') && line.includes('request body')));
  });

  it('cuts a chunked monolithic upload, a manifest and a token form trickled the same way', async () => {
    const digest = `sha256:${createHash('sha256').update('x').digest('hex')}`;
    const heads = [
      `POST ${urls.uploads('slow/app', { digest })} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`,
      `PUT ${urls.manifest('slow/app', 'v1')} HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 2000\r\n\r\n`,
      `POST ${urls.token()} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 2000\r\n\r\n`,
    ];
    await Promise.all(
      heads.map(async (head) => {
        const { socket, sent } = await trickle(server.url, head, Buffer.alloc(2000, 0x61), 10);
        await closedWithin(socket, 10_000);
        assert.ok(sent() < 2000, `${head.split(' ')[0]} cut before the body was complete`);
      }),
    );
  });

  it('does not cut a client that is slow but keeps above the minimum', async () => {
    const start = await fetch(`${server.url}${urls.uploads('slow/app')}`, { method: 'POST' });
    const location = start.headers.get('location') ?? '';
    const body = randomBytes(24 * 1024);
    const chunks: Buffer[] = [];
    for (let at = 0; at < body.length; at += 2048) chunks.push(body.subarray(at, at + 2048));
    // 2 KiB every 100 ms: about 6 KiB a window, far above the 256 bytes required, over 1.2 s (4 windows).
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const next = chunks.shift();
        if (!next) return controller.close();
        await new Promise((ok) => setTimeout(ok, 100));
        controller.enqueue(next);
      },
    });
    const res = await fetch(`${server.url}${location}`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    assert.equal(res.status, 202);
    assert.equal(res.headers.get('range'), `0-${body.length - 1}`);
  });

  it('cuts a client that stops reading a blob download', async () => {
    const blob = randomBytes(16 * 1024 * 1024);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const put = await fetch(`${server.url}${urls.uploads('slow/big', { digest })}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: blob,
    });
    assert.equal(put.status, 201);
    const { hostname, port } = new URL(server.url);
    const socket = connect(Number(port), hostname);
    await new Promise<void>((ok) => socket.once('connect', ok));
    socket.write(`GET ${urls.blob('slow/big', digest)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    // Read the first bytes, then stop reading altogether.
    await new Promise<void>((ok) => socket.once('data', () => ok()));
    socket.pause();
    const deadline = Date.now() + 10_000;
    while (!logLines.some((line) => line.includes('too slow') && line.includes('response:'))) {
      assert.ok(Date.now() < deadline, 'the server kept sending to a client that stopped reading');
      await new Promise((ok) => setTimeout(ok, 50));
    }
    socket.destroy();
  });
});
