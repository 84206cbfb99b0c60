/**
 * Builds one S3 object from the concatenation of others (the S3 driver's `move`), as cheaply as S3
 * allows, always ending in a single atomic object write at the destination:
 * - no bytes: an empty PutObject;
 * - one source object up to 5 GiB: CopyObject (server-side, one request);
 * - every source but the last at least 5 MiB (S3's minimum part size): a multipart upload whose
 *   parts are UploadPartCopy ranges of the sources (server-side; sources over 5 GiB are split);
 * - otherwise (small chunks in the middle): the bytes are streamed through this process into a
 *   fresh multipart upload. Only chunked uploads with small chunks take this path, and their
 *   total is small in practice.
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ObjectUploadStream } from './s3-upload.js';

export interface Piece {
  key: string;
  size: number;
  modifiedAt?: Date;
}

const minPartBytes = 5 * 1024 * 1024;
const maxCopyBytes = 5 * 1024 * 1024 * 1024;
/** Part copies run server-side; a few at once saves round trips without loading the service. */
const copyConcurrency = 4;

export async function assembleObject(
  client: S3Client,
  bucket: string,
  pieces: readonly Piece[],
  target: string,
  partSize: number,
  readAll: () => Readable,
): Promise<void> {
  const sources = pieces.filter((piece) => piece.size > 0);
  if (sources.length === 0) {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: target, Body: Buffer.alloc(0), ContentLength: 0 }));
    return;
  }
  const only = sources[0] as Piece;
  if (sources.length === 1 && only.size <= maxCopyBytes) {
    await client.send(new CopyObjectCommand({ Bucket: bucket, Key: target, CopySource: copySource(bucket, only.key) }));
    return;
  }
  if (sources.slice(0, -1).every((piece) => piece.size >= minPartBytes)) {
    await copyParts(client, bucket, sources, target);
    return;
  }
  await pipeline(readAll(), new ObjectUploadStream({ client, bucket, key: target }, partSize));
}

/** `bucket/key`, URL-encoded per path segment, as CopySource wants it. */
function copySource(bucket: string, key: string): string {
  return [bucket, ...key.split('/')].map(encodeURIComponent).join('/');
}

interface CopyRange {
  key: string;
  start: number;
  end: number;
}

/** Each source as one or more ranges of at most 5 GiB (equal shares, so none is tiny). */
export function copyRanges(sources: readonly Piece[]): CopyRange[] {
  const ranges: CopyRange[] = [];
  for (const source of sources) {
    const count = Math.ceil(source.size / maxCopyBytes);
    const share = Math.ceil(source.size / count);
    for (let start = 0; start < source.size; start += share) {
      ranges.push({ key: source.key, start, end: Math.min(source.size, start + share) - 1 });
    }
  }
  return ranges;
}

/**
 * Writes the concatenation of `sources` (each but the last at least 5 MiB) to `target` by a
 * multipart upload of server-side part copies. `target` may be a source: S3 reads a part's source
 * when it is copied and replaces the target only when the upload completes.
 */
export async function copyParts(client: S3Client, bucket: string, sources: readonly Piece[], target: string): Promise<void> {
  const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: target }));
  const uploadId = created.UploadId;
  if (!uploadId) throw new Error(`S3 did not return an upload id for ${target}`);
  try {
    const ranges = copyRanges(sources);
    const parts: CompletedPart[] = new Array(ranges.length);
    let next = 0;
    const worker = async () => {
      while (next < ranges.length) {
        const index = next++;
        const range = ranges[index] as CopyRange;
        const result = await client.send(
          new UploadPartCopyCommand({
            Bucket: bucket,
            Key: target,
            UploadId: uploadId,
            PartNumber: index + 1,
            CopySource: copySource(bucket, range.key),
            CopySourceRange: `bytes=${range.start}-${range.end}`,
          }),
        );
        parts[index] = { PartNumber: index + 1, ETag: result.CopyPartResult?.ETag };
      }
    };
    await Promise.all(Array.from({ length: Math.min(copyConcurrency, ranges.length) }, worker));
    await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: target, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
  } catch (err) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: target, UploadId: uploadId })).catch(() => undefined);
    throw err;
  }
}
