/**
 * The closed table of OCI Distribution error codes and the error the registry API throws.
 *
 * Contract: everything below `http/` reports a client-visible failure of the registry API (`/v2`)
 * by throwing `RegistryError(code, message?, detail?)`; management-API failures are `ApiError`s
 * (`api/errors.ts`). Both are `CodedError`s (`shared/coded-error.ts`), which the HTTP layer alone
 * maps to a status and serialises as `{"errors":[{code,message,detail}]}`. Anything else thrown is
 * a bug and is answered with an opaque 500 (its cause is logged, never sent).
 */
import { CodedError, type CodeEntry } from '../shared/coded-error.js';

export const errorCodes = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  // Berth refinements: each has its own status but is written on the wire as the spec code in
  // `wire`, so clients only ever see codes from the spec's table.
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested', wire: 'UNSUPPORTED' },
  CHUNK_OUT_OF_ORDER: { status: 416, message: 'chunk does not start at the current upload offset', wire: 'BLOB_UPLOAD_INVALID' },
  RANGE_NOT_SATISFIABLE: { status: 416, message: 'requested range is outside the blob', wire: 'SIZE_INVALID' },
  NOT_FOUND: { status: 404, message: 'no such endpoint', wire: 'UNSUPPORTED' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed on this endpoint', wire: 'UNSUPPORTED' },
  MANIFEST_TOO_LARGE: { status: 413, message: 'manifest exceeds the size limit', wire: 'SIZE_INVALID' },
  TOO_MANY_TAGS: { status: 414, message: 'too many tags in one request', wire: 'UNSUPPORTED' },
} as const satisfies Record<string, CodeEntry>;

export type ErrorCode = keyof typeof errorCodes;

export class RegistryError extends CodedError<ErrorCode> {
  constructor(code: ErrorCode, message?: string, detail?: unknown, headers: Record<string, string> = {}) {
    super(errorCodes, code, message, detail, headers);
    this.name = 'RegistryError';
  }
}

export function isRegistryError(err: unknown): err is RegistryError {
  return err instanceof RegistryError;
}
