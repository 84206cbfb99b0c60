/**
 * The S3 driver against a real S3 implementation (Ceph RADOS Gateway, or the service named by
 * BERTH_TEST_S3_* env): the shared driver suite, then what only S3 has to get right (appends to
 * open uploads and as segments, multipart writes, aborted writes, prefixes, presigned URLs, credential errors).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { runDriverSuite } from '../../src/storage/driver-suite.js';
import { S3Driver, type S3Settings } from '../../src/storage/s3.js';
import { copyRanges } from '../../src/storage/s3-assemble.js';
import { partSizeFor } from '../../src/storage/s3-upload.js';
import { ensureBucket, removeBucket, s3Service, s3TestClient } from '../support/s3.js';

const MiB = 1024 * 1024;

const buckets: string[] = [];
after(async () => {
  for (const bucket of buckets) await removeBucket(bucket);
});

async function freshBucket(): Promise<string> {
  const bucket = `berth-driver-${randomUUID()}`;
  await ensureBucket(bucket);
  buckets.push(bucket);
  return bucket;
}

async function settingsFor(bucket: string, overrides: Partial<S3Settings> = {}): Promise<S3Settings> {
  const s3 = await s3Service();
  return {
    bucket,
    prefix: '',
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    accessKeyId: s3.accessKeyId,
    secretAccessKeyFile: s3.secretAccessKeyFile,
    redirect: false,
    redirectTtlMs: 60_000,
    partSizeBytes: 5 * MiB,
    ...overrides,
  };
}

async function freshDriver(overrides: Partial<S3Settings> = {}): Promise<{ driver: S3Driver; bucket: string }> {
  const bucket = await freshBucket();
  return { driver: S3Driver.fromConfig(await settingsFor(bucket, overrides)), bucket };
}

async function put(driver: S3Driver, path: string, data: Buffer, append = false): Promise<void> {
  await pipeline(Readable.from(chunks(data, 256 * 1024)), await driver.write(path, { append }));
}

function* chunks(data: Buffer, size: number): Generator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
  if (data.length === 0) yield data;
}

async function get(driver: S3Driver, path: string, range?: { start: number; end: number }): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of await driver.read(path, range)) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function keysIn(bucket: string): Promise<string[]> {
  const client = await s3TestClient();
  try {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    return (page.Contents ?? []).map((object) => object.Key ?? '').sort();
  } finally {
    client.destroy();
  }
}

async function openUploadKeys(bucket: string): Promise<string[]> {
  const client = await s3TestClient();
  try {
    const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    return (page.Uploads ?? []).map((upload) => upload.Key ?? '').sort();
  } finally {
    client.destroy();
  }
}

runDriverSuite('s3', async () => (await freshDriver()).driver);

describe('storage driver: s3 arithmetic', () => {
  it('grows the part size every 1,000 parts, so 10,000 parts hold 55,000 base parts', () => {
    assert.equal(partSizeFor(1, 16 * MiB), 16 * MiB);
    assert.equal(partSizeFor(1000, 16 * MiB), 16 * MiB);
    assert.equal(partSizeFor(1001, 16 * MiB), 32 * MiB);
    let total = 0;
    for (let part = 1; part <= 10_000; part++) total += partSizeFor(part, MiB);
    assert.equal(total, 55_000 * MiB);
  });

  it('splits sources over 5 GiB into contiguous part copies of at most 5 GiB', () => {
    const GiB = 1024 * MiB;
    const ranges = copyRanges([
      { key: 'a', size: 12 * GiB + 1 },
      { key: 'b', size: 7 * MiB },
    ]);
    assert.deepEqual(
      ranges.map((r) => r.key),
      ['a', 'a', 'a', 'b'],
    );
    for (const range of ranges) assert.ok(range.end - range.start + 1 <= 5 * GiB && range.end - range.start + 1 >= 5 * MiB);
    const ofA = ranges.filter((r) => r.key === 'a');
    assert.equal(ofA[0]?.start, 0);
    assert.equal(ofA.at(-1)?.end, 12 * GiB);
    for (let i = 1; i < ofA.length; i++) assert.equal(ofA[i]?.start, (ofA[i - 1]?.end ?? 0) + 1);
  });
});

describe('storage driver: s3 client', () => {
  it("writes nothing to stderr when it makes its S3 client (the SDK's Node-version notice is turned off)", async () => {
    const driver = fileURLToPath(new URL('../../src/storage/s3.ts', import.meta.url));
    const script = `const { S3Driver } = await import(${JSON.stringify(driver)});
      S3Driver.fromConfig({ bucket: 'b', prefix: '', region: 'us-east-1', endpoint: 'http://127.0.0.1:9', forcePathStyle: true, partSizeBytes: 16777216 });
      await new Promise((resolve) => setImmediate(resolve));`;
    const env = { ...process.env };
    delete env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'];
    const { stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env });
    assert.equal(stderr, '');
  });
});

describe('storage driver: s3 specifics', () => {
  it('appends into one open multipart upload (parts and a tail); a move completes it in place and copies one object', async () => {
    const { driver, bucket } = await freshDriver();
    const pieces = [randomBytes(6 * MiB), randomBytes(5 * MiB), randomBytes(1000)];
    for (const piece of pieces) await put(driver, 'uploads/u1/data', piece, true);
    const whole = Buffer.concat(pieces);
    assert.equal((await driver.stat('uploads/u1/data'))?.size, whole.length);
    assert.deepEqual(await driver.list('uploads/u1'), ['data']);
    assert.deepEqual(await driver.list('uploads'), ['u1']);
    const keys = await keysIn(bucket);
    assert.deepEqual(
      keys.map((key) => key.replace(/~tail\/.*$/, '~tail/…')),
      ['uploads/u1/data~tail/…', 'uploads/u1/data~upload'],
      'the record and the tail; the parts are in the open upload',
    );
    assert.deepEqual(await openUploadKeys(bucket), ['uploads/u1/data']);

    await driver.move('uploads/u1/data', 'blobs/x/data');
    assert.equal(await driver.stat('uploads/u1/data'), undefined);
    assert.deepEqual(await keysIn(bucket), ['blobs/x/data'], 'the record and the tail are gone, the target is one object');
    assert.deepEqual(await openUploadKeys(bucket), [], 'the upload was completed');
    assert.equal(sha256(await get(driver, 'blobs/x/data')), sha256(whole));
    const across = { start: 6 * MiB - 10, end: 11 * MiB + 9 }; // spans the appends
    assert.ok((await get(driver, 'blobs/x/data', across)).equals(whole.subarray(across.start, across.end + 1)));
  });

  it('takes appends of any size, empty ones included, into the open upload', async () => {
    const { driver, bucket } = await freshDriver();
    const pieces = [randomBytes(6 * MiB), randomBytes(3), Buffer.alloc(0), randomBytes(2 * MiB), randomBytes(4 * MiB)];
    for (const piece of pieces) await put(driver, 'uploads/u2/data', piece, true);
    const whole = Buffer.concat(pieces);
    assert.equal((await driver.stat('uploads/u2/data'))?.size, whole.length);
    await driver.move('uploads/u2/data', 'blobs/y/data');
    assert.deepEqual(await keysIn(bucket), ['blobs/y/data']);
    assert.equal(sha256(await get(driver, 'blobs/y/data')), sha256(whole));
  });

  it('keeps an object under 5 MiB as segments, with no multipart upload, and opens one when it grows past', async () => {
    const { driver, bucket } = await freshDriver();
    const small = [randomBytes(3), randomBytes(2 * MiB), randomBytes(2 * MiB)];
    for (const piece of small) await put(driver, 'uploads/u3/data', piece, true);
    assert.deepEqual(
      (await keysIn(bucket)).map((key) => key.replace(/\d+$/, 'N')),
      ['uploads/u3/data~segments/N', 'uploads/u3/data~segments/N', 'uploads/u3/data~segments/N'],
    );
    assert.deepEqual(await openUploadKeys(bucket), []);
    assert.equal((await driver.stat('uploads/u3/data'))?.size, 4 * MiB + 3);
    const big = randomBytes(7 * MiB);
    await put(driver, 'uploads/u3/data', big, true);
    assert.deepEqual(
      (await keysIn(bucket)).map((key) => key.replace(/~tail\/.*$/, '~tail/…')),
      ['uploads/u3/data~tail/…', 'uploads/u3/data~upload'],
      'the segments led the first part and are gone',
    );
    assert.deepEqual(await openUploadKeys(bucket), ['uploads/u3/data']);
    const whole = Buffer.concat([...small, big]);
    assert.equal((await driver.stat('uploads/u3/data'))?.size, whole.length);
    await driver.move('uploads/u3/data', 'blobs/z/data');
    assert.equal(sha256(await get(driver, 'blobs/z/data')), sha256(whole));
    assert.deepEqual(await keysIn(bucket), ['blobs/z/data']);
  });

  it('opens an upload when segments reach 5 MiB at the end of an append', async () => {
    const { driver, bucket } = await freshDriver({ partSizeBytes: 8 * MiB });
    const pieces = [randomBytes(3 * MiB), randomBytes(3 * MiB)];
    for (const piece of pieces) await put(driver, 'uploads/u8/data', piece, true);
    assert.deepEqual(await keysIn(bucket), ['uploads/u8/data~upload'], 'one part of 6 MiB, no tail');
    await driver.move('uploads/u8/data', 'blobs/t/data');
    assert.equal(sha256(await get(driver, 'blobs/t/data')), sha256(Buffer.concat(pieces)));
  });

  it('reads an open upload by completing it; appends after that continue it as segments', async () => {
    const { driver, bucket } = await freshDriver();
    const first = [randomBytes(6 * MiB), randomBytes(3)];
    for (const piece of first) await put(driver, 'uploads/u4/data', piece, true);
    assert.equal(sha256(await get(driver, 'uploads/u4/data')), sha256(Buffer.concat(first)));
    assert.deepEqual(await keysIn(bucket), ['uploads/u4/data'], 'a plain object now');
    assert.deepEqual(await openUploadKeys(bucket), []);
    const more = randomBytes(2 * MiB);
    await put(driver, 'uploads/u4/data', more, true);
    const whole = Buffer.concat([...first, more]);
    assert.equal((await driver.stat('uploads/u4/data'))?.size, whole.length);
    const across = { start: 6 * MiB - 2, end: 6 * MiB + 10 };
    assert.ok((await get(driver, 'uploads/u4/data', across)).equals(whole.subarray(across.start, across.end + 1)));
    await driver.move('uploads/u4/data', 'blobs/w/data');
    assert.equal(sha256(await get(driver, 'blobs/w/data')), sha256(whole));
    assert.deepEqual(await keysIn(bucket), ['blobs/w/data']);
  });

  it('continues a plain object as segments and moves them, a small one first, by streaming them into one object', async () => {
    const { driver, bucket } = await freshDriver();
    const pieces = [randomBytes(3), randomBytes(6 * MiB), randomBytes(2 * MiB)];
    await put(driver, 'uploads/u5/data', pieces[0] as Buffer);
    for (const piece of pieces.slice(1)) await put(driver, 'uploads/u5/data', piece, true);
    assert.deepEqual(
      (await keysIn(bucket)).map((key) => key.replace(/\d+$/, 'N')),
      ['uploads/u5/data~segments/N', 'uploads/u5/data~segments/N', 'uploads/u5/data~segments/N'],
    );
    const whole = Buffer.concat(pieces);
    assert.ok((await get(driver, 'uploads/u5/data', { start: 1, end: 5 })).equals(whole.subarray(1, 6)));
    await driver.move('uploads/u5/data', 'blobs/v/data');
    assert.deepEqual(await keysIn(bucket), ['blobs/v/data']);
    assert.equal(sha256(await get(driver, 'blobs/v/data')), sha256(whole));
  });

  it('a failed append leaves an open upload as it was; the next append replaces what it sent', async () => {
    const { driver, bucket } = await freshDriver();
    const first = randomBytes(6 * MiB);
    await put(driver, 'uploads/u6/data', first, true);
    const writer = await driver.write('uploads/u6/data', { append: true });
    for (const chunk of chunks(randomBytes(12 * MiB), MiB)) {
      if (!writer.write(chunk)) await once(writer, 'drain');
    }
    const closed = new Promise((ok) => writer.once('close', ok));
    writer.once('error', () => undefined);
    writer.destroy(new Error('client went away'));
    await closed;
    assert.equal((await driver.stat('uploads/u6/data'))?.size, first.length);
    assert.deepEqual(await openUploadKeys(bucket), ['uploads/u6/data'], 'the open upload stays');
    const second = randomBytes(1000);
    await put(driver, 'uploads/u6/data', second, true);
    await driver.move('uploads/u6/data', 'blobs/u/data');
    assert.equal(sha256(await get(driver, 'blobs/u/data')), sha256(Buffer.concat([first, second])));
    assert.deepEqual(await keysIn(bucket), ['blobs/u/data']);
  });

  it('deletes an open upload with its parts, record and tail', async () => {
    const { driver, bucket } = await freshDriver();
    await put(driver, 'uploads/u7/data', randomBytes(6 * MiB), true);
    await driver.delete('uploads/u7');
    assert.deepEqual(await keysIn(bucket), []);
    assert.deepEqual(await openUploadKeys(bucket), [], 'the multipart upload was aborted');
    assert.equal(await driver.stat('uploads/u7/data'), undefined);
  });

  it('lets a plain write win over earlier appends, and appends after it continue the plain content', async () => {
    const { driver, bucket } = await freshDriver();
    await put(driver, 'x/data', Buffer.from('old'), true);
    await put(driver, 'x/data', Buffer.from('stale'), true);
    await put(driver, 'x/data', Buffer.from('new'));
    assert.equal((await get(driver, 'x/data')).toString(), 'new');
    assert.equal((await driver.stat('x/data'))?.size, 3);
    assert.deepEqual(await driver.list('x'), ['data']);
    await put(driver, 'x/data', Buffer.from('+more'), true);
    assert.equal((await get(driver, 'x/data')).toString(), 'new+more');
    await driver.move('x/data', 'y/data');
    assert.equal((await get(driver, 'y/data')).toString(), 'new+more');
    await put(driver, 'x/data', Buffer.from('again'), true);
    assert.equal((await get(driver, 'x/data')).toString(), 'again', 'nothing of the moved object is left behind');
    await driver.delete('x');
    await driver.delete('y/data');
    assert.deepEqual(await keysIn(bucket), []);
  });

  it('writes a 40 MiB object as a multipart upload and reads it back intact', async () => {
    const { driver, bucket } = await freshDriver();
    const data = randomBytes(40 * MiB);
    await put(driver, 'big/data', data);
    assert.equal((await driver.stat('big/data'))?.size, data.length);
    assert.equal(sha256(await get(driver, 'big/data')), sha256(data));
    const client = await s3TestClient();
    try {
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big/data' }));
      assert.match(head.ETag ?? '', /-\d+"?$/, 'a multipart ETag ends in -<parts>');
    } finally {
      client.destroy();
    }
    const range = { start: 17 * MiB + 3, end: 33 * MiB };
    assert.ok((await get(driver, 'big/data', range)).equals(data.subarray(range.start, range.end + 1)));
  });

  for (const [label, bytes] of [
    ['below one part', 1000],
    ['after parts were sent', 12 * MiB],
  ] as const) {
    it(`a destroyed write stream leaves nothing visible (${label})`, async () => {
      const { driver, bucket } = await freshDriver();
      for (const append of [false, true]) {
        const writer = await driver.write('w/data', { append });
        for (const chunk of chunks(randomBytes(bytes), MiB)) {
          if (!writer.write(chunk)) await once(writer, 'drain');
        }
        const closed = new Promise((ok) => writer.once('close', ok));
        writer.once('error', () => undefined); // the error we destroy it with
        writer.destroy(new Error('client went away'));
        await closed;
        assert.equal(await driver.stat('w/data'), undefined);
        await assert.rejects(driver.read('w/data'));
      }
      assert.deepEqual(await keysIn(bucket), []);
      const client = await s3TestClient();
      try {
        const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
        assert.deepEqual(uploads.Uploads ?? [], [], 'the multipart uploads were aborted');
      } finally {
        client.destroy();
      }
    });
  }

  it('stops serving, releasing the object stream, when the destination closes mid-transfer', async () => {
    const { driver } = await freshDriver();
    await put(driver, 'blobs/s/data', randomBytes(20 * MiB));
    let received = 0;
    const stalled = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _encoding, callback) {
        received += chunk.length;
        if (received < 2 * MiB) callback(); // then never again: a client that stopped reading
      },
    });
    const serving = driver.streamTo('blobs/s/data', stalled, () => undefined);
    while (received < 2 * MiB) await new Promise((ok) => setImmediate(ok));
    stalled.destroy();
    await assert.rejects(serving, /destination closed/);
  });

  it('keeps registries with different prefixes in one bucket apart', async () => {
    const bucket = await freshBucket();
    const one = S3Driver.fromConfig(await settingsFor(bucket, { prefix: 'one/' }));
    const two = S3Driver.fromConfig(await settingsFor(bucket, { prefix: 'two/' }));
    await put(one, 'p/a/data', Buffer.from('first'));
    await put(two, 'p/a/data', Buffer.from('second'));
    await put(two, 'uploads/u/data', Buffer.from('x'), true);
    assert.deepEqual(await keysIn(bucket), ['one/p/a/data', 'two/p/a/data', 'two/uploads/u/data~segments/0000000000']);
    assert.equal((await get(one, 'p/a/data')).toString(), 'first');
    assert.deepEqual(await one.list('uploads'), []);
    await one.delete('p');
    assert.equal(await one.stat('p/a/data'), undefined);
    assert.equal((await get(two, 'p/a/data')).toString(), 'second');
  });

  it('gives a presigned URL that serves the object when redirect is on, none when off', async () => {
    const bucket = await freshBucket();
    const data = randomBytes(100_000);
    const on = S3Driver.fromConfig(await settingsFor(bucket, { redirect: true }));
    const off = S3Driver.fromConfig(await settingsFor(bucket));
    await put(on, 'blobs/r/data', data);
    assert.equal(await off.redirectURL('blobs/r/data'), undefined);
    const url = await on.redirectURL('blobs/r/data');
    assert.ok(url);
    const response = await fetch(url);
    assert.equal(response.status, 200);
    assert.ok(Buffer.from(await response.arrayBuffer()).equals(data));
    const forged = new URL(url);
    forged.pathname = forged.pathname.replace('blobs/r/data', 'blobs/other/data');
    assert.equal((await fetch(forged)).status, 403, 'the signature covers the key');
  });

  it('reports bad credentials clearly, without the secret', async () => {
    const bucket = await freshBucket();
    const s3 = await s3Service();
    const wrongSecret = S3Driver.fromConfig(await settingsFor(bucket, { secretAccessKeyFile: undefined }), { AWS_SECRET_ACCESS_KEY: 'not-the-secret-0123' });
    const unknownKey = S3Driver.fromConfig(await settingsFor(bucket, { accessKeyId: 'NOSUCHKEY0000' }));
    for (const attempt of [() => wrongSecret.read('a/data'), () => wrongSecret.stat('a/data'), () => wrongSecret.list('a')]) {
      await assert.rejects(attempt(), (err: Error) => {
        assert.match(err.message, /SignatureDoesNotMatch|HTTP 403/);
        assert.match(err.message, /secret|credentials/);
        assert.ok(!err.message.includes('not-the-secret-0123') && !err.message.includes(s3.secretAccessKey));
        return true;
      });
    }
    await assert.rejects(unknownKey.read('a/data'), /InvalidAccessKeyId.*access key id/);
    const writer = await unknownKey.write('a/data', { append: false });
    await assert.rejects(pipeline(Readable.from([Buffer.from('x')]), writer), /InvalidAccessKeyId/);
    assert.throws(
      () => S3Driver.fromConfig({ ...settingsForSync(bucket), secretAccessKeyFile: undefined }, {}),
      /no secret: set storage\.s3\.secretAccessKeyFile or env AWS_SECRET_ACCESS_KEY/,
    );
  });
});

function settingsForSync(bucket: string): S3Settings {
  return { bucket, prefix: '', region: 'us-east-1', forcePathStyle: true, accessKeyId: 'AKEY', redirect: false, redirectTtlMs: 60_000, partSizeBytes: 5 * MiB };
}
