/**
 * What a registry client is told when the cache cannot serve a pull, in the registry API's terms:
 * an upstream's "not found" is the registry's MANIFEST_UNKNOWN / BLOB_UNKNOWN, an upstream that
 * asked to wait is TOOMANYREQUESTS with its `Retry-After`, and the other upstream failures stay
 * the 502s of the registry client (`remote/`), worded for the operator.
 */
import { ApiError, isApiError } from '../api/errors.js';
import { RegistryError } from '../oci/errors.js';
import type { CacheRule } from './rule.js';
import { retryAfterOf } from './upstreams.js';

export function clientError(err: unknown, rule: CacheRule, what: { kind: 'manifest' | 'blob'; reference: string }): unknown {
  if (!isApiError(err)) return err;
  if (err.code === 'UPSTREAM_NOT_FOUND') {
    return new RegistryError(
      what.kind === 'manifest' ? 'MANIFEST_UNKNOWN' : 'BLOB_UNKNOWN',
      `${what.reference} is not cached and ${rule.upstreamHost} does not have it`,
      what.kind === 'manifest' ? { reference: what.reference } : { digest: what.reference },
    );
  }
  const wait = retryAfterOf(err);
  if (wait !== undefined) {
    const seconds = Math.max(1, Math.ceil(wait / 1000));
    return new RegistryError(
      'TOOMANYREQUESTS',
      `${what.reference} is not cached and ${rule.upstreamHost} asks to wait ${seconds} s (cache rule ${rule.name})`,
      { retryAfterSeconds: seconds },
      { 'Retry-After': String(seconds) },
    );
  }
  if (err.code === 'EGRESS_REFUSED' || err.code === 'INVALID_REQUEST') {
    // The rule's configuration, not the client's request, is at fault: a 502 naming the rule.
    return new ApiError('UPSTREAM_UNREACHABLE', `cache rule ${rule.name} cannot reach its upstream: ${err.message}`);
  }
  return err;
}
