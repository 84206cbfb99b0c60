/**
 * S3 driver: blobs in any S3-compatible service (AWS S3, Ceph RGW, MinIO, R2...), so several
 * stateless replicas can share them. Every piece of state lives in the bucket, none in memory:
 * consecutive requests of one upload may be served by different replicas.
 *
 * Keys are `prefix + path`. S3 has neither append nor rename, so a logical object at `path` is,
 * in this order of precedence:
 * - a plain object at key `path` (written by `write(append:false)` or made by `move`);
 * - an open upload (`OpenUpload` in s3-upload.ts): a multipart upload at key `path` that every
 *   `write(append:true)` stream adds its parts to (the registry appends one chunk per PATCH), its
 *   record at `path~upload` and the bytes after its last part in a tail object under `path~tail/`.
 *   A `move` (the registry's commit of an upload) completes it in place, which copies nothing, and
 *   then moves one object; pieces would have to be copied together part by part, which some
 *   services (Ceph RGW) do by copying every byte while they copy a whole object by reference.
 *   Reading one completes it first (S3 cannot read the parts of an open upload);
 * - the concatenation, in key order, of segment objects `path~segments/<10-digit sequence>`, one
 *   per append: what an object under 5 MiB is (a single PutObject per append; the append that
 *   takes it to 5 MiB opens an upload, with the segments' bytes in its first part), and what
 *   appends to a plain object (it becomes segment 0) or to larger segments (written by versions
 *   before open uploads) make.
 * `~` is outside the registry's path alphabet (`assertSafePath`), so these keys never collide with
 * a registry path, and `list` reports them as the object `path`. One listing of `path~` finds
 * segments and a record. A plain object always wins: segments or a record beside one are stale
 * leftovers (of a path that was appended to and later overwritten), invisible to reads, and removed
 * by `delete`, by `move` from the path, and by an append to it; a record is saved only once the
 * segments it took in are in its parts. That way a plain write needs no listing.
 *
 * Each S3 object write (PutObject, CompleteMultipartUpload, CopyObject) is atomic, so a segment,
 * a plain object and a move destination all appear whole or not at all. `move` assembles the
 * destination server-side where S3 allows it (see `s3-assemble.ts`) and then deletes the source.
 *
 * Concurrency: two appends to the same path at the same moment could pick the same sequence
 * number, or start from the same record, and one chunk would be lost; the registry never does that
 * (one writer per upload, and a client sends an upload's chunks one after another).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Config } from '../config/schema.js';
import { assertSafePath, StorageNotFoundError, type ByteRange, type FileInfo, type StorageDriver } from './driver.js';
import { assembleObject, copyParts, type Piece } from './s3-assemble.js';
import { describeS3Error, errorCode, isNotFound, S3StorageError } from './s3-errors.js';
import { AppendUploadStream, minPartBytes, ObjectUploadStream, type AppendStore, type OpenUpload } from './s3-upload.js';

export { S3StorageError } from './s3-errors.js';

export type S3Settings = NonNullable<Config['storage']['s3']>;

/** Marks the hidden prefix holding an appendable object's segments. */
const segmentsSuffix = '~segments/';
/** Marks the record of an object kept as an open upload. */
const uploadSuffix = '~upload';
/** Marks the hidden prefix holding an open upload's tail. */
const tailSuffix = '~tail/';
const sequenceDigits = 10;
/** Concurrent connections to the service per process. */
const maxConnections = 512;

export class S3Driver implements StorageDriver {
  readonly name = 's3';

  constructor(
    private readonly client: S3Client,
    private readonly settings: Pick<S3Settings, 'bucket' | 'prefix' | 'redirect' | 'redirectTtlMs' | 'partSizeBytes'>,
  ) {}

