/**
 * The storage layout. Blobs are content-addressed and stored once for all repositories:
 *   blobs/<alg>/<first two hex>/<encoded>/data
 * Upload sessions write to their own object until committed:
 *   uploads/<uuid>           (`flat`: every session begun since migration 0070)
 *   uploads/<uuid>/data      (`directory`: sessions begun before, continued where they were)
 * Why flat: on the filesystem a directory per upload cost a `mkdir` and an `rmdir` per push, the
 * two most expensive calls of a small blob's push (a directory change takes the parent's lock and
 * a journal entry; measured with 8 pushes in flight, see bench/notes.md).
 */
import type { Digest } from '../oci/digest.js';

export type UploadLayout = 'flat' | 'directory';

export function blobPath(digest: Digest): string {
  return `blobs/${digest.algorithm}/${digest.encoded.slice(0, 2)}/${digest.encoded}/data`;
}

export function uploadPath(uploadId: string, layout: UploadLayout): string {
  return layout === 'flat' ? `uploads/${uploadId}` : `uploads/${uploadId}/data`;
}

/** Everything an upload stored, in either layout: `delete` of this prefix removes it. */
export function uploadPrefix(uploadId: string): string {
  return `uploads/${uploadId}`;
}

export const uploadsPrefix = 'uploads';
