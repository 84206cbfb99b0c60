/**
 * The storage layout. Blobs are content-addressed and stored once for all repositories:
 *   blobs/<alg>/<first two hex>/<encoded>/data
 * Upload sessions write to their own object until committed:
 *   uploads/<uuid>/data
 */
import type { Digest } from '../oci/digest.js';

export function blobPath(digest: Digest): string {
  return `blobs/${digest.algorithm}/${digest.encoded.slice(0, 2)}/${digest.encoded}/data`;
}

export function uploadPath(uploadId: string): string {
  return `uploads/${uploadId}/data`;
}

export const uploadsPrefix = 'uploads';
