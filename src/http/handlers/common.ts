/** Parameter parsing shared by handlers: every path parameter is validated before use. */
import { parseDigest, type Digest } from '../../oci/digest.js';
import { parseReference, parseReferenceForRead, parseRepositoryName, type Reference } from '../../oci/names.js';
import type { RouteContext } from '../route.js';

export function repositoryOf(ctx: RouteContext): string {
  return parseRepositoryName(ctx.params['name'] ?? '');
}

export function digestParam(ctx: RouteContext): Digest {
  return parseDigest(ctx.params['digest'] ?? '');
}

export function referenceParam(ctx: RouteContext): Reference {
  return parseReference(ctx.params['reference'] ?? '');
}

/** The reference of a `GET`/`HEAD`: one no manifest can have is MANIFEST_UNKNOWN (see `parseReferenceForRead`). */
export function readReferenceParam(ctx: RouteContext): Reference {
  return parseReferenceForRead(ctx.params['reference'] ?? '');
}
