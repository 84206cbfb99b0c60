/** Reading what a request says: headers, ranges, pages, bounded bodies. */
import type { IncomingMessage } from 'node:http';
import { RegistryError } from '../oci/errors.js';
import { baseMediaType } from '../oci/media-types.js';
import type { ByteRange } from '../registry/blobs.js';
import type { ChunkInfo } from '../registry/uploads.js';
import type { PageRequest } from '../registry/reads.js';

/** The declared Content-Length, or undefined for chunked transfer encoding. */
export function contentLength(req: IncomingMessage): number | undefined {
  const raw = req.headers['content-length'];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) throw new RegistryError('SIZE_INVALID', 'invalid Content-Length');
  return value;
}

/**
 * True if the request announces a body: chunked encoding, or a Content-Length other than 0. Never
 * throws (a malformed length counts as a body), so it can decide cleanup and error paths.
 */
export function announcesBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** True if the request carries body bytes (a non-zero length, or chunked encoding). */
export function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || (contentLength(req) ?? 0) > 0;
}

/** Reads a whole body that must not exceed `limit` bytes (manifests; never blobs). */
export async function readBoundedBody(req: IncomingMessage, limit: number, tooLarge: () => Error): Promise<Buffer> {
  const declared = contentLength(req);
  if (declared !== undefined && declared > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge();
    chunks.push(chunk);
  }
  if (declared !== undefined && size !== declared) throw new RegistryError('SIZE_INVALID', 'body is shorter than declared');
  return Buffer.concat(chunks, size);
}

const contentRangePattern = /^(?:bytes )?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/;

/** A PATCH/PUT chunk's position from `Content-Range` (spec form `start-end`, inclusive) and length. */
export function chunkInfo(req: IncomingMessage): ChunkInfo {
  const length = contentLength(req);
  const header = req.headers['content-range'];
  if (header === undefined) return { length };
  const match = contentRangePattern.exec(header.trim());
  const start = Number(match?.[1]);
  const end = Number(match?.[2]);
  if (!match || !Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) {
    throw new RegistryError('BLOB_UPLOAD_INVALID', 'invalid Content-Range: expected <start>-<end>', { contentRange: header.slice(0, 100) });
  }
  return { range: { start, end }, length };
}

/**
 * The single byte range of a `Range: bytes=…` header against a blob of `size` bytes.
 * Returns undefined when the whole blob should be sent (no header, or a multi-range request,
 * which RFC 9110 lets a server ignore); throws RANGE_NOT_SATISFIABLE when unsatisfiable.
 */
export function byteRange(req: IncomingMessage, size: number): ByteRange | undefined {
  const header = req.headers['range'];
  if (header === undefined || header.includes(',')) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  if (start >= size || end < start) {
    throw new RegistryError('RANGE_NOT_SATISFIABLE', undefined, undefined, { 'Content-Range': `bytes */${size}` });
  }
  return { start, end };
}

/**
 * `n`/`last` pagination parameters. `n` must be a plain non-negative decimal integer (digits only:
 * no sign, spaces, exponent, hex or fraction, which `Number()` would accept) no larger than
 * `Number.MAX_SAFE_INTEGER`; an empty `n` is no `n`.
 */
export function page(query: URLSearchParams): PageRequest {
  const n = query.get('n');
  const last = query.get('last') ?? undefined;
  if (n === null || n === '') return { last };
  const value = /^[0-9]{1,16}$/.test(n) ? Number(n) : NaN;
  if (!Number.isSafeInteger(value)) {
    throw new RegistryError('PAGINATION_NUMBER_INVALID', undefined, { n: n.slice(0, 20) });
  }
  return { n: value, last };
}

/** The media types listed in the Accept header(s), parameters stripped. */
export function acceptedTypes(req: IncomingMessage): string[] {
  const header = req.headers['accept'];
  if (!header) return [];
  return header
    .split(',')
    .map((part) => baseMediaType(part))
    .filter((type) => type.length > 0);
}
