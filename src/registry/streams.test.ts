import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { RegistryError } from '../oci/errors.js';
import { ingest } from './streams.js';

/** A sink that keeps what it is given; `delay` makes each write land on a later turn (a slow disk). */
function keeper(options: { highWaterMark?: number; delay?: boolean; failAt?: number } = {}) {
  const chunks: Buffer[] = [];
  let mostQueued = 0;
  const sink = new Writable({
    highWaterMark: options.highWaterMark ?? 16 * 1024,
    write(chunk: Buffer, _enc, callback) {
      mostQueued = Math.max(mostQueued, sink.writableLength);
      chunks.push(chunk);
      const received = chunks.reduce((sum, c) => sum + c.length, 0);
      const error = options.failAt !== undefined && received >= options.failAt ? new Error('disk full') : undefined;
      if (options.delay) setImmediate(() => callback(error));
      else callback(error);
    },
  });
  return { sink, data: () => Buffer.concat(chunks), mostQueued: () => mostQueued };
}

function pieces(count: number, size: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => Buffer.alloc(size, i));
}

/** An ingest into `sink` from an open source that has sent 10 bytes so far. */
function ingestStarted(sink: Writable) {
  const source = new Readable({ read() {} });
  const done = ingest(source, sink, createHash('sha256'));
  source.push(Buffer.alloc(10));
  return { source, done };
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('ingest', () => {
  it('stores, counts and hashes every byte of the source', async () => {
    const parts = pieces(7, 1000);
    const { sink, data } = keeper();
    const hash = createHash('sha256');
    const bytes = await ingest(Readable.from(parts), sink, hash);
    assert.equal(bytes, 7000);
    assert.deepEqual(data(), Buffer.concat(parts));
    assert.equal(hash.digest('hex'), sha256(Buffer.concat(parts)));
    assert.ok(sink.writableFinished, 'the sink has finished before ingest resolves');
  });

  it('finishes an empty source with an empty sink', async () => {
    const { sink, data } = keeper();
    assert.equal(await ingest(Readable.from([]), sink, createHash('sha256')), 0);
    assert.equal(data().length, 0);
    assert.ok(sink.writableFinished);
  });

  it('continues a running hash', async () => {
    const hash = createHash('sha256').update('hello ');
    await ingest(Readable.from([Buffer.from('world')]), keeper().sink, hash);
    assert.equal(hash.digest('hex'), sha256(Buffer.from('hello world')));
  });

  it('pauses the source while the sink is full', async () => {
    const { sink, data, mostQueued } = keeper({ highWaterMark: 4096, delay: true });
    const parts = pieces(200, 1024);
    await ingest(Readable.from(parts, { objectMode: false, highWaterMark: 1024 }), sink, createHash('sha256'));
    assert.deepEqual(data(), Buffer.concat(parts));
    // Without backpressure all 200 KiB would queue in the sink at once.
    assert.ok(mostQueued() <= 8 * 1024, `at most ${mostQueued()} bytes queued in the sink`);
  });

  it('fails with the limit error as soon as the source passes the limit, and stores no more', async () => {
    const { sink, data } = keeper();
    const source = Readable.from(pieces(10, 100));
    const error = new RegistryError('SIZE_INVALID', 'body is longer than declared');
    await assert.rejects(ingest(source, sink, createHash('sha256'), { bytes: 450, error: () => error }), (err) => err === error);
    assert.ok(data().length <= 400, `${data().length} bytes stored`);
    assert.ok(sink.destroyed, 'the sink is destroyed (a storage upload is undone)');
    assert.ok(source.destroyed, 'the source is destroyed');
  });

  it('accepts a source of exactly the limit', async () => {
    assert.equal(
      await ingest(Readable.from(pieces(3, 100)), keeper().sink, createHash('sha256'), { bytes: 300, error: () => new RegistryError('SIZE_INVALID') }),
      300,
    );
  });

  it('fails with the source error and destroys the sink', async () => {
    const { sink } = keeper();
    const { source, done } = ingestStarted(sink);
    const failure = new Error('connection reset');
    source.destroy(failure);
    await assert.rejects(done, (err) => err === failure);
    assert.ok(sink.destroyed);
  });

  it('fails as a premature close when the source closes before its end (the client went away)', async () => {
    const { sink } = keeper();
    const { source, done } = ingestStarted(sink);
    setImmediate(() => source.destroy());
    await assert.rejects(done, { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    assert.ok(sink.destroyed);
  });

  it('refuses a source already closed before its end', async () => {
    const source = new Readable({ read() {} });
    source.destroy();
    const { sink } = keeper();
    await assert.rejects(ingest(source, sink, createHash('sha256')), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    assert.ok(sink.destroyed);
  });

  it('fails with the sink error and destroys the source', async () => {
    const { sink } = keeper({ failAt: 300, delay: true });
    const source = Readable.from(pieces(10, 100));
    await assert.rejects(ingest(source, sink, createHash('sha256')), /disk full/);
    assert.ok(source.destroyed);
  });

  it('fails when the sink closes before it finished', async () => {
    const { sink } = keeper({ delay: true });
    const { source, done } = ingestStarted(sink);
    setImmediate(() => sink.destroy());
    await assert.rejects(done, { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    assert.ok(source.destroyed);
  });

  it('reports a failure only once the sink has closed (its last write landed, its upload undone)', async () => {
    let undone = false;
    const sink = new Writable({
      write(_chunk, _enc, callback) {
        callback();
      },
      destroy(error, callback) {
        setTimeout(() => {
          undone = true;
          callback(error);
        }, 20);
      },
    });
    const { source, done } = ingestStarted(sink);
    source.destroy(new Error('connection reset'));
    await assert.rejects(done, /connection reset/);
    assert.ok(undone, 'the sink finished undoing before the failure was reported');
  });
});
