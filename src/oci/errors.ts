/**
 * The closed table of OCI Distribution error codes and the one error type core code throws.
 *
 * Contract: everything below `http/` reports a client-visible failure by throwing
 * `RegistryError(code, message?, detail?)`. The HTTP layer is the only place that maps a code to a
 * status and serialises `{"errors":[{code,message,detail}]}`. Anything else thrown is a bug and is
 * answered with an opaque 500 (its cause is logged, never sent).
 */

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
  // Berth-internal refinements: each has its own status but is written on the wire as the spec
  // code in `wireCode` below, so clients only ever see codes from the spec's table.
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested' },
  CHUNK_OUT_OF_ORDER: { status: 416, message: 'chunk does not start at the current upload offset' },
  RANGE_NOT_SATISFIABLE: { status: 416, message: 'requested range is outside the blob' },
  NOT_FOUND: { status: 404, message: 'no such endpoint' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed on this endpoint' },
  MANIFEST_TOO_LARGE: { status: 413, message: 'manifest exceeds the size limit' },
  // The management API (/api/v1): principals, secrets and policy.
  INVALID_REQUEST: { status: 400, message: 'the request body or parameters are invalid' },
  REQUEST_TOO_LARGE: { status: 413, message: 'request body exceeds the size limit' },
  PRINCIPAL_UNKNOWN: { status: 404, message: 'principal unknown' },
  PRINCIPAL_EXISTS: { status: 409, message: 'a principal with that name already exists' },
  SECRET_UNKNOWN: { status: 404, message: 'secret unknown' },
  WEBHOOK_UNKNOWN: { status: 404, message: 'webhook unknown' },
  WEBHOOK_EXISTS: { status: 409, message: 'a webhook with that name already exists' },
  DELIVERY_UNKNOWN: { status: 404, message: 'webhook delivery unknown' },
  // Import and the remote-registry client (src/remote, src/replication): failures of a source
  // registry are 502s so they are never mistaken for Berth refusing the caller.
  UPSTREAM_UNREACHABLE: { status: 502, message: 'the source registry could not be reached' },
  UPSTREAM_DENIED: { status: 502, message: 'the source registry refused the credentials' },
  UPSTREAM_INVALID: { status: 502, message: 'the source registry sent invalid content' },
  UPSTREAM_NOT_FOUND: { status: 404, message: 'the image is unknown to the source registry' },
  TAG_EXISTS: { status: 409, message: 'the target tag already exists' },
  IMPORT_UNKNOWN: { status: 404, message: 'import job unknown' },
  IMPORT_STATE: { status: 409, message: 'the import job is not in a state that allows this' },
  // The egress policy (src/net/egress.ts) refused an outbound destination given in a request.
  EGRESS_REFUSED: { status: 400, message: 'the egress policy refuses that destination' },
  // Selective sync (src/sync, /api/v1/sync/rules).
  SYNC_RULE_UNKNOWN: { status: 404, message: 'sync rule unknown' },
  SYNC_RULE_EXISTS: { status: 409, message: 'a sync rule with that name already exists' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorCodes;

/** The wire code for codes that are Berth-internal refinements of a spec code. */
const wireCode: Partial<Record<ErrorCode, ErrorCode>> = {
  PAGINATION_NUMBER_INVALID: 'UNSUPPORTED',
  CHUNK_OUT_OF_ORDER: 'BLOB_UPLOAD_INVALID',
  RANGE_NOT_SATISFIABLE: 'SIZE_INVALID',
  NOT_FOUND: 'UNSUPPORTED',
  METHOD_NOT_ALLOWED: 'UNSUPPORTED',
  MANIFEST_TOO_LARGE: 'SIZE_INVALID',
  INVALID_REQUEST: 'UNSUPPORTED',
  REQUEST_TOO_LARGE: 'SIZE_INVALID',
  PRINCIPAL_UNKNOWN: 'NAME_UNKNOWN',
  PRINCIPAL_EXISTS: 'NAME_INVALID',
  SECRET_UNKNOWN: 'NAME_UNKNOWN',
  WEBHOOK_UNKNOWN: 'NAME_UNKNOWN',
  WEBHOOK_EXISTS: 'NAME_INVALID',
  DELIVERY_UNKNOWN: 'NAME_UNKNOWN',
  UPSTREAM_UNREACHABLE: 'UNSUPPORTED',
  UPSTREAM_DENIED: 'DENIED',
  UPSTREAM_INVALID: 'MANIFEST_INVALID',
  UPSTREAM_NOT_FOUND: 'MANIFEST_UNKNOWN',
  TAG_EXISTS: 'NAME_INVALID',
  IMPORT_UNKNOWN: 'NAME_UNKNOWN',
  IMPORT_STATE: 'UNSUPPORTED',
  EGRESS_REFUSED: 'DENIED',
  SYNC_RULE_UNKNOWN: 'NAME_UNKNOWN',
  SYNC_RULE_EXISTS: 'NAME_INVALID',
};

export class RegistryError extends Error {
  readonly status: number;
  /** The code written on the wire (the spec's code; refinements collapse onto it). */
  readonly wireCode: string;
  /** Extra response headers (e.g. `Range` on a 416, `Retry-After` on a 429). */
  readonly headers: Record<string, string>;

  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly detail?: unknown,
    headers: Record<string, string> = {},
  ) {
    super(message ?? errorCodes[code].message);
    this.name = 'RegistryError';
    this.status = errorCodes[code].status;
    this.wireCode = wireCode[code] ?? code;
    this.headers = headers;
  }
}

export function isRegistryError(err: unknown): err is RegistryError {
  return err instanceof RegistryError;
}