  /**
   * A driver from the `storage.s3` configuration. Without `accessKeyId` the SDK's default
   * credential chain applies (env, web identity, instance role): keyless on AWS. With it, the
   * secret comes from `secretAccessKeyFile`, else env AWS_SECRET_ACCESS_KEY.
   */
  static fromConfig(settings: S3Settings, env: NodeJS.ProcessEnv = process.env): S3Driver {
    const config: S3ClientConfig = {
      region: settings.region,
      forcePathStyle: settings.forcePathStyle,
      // Checksums only where S3 requires them: with the SDK's default (always) a streamed or
      // multipart body needs a trailer some S3-compatible services reject (MissingContentLength).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: 10_000,
        // Every blob download holds one connection for its whole transfer; the SDK's default of
        // 50 sockets would queue the 51st concurrent pull (and every other request behind it).
        httpAgent: { keepAlive: true, maxSockets: maxConnections },
        httpsAgent: { keepAlive: true, maxSockets: maxConnections },
      },
    };
    if (settings.endpoint) config.endpoint = settings.endpoint;
    if (settings.accessKeyId) {
      config.credentials = { accessKeyId: settings.accessKeyId, secretAccessKey: readSecret(settings, env) };
    }
    // The SDK warns once per process, on stderr, in eight lines of plain text, that its releases
    // after January 2027 will need Node 22. Berth's lockfile decides which SDK it runs, so the
    // operator reading the warning can do nothing about it, and it breaks the one-JSON-object-a-line
    // log stream. Turned off unless the environment already says otherwise.
    process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
    return new S3Driver(new S3Client(config), settings);
  }

  private key(path: string): string {
    assertSafePath(path);
    return this.settings.prefix + path;
  }

  private segmentsPrefix(key: string): string {
    return key + segmentsSuffix;
  }

  async read(path: string, range?: ByteRange): Promise<Readable> {
    const key = this.key(path);
    const plain = await this.getObject(key, range);
    if (plain) return plain;
    const beside = await this.beside(key);
    const open = beside.record ? await this.openUpload(key) : undefined;
    if (open) {
      await this.completeOpenUpload(key, open.state);
      const completed = await this.getObject(key, range);
      if (!completed) throw new StorageNotFoundError(path); // deleted meanwhile
      return completed;
    }
    if (beside.segments.length === 0) throw new StorageNotFoundError(path);
    return this.readPieces(beside.segments, range);
  }

  async write(path: string, options: { append: boolean }): Promise<Writable> {
    const key = this.key(path);
    if (!options.append) {
      return new ObjectUploadStream(this.target(key), this.settings.partSizeBytes);
    }
    const [plain, { segments, record, leftovers }] = await Promise.all([this.head(key), this.beside(key)]);
    if (!plain) {
      const open = record ? await this.openUpload(key) : undefined;
      const segmentBytes = segments.reduce((total, piece) => total + piece.size, 0);
      if (open || segmentBytes < minPartBytes) {
        const tail = open?.state.tail ? await this.bytesOf(open.state.tail.key) : undefined;
        const store = this.appendStore(key, open ? [] : segments);
        return new AppendUploadStream(this.target(key), this.settings.partSizeBytes, store, open?.state, tail, open ? 0 : segmentBytes);
      }
    }
    // Appends to a plain object, or to segments of 5 MiB or more (an upload begun before open
    // uploads), continue as segments. A record beside a plain object is stale; it goes first.
    if (record) await this.forgetOpenUploads(key, leftovers);
    let next = segments.length === 0 ? 0 : sequenceOf(segments[segments.length - 1] as Piece) + 1;
    if (plain) {
      // An append onto a plain object turns it into the first segment (the registry appends to an
      // upload some replica has read back, which completed it). Segments beside it are stale; they
      // go first. The copy lands before the plain object goes, and the plain object wins while
      // both exist, so readers never see a gap.
      await this.deleteKeys(
        segments.map((piece) => piece.key),
        path,
      );
      const whole: Piece = { key, size: plain.size };
      await assembleObject(this.client, this.settings.bucket, [whole], this.segmentKey(key, 0), this.settings.partSizeBytes, () => this.readPieces([whole]));
      await this.deleteKey(key);
      next = 1;
    }
    return new ObjectUploadStream(this.target(this.segmentKey(key, next)), this.settings.partSizeBytes);
  }

  async stat(path: string): Promise<FileInfo | undefined> {
    const key = this.key(path);
    const plain = await this.head(key);
    if (plain) return plain;
    const { segments, record } = await this.beside(key);
    const open = record ? await this.openUpload(key) : undefined;
    if (open) {
      return { size: openUploadSize(open.state), modifiedAt: open.modifiedAt };
    }
    if (segments.length === 0) return undefined;
    return {
      size: segments.reduce((total, piece) => total + piece.size, 0),
      modifiedAt: new Date(Math.max(...segments.map((piece) => piece.modifiedAt?.getTime() ?? 0))),
    };
  }

  async move(from: string, to: string): Promise<void> {
    const source = this.key(from);
    const target = this.key(to);
    if (source === target) {
      if (!(await this.stat(from))) throw new StorageNotFoundError(from);
      return;
    }
    const [plain, beside] = await Promise.all([this.head(source), this.beside(source)]);
    let leftovers = beside.leftovers;
    let pieces: Piece[] = plain ? [{ key: source, size: plain.size }] : beside.segments;
    const open = !plain && beside.record ? await this.openUpload(source) : undefined;
    if (open) {
      await this.completeOpenUpload(source, open.state);
      pieces = [{ key: source, size: openUploadSize(open.state) }];
      leftovers = [];
    }
    if (pieces.length === 0) throw new StorageNotFoundError(from);
    try {
      await assembleObject(this.client, this.settings.bucket, pieces, target, this.settings.partSizeBytes, () => this.readPieces(pieces));
    } catch (err) {
      if (errorCode(err) === 'NoSuchKey') throw new StorageNotFoundError(from); // removed meanwhile
      throw this.wrap(err, `move ${from} -> ${to}`);
    }
    // What is left beside the source (segments, a stale record) goes with it.
    const besideKeys = [...beside.segments.map((piece) => piece.key), ...leftovers];
    await Promise.all([
      this.deleteKey(source),
      besideKeys.length > 0 ? this.deleteKeys(besideKeys, from) : undefined,
      leftovers.length > 0 ? this.abortUploads(source, (candidate) => candidate === source) : undefined,
    ]);
  }

  /**
   * One listing of `key*`, keeping the object, its segments, its open upload's record and tail and
   * everything under `key/`. The multipart upload of each open upload found (by its record) is
   * aborted before its record goes, so deleting a blob, which has none, costs no listing of
   * multipart uploads. One without a record (a writer killed before its first append landed) is
   * left to the bucket's lifecycle rule (docs/operations.md).
   */
  async delete(path: string): Promise<void> {
    const key = this.key(path);
    const ours = (candidate: string) => candidate === key || candidate.startsWith(key + '/') || candidate.startsWith(key + '~');
    let token: string | undefined;
    do {
      const page = await this.send(`list ${path}`, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: key, ContinuationToken: token })),
      );
      const keys = (page.Contents ?? []).flatMap((object) => (object.Key && ours(object.Key) ? [object.Key] : []));
      for (const record of keys.filter((candidate) => candidate.endsWith(uploadSuffix))) {
        const object = record.slice(0, -uploadSuffix.length);
        await this.abortUploads(object, (candidate) => candidate === object);
      }
      await this.deleteKeys(keys, path);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async list(prefix: string): Promise<string[]> {
    const base = this.key(prefix) + '/';
    const names = new Set<string>();
    let token: string | undefined;
    do {
      const page = await this.send(`list ${prefix}`, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: base, Delimiter: '/', ContinuationToken: token })),
      );
      for (const common of page.CommonPrefixes ?? []) {
        const name = (common.Prefix ?? '').slice(base.length, -1);
        // `data~segments/` and `data~tail/` belong to the appendable object `data`.
        names.add(objectName(name));
      }
      // `data~upload` is the record of the open upload `data`.
      for (const object of page.Contents ?? []) names.add(objectName((object.Key ?? '').slice(base.length)));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    names.delete('');
    return [...names].sort();
  }

  /**
   * A presigned GET for the object, when `redirect` is on. Only plain objects can be fetched this
   * way; blobs always are (they arrive at their content address by `move`).
   */
  async redirectURL(path: string): Promise<string | undefined> {
    const key = this.key(path);
    if (!this.settings.redirect) return undefined;
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.settings.bucket, Key: key }), {
      expiresIn: Math.max(1, Math.floor(this.settings.redirectTtlMs / 1000)),
    });
  }

  /**
   * Serves the object into `destination`, giving up (and releasing the S3 connection) as soon as
   * the destination closes: a client that disconnects mid-download must not pin a connection.
   */
  async streamTo(path: string, destination: Writable, ready: () => void, range?: ByteRange): Promise<void> {
    const source = await this.read(path, range);
    try {
      ready();
      for await (const chunk of source) {
        if (destination.destroyed) throw new Error('destination closed');
        if (!destination.write(chunk as Buffer)) await drained(destination);
      }
    } finally {
      source.destroy();
    }
  }

  /** The record of the open upload at `key` (see `OpenUpload`), if the object is kept as one. */
  private async openUpload(key: string): Promise<{ state: OpenUpload; modifiedAt: Date } | undefined> {
    const recordKey = key + uploadSuffix;
    let text: string;
    let modifiedAt: Date;
    try {
      const result = await this.client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: recordKey }));
      text = (await result.Body?.transformToString()) ?? '';
      modifiedAt = result.LastModified ?? new Date(0);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.wrap(err, `read ${recordKey}`);
    }
    return { state: parseOpenUpload(text, key), modifiedAt };
  }

  /**
   * What lies beside the object at `key`, from one listing of `key~`: its segments in order,
   * whether an open upload's record is there, and the record and tail keys (`leftovers`, for
   * cleaning up).
   */
  private async beside(key: string): Promise<{ segments: Piece[]; record: boolean; leftovers: string[] }> {
    const segments: Piece[] = [];
    const leftovers: string[] = [];
    let record = false;
    await this.eachUnder(key + '~', (object) => {
      if (object.key.startsWith(this.segmentsPrefix(key))) segments.push(object);
      else if (object.key === key + uploadSuffix || object.key.startsWith(key + tailSuffix)) {
        if (object.key === key + uploadSuffix) record = true;
        leftovers.push(object.key);
      }
    });
    segments.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { segments, record, leftovers };
  }

  /** What an append to `key` needs (s3-upload.ts, `AppendStore`); `segments`: the small ones before it. */
  private appendStore(key: string, segments: readonly Piece[]): AppendStore {
    const { bucket } = this.settings;
    const next = segments.length === 0 ? 0 : sequenceOf(segments[segments.length - 1] as Piece) + 1;
    return {
      tailKey: () => key + tailSuffix + randomUUID(),
      save: async (state) => {
        const body = JSON.stringify(state);
        await this.client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key + uploadSuffix,
            Body: body,
            ContentType: 'application/json',
            ContentLength: Buffer.byteLength(body),
          }),
        );
      },
      saveSegment: async (bytes) => {
        await this.client.send(new PutObjectCommand({ Bucket: bucket, Key: this.segmentKey(key, next), Body: bytes, ContentLength: bytes.length }));
      },
      loadSegments: async () => Buffer.concat(await Promise.all(segments.map((piece) => this.bytesOf(piece.key)))),
      dropSegments: () =>
        this.deleteKeys(
          segments.map((piece) => piece.key),
          key,
        ),
    };
  }

  /**
   * Makes the open upload at `key` a plain object there: its tail goes up as the last part and S3
   * completes the upload, which copies no bytes, and then its record and tail go. The plain object
   * wins from the moment it exists, so a failure after it leaves only stale leftovers.
   */
  private async completeOpenUpload(key: string, state: OpenUpload): Promise<void> {
    const { bucket } = this.settings;
    const tail = state.tail;
    await this.send(`complete ${key}`, async () => {
      const uploadId = state.uploadId;
      const parts = state.parts.map(({ PartNumber, ETag }) => ({ PartNumber, ETag }));
      const last = parts.at(-1)?.PartNumber ?? 0;
      // Parts a failed append sent and no later one replaced are strays. S3 drops parts left out
      // of the list; Ceph RGW refuses the list unless it names every part it holds. Strays come
      // after the record's parts (each append starts at its last part + 1), so then the upload is
      // completed with them and the object rebuilt from its own first bytes and the tail by one
      // server-side copy: a cost only an upload with a failed append pays.
      const named = new Set(parts.map((part) => part.PartNumber));
      const strays = (await this.listParts(key, uploadId)).filter((part) => !named.has(part.PartNumber));
      if (strays.some((part) => part.PartNumber < last)) {
        throw new S3StorageError(`the open upload at ${key} holds parts its record does not name; delete the upload and push again`);
      }
      if (strays.length > 0) {
        const all = [...parts, ...strays.map(({ PartNumber, ETag }) => ({ PartNumber, ETag }))];
        await this.client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: all } }));
        const partsSize = openUploadSize(state) - (tail?.size ?? 0);
        await copyParts(this.client, bucket, [{ key, size: partsSize }, ...(tail ? [{ key: tail.key, size: tail.size }] : [])], key);
        return;
      }
      if (tail) {
        const bytes = await this.bytesOf(tail.key);
        const PartNumber = last + 1;
        const sent = await this.client.send(
          new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber, Body: bytes, ContentLength: bytes.length }),
        );
        parts.push({ PartNumber, ETag: sent.ETag ?? '' });
      }
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
    });
    await this.deleteKeys([key + uploadSuffix, ...(tail ? [tail.key] : [])], key);
  }

  /** Drops a stale open upload at `key`: aborts the multipart upload there, deletes `leftovers`. */
  private async forgetOpenUploads(key: string, leftovers: readonly string[]): Promise<void> {
    await this.abortUploads(key, (candidate) => candidate === key);
    await this.deleteKeys(leftovers, key);
  }

  /** Aborts the open multipart uploads under `prefix` whose keys `ours` accepts. */
  private async abortUploads(prefix: string, ours: (key: string) => boolean): Promise<void> {
    const { bucket } = this.settings;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await this.send(`list uploads ${prefix}`, () =>
        this.client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker })),
      );
      for (const upload of page.Uploads ?? []) {
        if (!upload.Key || !upload.UploadId || !ours(upload.Key)) continue;
        const { Key, UploadId } = upload;
        await this.send(`abort ${Key}`, () => this.client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key, UploadId }))).catch((err: unknown) => {
          if (errorCode(err) !== 'NoSuchUpload') throw err;
        });
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker !== undefined);
  }

  /** Every part the multipart upload `uploadId` at `key` holds, in order. */
  private async listParts(key: string, uploadId: string): Promise<Array<{ PartNumber: number; ETag: string }>> {
    const parts: Array<{ PartNumber: number; ETag: string }> = [];
    let marker: string | undefined;
    do {
      const page = await this.client.send(new ListPartsCommand({ Bucket: this.settings.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }));
      for (const part of page.Parts ?? []) if (part.PartNumber !== undefined) parts.push({ PartNumber: part.PartNumber, ETag: part.ETag ?? '' });
      marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
    } while (marker !== undefined);
    return parts.sort((a, b) => a.PartNumber - b.PartNumber);
  }

  /** The whole body of a small object (a tail: under 5 MiB). */
  private async bytesOf(key: string): Promise<Buffer> {
    const result = await this.send(`read ${key}`, () => this.client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: key })));
    return Buffer.from((await result.Body?.transformToByteArray()) ?? new Uint8Array());
  }

  private target(key: string) {
    return { client: this.client, bucket: this.settings.bucket, key };
  }

  private segmentKey(key: string, sequence: number): string {
    return this.segmentsPrefix(key) + String(sequence).padStart(sequenceDigits, '0');
  }

  /** The plain object's body (or range), or undefined if there is no plain object at `key`. */
  private async getObject(key: string, range?: ByteRange): Promise<Readable | undefined> {
    try {
      const result = await this.client.send(
        new GetObjectCommand({ Bucket: this.settings.bucket, Key: key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
      );
      return result.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.wrap(err, `read ${key}`);
    }
  }

  private async head(key: string): Promise<FileInfo | undefined> {
    try {
      const result = await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: key }));
      return { size: result.ContentLength ?? 0, modifiedAt: result.LastModified ?? new Date(0) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.wrap(err, `stat ${key}`);
    }
  }

  /** Streams the concatenation of `pieces` (or the inclusive `range` of it), one GET at a time. */
  private readPieces(pieces: readonly Piece[], range?: ByteRange): Readable {
    const wanted: Array<{ key: string; range: ByteRange }> = [];
    let offset = 0;
    const first = range?.start ?? 0;
    const last = range?.end ?? Number.POSITIVE_INFINITY;
    for (const piece of pieces) {
      const start = Math.max(first, offset);
      const end = Math.min(last, offset + piece.size - 1);
      if (start <= end) wanted.push({ key: piece.key, range: { start: start - offset, end: end - offset } });
      offset += piece.size;
    }
    const getObject = (key: string, range: { start: number; end: number }) => this.getObject(key, range);
    async function* concatenate(): AsyncGenerator<Buffer> {
      for (const part of wanted) {
        const body = await getObject(part.key, part.range);
        if (!body) throw new Error(`segment ${part.key} vanished while being read`);
        try {
          for await (const chunk of body) yield chunk as Buffer;
        } finally {
          body.destroy();
        }
      }
    }
    return Readable.from(concatenate(), { objectMode: false });
  }

  /** Calls `visit` for every object whose key starts with `prefix`, page by page. */
  private async eachUnder(prefix: string, visit: (object: Piece) => void): Promise<void> {
    let token: string | undefined;
    do {
      const page = await this.send(`list ${prefix}`, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: prefix, ContinuationToken: token })),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key) visit({ key: object.Key, size: object.Size ?? 0, ...(object.LastModified ? { modifiedAt: object.LastModified } : {}) });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  private async deleteKey(key: string): Promise<void> {
    await this.send(`delete ${key}`, () => this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: key })));
  }

  /** Deletes the objects, 1,000 per request (S3's maximum); absent ones are not an error. */
  private async deleteKeys(keys: readonly string[], what: string): Promise<void> {
    for (let at = 0; at < keys.length; at += 1000) {
      const batch = keys.slice(at, at + 1000);
      const result = await this.send(`delete ${what}`, () =>
        this.client.send(new DeleteObjectsCommand({ Bucket: this.settings.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } })),
      );
      const failed = (result.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0)
        throw new S3StorageError(`S3 could not delete ${failed.length} object(s) of ${what}: ${failed[0]?.Code} ${failed[0]?.Message ?? ''}`);
    }
  }

  /** Runs one S3 request, turning its failure into an error that names what failed. */
  private async send<T>(what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (err) {
      throw this.wrap(err, what);
    }
  }

  /** Turns an SDK error into one that says what failed and why, without secrets. */
  private wrap(err: unknown, what: string): Error {
    if (err instanceof StorageNotFoundError || err instanceof S3StorageError) return err;
    return describeS3Error(err, what, this.settings.bucket);
  }
}

