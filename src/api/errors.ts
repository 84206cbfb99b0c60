/**
 * The management API's error codes (`/api/v1`, and what import and sync report through it), next
 * to the API they belong to. Like the registry's refinements, each is written on the wire as a
 * spec code (`wire`) so every Berth error body has one shape and one code vocabulary; the HTTP
 * layer serialises `ApiError` and `RegistryError` with the same code (`shared/coded-error.ts`).
 */
import { CodedError, type CodeEntry } from '../shared/coded-error.js';

export const apiErrorCodes = {
  INVALID_REQUEST: { status: 400, message: 'the request body or parameters are invalid', wire: 'UNSUPPORTED' },
  REQUEST_TOO_LARGE: { status: 413, message: 'request body exceeds the size limit', wire: 'SIZE_INVALID' },
  PRINCIPAL_UNKNOWN: { status: 404, message: 'principal unknown', wire: 'NAME_UNKNOWN' },
  PRINCIPAL_EXISTS: { status: 409, message: 'a principal with that name already exists', wire: 'NAME_INVALID' },
  SECRET_UNKNOWN: { status: 404, message: 'secret unknown', wire: 'NAME_UNKNOWN' },
  WEBHOOK_UNKNOWN: { status: 404, message: 'webhook unknown', wire: 'NAME_UNKNOWN' },
  WEBHOOK_EXISTS: { status: 409, message: 'a webhook with that name already exists', wire: 'NAME_INVALID' },
  DELIVERY_UNKNOWN: { status: 404, message: 'webhook delivery unknown', wire: 'NAME_UNKNOWN' },
  KEY_UNKNOWN: { status: 404, message: 'signing key unknown', wire: 'NAME_UNKNOWN' },
  // Import and the registry client (src/remote, src/replication): failures of a source registry are
  // 502s so they are never mistaken for Berth refusing the caller.
  UPSTREAM_UNREACHABLE: { status: 502, message: 'the source registry could not be reached', wire: 'UNSUPPORTED' },
  UPSTREAM_DENIED: { status: 502, message: 'the source registry refused the credentials', wire: 'DENIED' },
  UPSTREAM_INVALID: { status: 502, message: 'the source registry sent invalid content', wire: 'MANIFEST_INVALID' },
  UPSTREAM_NOT_FOUND: { status: 404, message: 'the image is unknown to the source registry', wire: 'MANIFEST_UNKNOWN' },
  TAG_EXISTS: { status: 409, message: 'the target tag already exists', wire: 'NAME_INVALID' },
  IMPORT_UNKNOWN: { status: 404, message: 'import job unknown', wire: 'NAME_UNKNOWN' },
  IMPORT_STATE: { status: 409, message: 'the import job is not in a state that allows this', wire: 'UNSUPPORTED' },
  // The egress policy (src/net/egress.ts) refused an outbound destination given in a request.
  EGRESS_REFUSED: { status: 400, message: 'the egress policy refuses that destination', wire: 'DENIED' },
  SYNC_RULE_UNKNOWN: { status: 404, message: 'sync rule unknown', wire: 'NAME_UNKNOWN' },
  SYNC_RULE_EXISTS: { status: 409, message: 'a sync rule with that name already exists', wire: 'NAME_INVALID' },
  ATTESTATION_KEY_UNKNOWN: { status: 404, message: 'attestation key unknown', wire: 'NAME_UNKNOWN' },
  // The web console's sessions (`/console/…`, docs/console.md): messages are sentences a person can act on.
  SIGN_IN_FAILED: { status: 401, message: 'the sign-in was refused', wire: 'UNAUTHORIZED' },
  SIGN_IN_THROTTLED: { status: 429, message: 'too many failed sign-ins', wire: 'TOOMANYREQUESTS' },
  SESSION_REQUIRED: { status: 401, message: 'no console session: sign in', wire: 'UNAUTHORIZED' },
  CSRF_REFUSED: { status: 403, message: "the request lacks the console session's CSRF token or comes from another site", wire: 'DENIED' },
  SSO_PROVIDER_UNKNOWN: { status: 404, message: 'no single-sign-on provider by that name', wire: 'NAME_UNKNOWN' },
  CACHE_RULE_UNKNOWN: { status: 404, message: 'cache rule unknown', wire: 'NAME_UNKNOWN' },
  CACHE_RULE_EXISTS: { status: 409, message: 'a cache rule with that name, prefix or mirror host already exists', wire: 'NAME_INVALID' },
  CACHE_RULE_MANAGED: { status: 409, message: 'the cache rule is managed by the configuration file', wire: 'DENIED' },
  POLICY_UNKNOWN: { status: 404, message: 'lifecycle policy unknown', wire: 'NAME_UNKNOWN' },
  RUN_UNKNOWN: { status: 404, message: 'lifecycle run unknown', wire: 'NAME_UNKNOWN' },
} as const satisfies Record<string, CodeEntry>;

export type ApiErrorCode = keyof typeof apiErrorCodes;

export class ApiError extends CodedError<ApiErrorCode> {
  constructor(code: ApiErrorCode, message?: string, detail?: unknown, headers: Record<string, string> = {}) {
    super(apiErrorCodes, code, message, detail, headers);
    this.name = 'ApiError';
  }
}

export function isApiError(err: unknown): err is ApiError {
  return err instanceof ApiError;
}
