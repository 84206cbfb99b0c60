import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { spentTotal } from '../shared/spent-buffers.js';
import { BatchedFileWriter } from './batched-file-writer.js';

describe('BatchedFileWriter', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-batched-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  /** Splits `data` into pieces of the given sizes (cycling), as a socket might deliver it. */
  const pieces = (data: Buffer, sizes: number[]): Buffer[] => {
    const out: Buffer[] = [];
    for (let at = 0, i = 0; at < data.length; i++) {
      const size = sizes[i % sizes.length] as number;
      out.push(data.subarray(at, at + size));
      at += size;
    }
    return out;
  };

  it('writes every byte in order, whatever the chunk sizes (large, tiny, mixed, across batch edges)', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 123);
    for (const sizes of [[65_536], [1], [7, 70_000, 16_383, 16_384, 3], [3 * 1024 * 1024]]) {
      const path = join(dir, `mixed-${sizes.join('-')}`);
      const chunks = sizes[0] === 1 ? pieces(data.subarray(0, 200_000), sizes) : pieces(data, sizes);
      await pipeline(Readable.from(chunks), new BatchedFileWriter(await open(path, 'w')));
      assert.ok((await readFile(path)).equals(Buffer.concat(chunks)), `sizes ${sizes.join(',')}`);
    }
  });

  it('counts every byte as spent once it is written, for the paced young collections', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 123);
    const before = spentTotal();
    await pipeline(Readable.from(pieces(data, [65_536, 1_000])), new BatchedFileWriter(await open(join(dir, 'spent'), 'w')));
    assert.equal(spentTotal() - before, data.length);
  });

  it('appends after what the file holds', async () => {
    const path = join(dir, 'append');
    await pipeline(Readable.from([Buffer.from('head-')]), new BatchedFileWriter(await open(path, 'w')));
    await pipeline(Readable.from([Buffer.from('tail')]), new BatchedFileWriter(await open(path, 'a')));
    assert.equal(await readFile(path, 'utf8'), 'head-tail');
  });

  it('an empty body makes an empty file', async () => {
    const path = join(dir, 'empty');
    await pipeline(Readable.from([]), new BatchedFileWriter(await open(path, 'w')));
    assert.equal((await readFile(path)).length, 0);
  });

  it('on a failing source: fails the pipeline, closes the file, and what landed is a prefix of the body', async () => {
    const path = join(dir, 'failing');
    const data = randomBytes(6 * 1024 * 1024);
    let sent = 0;
    const cut = new Transform({
      transform(chunk: Buffer, _enc, callback) {
        sent += chunk.length;
        callback(sent > 5 * 1024 * 1024 ? new Error('client went away') : null, chunk);
      },
    });
    const handle = await open(path, 'w');
    const writer = new BatchedFileWriter(handle);
    const closed = new Promise((resolve) => writer.once('close', resolve));
    await assert.rejects(pipeline(Readable.from(pieces(data, [65_536])), cut, writer), /client went away/);
    await closed;
    await assert.rejects(handle.stat(), /EBADF|closed/, 'the handle is closed');
    const landed = await readFile(path);
    assert.ok(landed.length <= 5 * 1024 * 1024);
    assert.ok(landed.equals(data.subarray(0, landed.length)));
  });

  it('reports a write error (a file opened read-only) through the pipeline', async () => {
    const path = join(dir, 'read-only');
    await pipeline(Readable.from([Buffer.from('x')]), new BatchedFileWriter(await open(path, 'w')));
    await assert.rejects(pipeline(Readable.from(pieces(randomBytes(3 * 1024 * 1024), [65_536])), new BatchedFileWriter(await open(path, 'r'))), /EBADF/);
  });
});