function readSecret(settings: S3Settings, env: NodeJS.ProcessEnv): string {
  if (settings.secretAccessKeyFile) {
    try {
      return readFileSync(settings.secretAccessKeyFile, 'utf8').trim();
    } catch (err) {
      throw new Error(`storage.s3.secretAccessKeyFile: cannot read ${settings.secretAccessKeyFile}: ${(err as Error).message}`, { cause: err });
    }
  }
  const fromEnv = env['AWS_SECRET_ACCESS_KEY'];
  if (!fromEnv) throw new Error('storage.s3.accessKeyId is set but there is no secret: set storage.s3.secretAccessKeyFile or env AWS_SECRET_ACCESS_KEY');
  return fromEnv;
}

/** The object a listed name belongs to: `data~upload`, `data~tail` and `data~segments` are `data`'s. */
function objectName(name: string): string {
  const mark = name.indexOf('~');
  return mark < 0 ? name : name.slice(0, mark);
}

/** The length of the object an open upload holds: its parts, then its tail. */
function openUploadSize(state: OpenUpload): number {
  return state.parts.reduce((total, part) => total + part.Size, state.tail?.size ?? 0);
}

/** The record of the open upload at `key`, checked: a malformed one is an error, never a guess. */
function parseOpenUpload(text: string, key: string): OpenUpload {
  const bad = () => new S3StorageError(`the upload record ${key}${uploadSuffix} is malformed; delete the upload and push again`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw bad();
  }
  if (typeof value !== 'object' || value === null) throw bad();
  const { uploadId, parts, tail } = value as Record<string, unknown>;
  if (typeof uploadId !== 'string') throw bad();
  if (!Array.isArray(parts)) throw bad();
  const checked = parts.map((part: unknown) => {
    const { PartNumber, ETag, Size } = (part ?? {}) as Record<string, unknown>;
    if (!Number.isSafeInteger(PartNumber) || typeof ETag !== 'string' || !Number.isSafeInteger(Size)) throw bad();
    return { PartNumber: PartNumber as number, ETag, Size: Size as number };
  });
  const state: OpenUpload = { uploadId, parts: checked };
  if (tail !== undefined) {
    const { key: tailKey, size } = (tail ?? {}) as Record<string, unknown>;
    if (typeof tailKey !== 'string' || !tailKey.startsWith(key + tailSuffix) || !Number.isSafeInteger(size)) throw bad();
    state.tail = { key: tailKey, size: size as number };
  }
  return state;
}

function sequenceOf(piece: Piece): number {
  return Number(piece.key.slice(piece.key.lastIndexOf('/') + 1));
}

/** Resolves when `stream` wants more data; rejects if it closes or fails first. */
function drained(stream: Writable): Promise<void> {
  return new Promise((ok, fail) => {
    const done = (err?: Error) => {
      stream.off('drain', onDrain);
      stream.off('close', onClose);
      stream.off('error', done);
      if (err) fail(err);
      else ok();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error('destination closed'));
    stream.on('drain', onDrain);
    stream.on('close', onClose);
    stream.on('error', done);
  });
}
