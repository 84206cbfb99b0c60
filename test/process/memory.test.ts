/**
 * The memory bound: a 1 GiB push or pull must not raise the server's RSS by more than
 * ~50 MiB (bodies are streamed, never buffered). This asserts a size, not a speed.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { startBerth, type BerthProcess } from '../support/berth-process.js';

const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;

async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1]) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/** 1 GiB of pseudo-random bytes from one random MiB, each copy tagged so no two MiB are equal. */
function* gibibyte(): Generator<Buffer> {
  const base = randomBytes(MiB);
  for (let i = 0; i < GiB / MiB; i++) {
    const chunk = Buffer.from(base);
    chunk.writeUInt32BE(i, 0);
    yield chunk;
  }
}

function send(url: URL, method: string, body: Readable): Promise<{ status: number; location: string | undefined }> {
  return new Promise((ok, fail) => {
    const req = request(url, { method, headers: { 'Content-Type': 'application/octet-stream' } }, (res) => {
      res.resume();
      res.on('end', () => ok({ status: res.statusCode ?? 0, location: res.headers.location }));
    });
    req.on('error', fail);
    body.on('error', fail);
    body.pipe(req);
  });
}

describe('memory while streaming a 1 GiB blob', () => {
  let server: BerthProcess;
  let digest = '';
  before(async () => {
    server = await startBerth();
    await fetch(`${server.url}/v2/`); // warm up the request path before the baseline
  });
  after(async () => server.stop());

  it('a 1 GiB chunked-encoding push raises peak RSS by less than 50 MiB', async () => {
    const pid = server.proc.pid ?? 0;
    const baseline = await memoryOf(pid);
    const started = await fetch(`${server.url}/v2/big/blob/blobs/uploads/`, { method: 'POST' });
    const location = new URL(started.headers.get('location') ?? '', server.url);
    const hash = createHash('sha256');
    const body = Readable.from(
      (function* () {
        for (const chunk of gibibyte()) {
          hash.update(chunk);
          yield chunk;
        }
      })(),
    );
    const patched = await send(location, 'PATCH', body);
    assert.equal(patched.status, 202);
    digest = `sha256:${hash.digest('hex')}`;
    const closed = await fetch(new URL(`${location.pathname}?digest=${digest}`, server.url), { method: 'PUT' });
    assert.equal(closed.status, 201);
    const after = await memoryOf(pid);
    const growth = after.peak - baseline.rss;
    assert.ok(growth < 50 * MiB, `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
  });

  it('a 1 GiB pull raises peak RSS by less than 50 MiB', async () => {
    const pid = server.proc.pid ?? 0;
    const baseline = await memoryOf(pid);
    let received = 0;
    await new Promise<void>((ok, fail) => {
      request(new URL(`/v2/big/blob/blobs/${digest}`, server.url), (res) => {
        pipeline(
          res,
          new Writable({
            write: (chunk: Buffer, _e, cb) => {
              received += chunk.length;
              cb();
            },
          }),
        ).then(ok, fail);
      })
        .on('error', fail)
        .end();
    });
    assert.equal(received, GiB);
    const after = await memoryOf(pid);
    const growth = after.peak - Math.max(baseline.rss, 0);
    assert.ok(growth < 50 * MiB, `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
  });
});
