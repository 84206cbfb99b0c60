/**
 * The one shape of a client-visible failure, whatever API it belongs to: a code from a closed
 * table, the HTTP status that code means, the code written on the wire, an optional detail and
 * extra response headers. The registry API's codes (the spec's table) live in `oci/errors.ts`
 * (`RegistryError`), the management API's in `api/errors.ts` (`ApiError`); `http/respond.ts`
 * serialises both the same way, as `{"errors":[{code,message,detail}]}`. Anything thrown that is
 * not a CodedError is a bug and becomes an opaque 500.
 */
export interface CodeEntry {
  status: number;
  message: string;
  /** The spec code written on the wire when this code is a Berth refinement of one. */
  wire?: string;
}

export abstract class CodedError<Code extends string = string> extends Error {
  readonly status: number;
  /** The code written on the wire (refinements collapse onto a spec code clients know). */
  readonly wireCode: string;
  /** Extra response headers (e.g. `Range` on a 416, `Retry-After` on a 429). */
  readonly headers: Record<string, string>;

  protected constructor(
    table: Readonly<Record<Code, CodeEntry>>,
    readonly code: Code,
    message: string | undefined,
    readonly detail: unknown,
    headers: Record<string, string>,
  ) {
    const entry = table[code];
    super(message ?? entry.message);
    this.status = entry.status;
    this.wireCode = entry.wire ?? code;
    this.headers = headers;
  }
}

export function isCodedError(err: unknown): err is CodedError {
  return err instanceof CodedError;
}
