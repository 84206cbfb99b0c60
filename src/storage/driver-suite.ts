/**
 * The one test suite every storage driver must pass (filesystem now, S3 later). Call it from the
 * driver's test file with a factory that returns a fresh, empty driver.
 */
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { sendObject, StorageNotFoundError, type StorageDriver } from './driver.js';

async function put(driver: StorageDriver, path: string, data: Buffer | string, append = false): Promise<void> {
  await pipeline(Readable.from([Buffer.from(data)]), await driver.write(path, { append }));
}

async function get(driver: StorageDriver, path: string, range?: { start: number; end: number }): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await driver.read(path, range)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

export function runDriverSuite(name: string, makeDriver: () => Promise<StorageDriver>): void {
  describe(`storage driver: ${name}`, () => {
    it('writes, stats and reads an object', async () => {
      const driver = await makeDriver();
      await put(driver, 'a/b/data', 'hello');
      assert.equal((await driver.stat('a/b/data'))?.size, 5);
      assert.equal(await get(driver, 'a/b/data'), 'hello');
    });

    it('appends to an object, creating it if absent', async () => {
      const driver = await makeDriver();
      await put(driver, 'up/data', 'abc', true);
      await put(driver, 'up/data', 'def', true);
      assert.equal(await get(driver, 'up/data'), 'abcdef');
    });

    it('reads an inclusive byte range', async () => {
      const driver = await makeDriver();
      await put(driver, 'r/data', '0123456789');
      assert.equal(await get(driver, 'r/data', { start: 2, end: 5 }), '2345');
    });

    it('sends an object or a range into a writable, calling ready() first (sendObject, fast path or not)', async () => {
      const driver = await makeDriver();
      await put(driver, 's/data', Buffer.alloc(3 * 1024 * 1024 + 7, 'x'));
      const chunks: Buffer[] = [];
      let readyCalls = 0;
      const sink = new Writable({
        write(chunk: Buffer, _enc, callback) {
          chunks.push(Buffer.from(chunk)); // copy: the driver may reuse its buffers after the callback
          callback();
        },
      });
      await sendObject(driver, 's/data', sink, () => readyCalls++);
      assert.equal(Buffer.concat(chunks).length, 3 * 1024 * 1024 + 7);
      assert.equal(readyCalls, 1);
      chunks.length = 0;
      await sendObject(driver, 's/data', sink, () => readyCalls++, { start: 5, end: 9 });
      assert.equal(Buffer.concat(chunks).toString(), 'xxxxx');
      let called = false;
      await assert.rejects(
        sendObject(driver, 'missing/data', sink, () => (called = true)),
        StorageNotFoundError,
      );
      assert.equal(called, false);
    });

    it('reports absent objects: stat undefined, read StorageNotFoundError', async () => {
      const driver = await makeDriver();
      assert.equal(await driver.stat('nope/data'), undefined);
      await assert.rejects(driver.read('nope/data'), StorageNotFoundError);
    });

    it('moves atomically, replacing the target', async () => {
      const driver = await makeDriver();
      await put(driver, 'src/data', 'new');
      await put(driver, 'dst/data', 'old');
      await driver.move('src/data', 'dst/data');
      assert.equal(await get(driver, 'dst/data'), 'new');
      assert.equal(await driver.stat('src/data'), undefined);
      await assert.rejects(driver.move('src/data', 'dst/data'), StorageNotFoundError);
    });

    it('leaves no empty prefix behind a move: an upload committed into place no longer lists', async () => {
      const driver = await makeDriver();
      await put(driver, 'uploads/one/data', 'x');
      await put(driver, 'uploads/two/data', 'y');
      await driver.move('uploads/one/data', 'blobs/one/data');
      assert.deepEqual(await driver.list('uploads'), ['two']);
      await driver.move('uploads/two/data', 'blobs/two/data');
      assert.deepEqual(await driver.list('uploads'), []);
      assert.deepEqual(await driver.list('blobs'), ['one', 'two']);
    });

    it('lists direct children and deletes a whole prefix', async () => {
      const driver = await makeDriver();
      await put(driver, 'p/one/data', '1');
      await put(driver, 'p/two/data', '2');
      assert.deepEqual(await driver.list('p'), ['one', 'two']);
      await driver.delete('p');
      assert.deepEqual(await driver.list('p'), []);
      await driver.delete('p'); // absent: not an error
    });

    for (const unsafe of ['../x', 'a/../../x', '/etc/passwd', 'a//b', 'A/B', '']) {
      it(`refuses the unsafe path ${JSON.stringify(unsafe)}`, async () => {
        const driver = await makeDriver();
        await assert.rejects(driver.stat(unsafe), /unsafe storage path/);
        await assert.rejects(driver.write(unsafe, { append: false }), /unsafe storage path/);
      });
    }
  });
}
