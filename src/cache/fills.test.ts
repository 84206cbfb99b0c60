import assert from 'node:assert/strict';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { BlobFill } from './fills.js';

/** A sink that keeps what it is given. */
function sink(): Writable & { bytes(): Buffer } {
  const chunks: Buffer[] = [];
  const writable = new Writable({
    write(chunk: Buffer, _enc, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  return Object.assign(writable, { bytes: () => Buffer.concat(chunks) });
}

/** Feeds `chunks` through the fill's tap into a discarding commit path; returns the tap's end. */
async function feed(fill: BlobFill, chunks: Buffer[]): Promise<void> {
  await pipeline(Readable.from(chunks), fill.tap(), new PassThrough().resume());
}

describe('BlobFill', () => {
  const data = Buffer.from('0123456789abcdefghij');
  const chunks = [data.subarray(0, 5), data.subarray(5, 10), data.subarray(10, 15), data.subarray(15)];

  it('holds the last byte back until the blob is stored, then delivers everything', async () => {
    const fill = new BlobFill('sha256:x', data.length, 1024);
    const out = sink();
    const reading = fill.pipe(
      out,
      undefined,
      () => undefined,
      async () => assert.fail('read from the window'),
    );
    await feed(fill, chunks);
    await tick();
    assert.equal(out.bytes().length, data.length - 1, 'all but the last byte before the commit');
    fill.complete();
    await reading;
    assert.ok(out.bytes().equals(data));
  });

  it('fails every reader when the fill fails, without the last byte', async () => {
    const fill = new BlobFill('sha256:x', data.length, 1024);
    const outs = [sink(), sink()];
    const readers = outs.map((out) =>
      fill.pipe(
        out,
        undefined,
        () => undefined,
        async () => undefined,
      ),
    );
    await feed(fill, chunks);
    fill.fail(new Error('digest mismatch'));
    for (const reader of readers) await assert.rejects(reader, /digest mismatch/);
    for (const out of outs) assert.ok(out.bytes().length < data.length);
  });

  it('serves a range from the window', async () => {
    const fill = new BlobFill('sha256:x', data.length, 1024);
    const out = sink();
    const reading = fill.pipe(
      out,
      { start: 3, end: 12 },
      () => undefined,
      async () => assert.fail('read from the window'),
    );
    await feed(fill, chunks);
    await reading;
    assert.equal(out.bytes().toString(), data.subarray(3, 13).toString(), 'a range ending before the last byte needs no commit');
    fill.complete();
  });

  it('keeps at most windowBytes: a reader that falls behind reads the rest from storage once stored', async () => {
    const fill = new BlobFill('sha256:x', data.length, 6);
    // A reader that accepts nothing until released (its buffer is full).
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const chunksSeen: Buffer[] = [];
    const slow = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _enc, callback) {
        chunksSeen.push(chunk);
        void released.then(() => callback());
      },
    });
    const stored: Array<{ start: number; end: number }> = [];
    const reading = fill.pipe(
      slow,
      undefined,
      () => undefined,
      async (range) => {
        stored.push(range);
        chunksSeen.push(data.subarray(range.start, range.end + 1));
      },
    );
    await feed(fill, chunks);
    fill.complete();
    release();
    await reading;
    assert.equal(stored.length, 1, 'the rest came from storage');
    assert.ok(Buffer.concat(chunksSeen).equals(data));
  });

  it('lets a reader that joins late read from the start while the window still holds it', async () => {
    const fill = new BlobFill('sha256:x', data.length, 1024);
    await feed(fill, chunks.slice(0, 2));
    const out = sink();
    const reading = fill.pipe(
      out,
      undefined,
      () => undefined,
      async () => assert.fail('read from the window'),
    );
    await feed(fill, chunks.slice(2));
    fill.complete();
    await reading;
    assert.ok(out.bytes().equals(data));
  });

  it('stops a reader whose client went away, and the fill goes on', async () => {
    const fill = new BlobFill('sha256:x', data.length, 1024);
    const out = sink();
    const reading = fill.pipe(
      out,
      undefined,
      () => undefined,
      async () => undefined,
    );
    out.destroy();
    await feed(fill, chunks);
    await assert.rejects(reading, /client went away/);
    fill.complete();
    await fill.settled;
  });
});
