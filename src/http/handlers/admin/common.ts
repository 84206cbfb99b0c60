/**
 * The checks and parsing every management handler shares. Each handler opens with
 * `actingOwner(ctx)`, reads its body with `readJson(ctx, schema)` and calls one service method,
 * which applies the rules and writes the audit entry; the pipeline of a request is visible in the
 * handler itself.
 */
import { type z } from 'zod';
import { specificIssue } from '../../../api/validation.js';
import type { AccessClaims } from '../../../auth/tokens.js';
import { RegistryError } from '../../../oci/errors.js';
import { ApiError } from '../../../api/errors.js';
import type { Actor } from '../../../shared/actor.js';
import { readBoundedBody } from '../../request.js';
import type { RouteContext } from '../../route.js';

/** Management bodies are small JSON documents. */
export const maxBodyBytes = 64 * 1024;

/**
 * Rule: the management API exists only with the token service on (with auth off nobody could be
 * told apart), and acts on behalf of the owner the dispatcher's `owner` guard has verified (its
 * token holds `registry:admin:*`). Returns that owner as the actor the audit log names.
 */
export function actingOwner(ctx: RouteContext): Actor {
  if (!ctx.auth.enabled) throw new RegistryError('NOT_FOUND', 'the management API needs the token service (auth.enabled=true)');
  if (!ctx.identity) throw new RegistryError('UNAUTHORIZED');
  return actorOf(ctx.identity, ctx);
}

/** The audit log's view of who is calling: the verified token's principal and the client's address. */
export function actorOf(identity: AccessClaims, ctx: RouteContext): Actor {
  return { principalId: identity.subject, principalName: identity.name, clientAddress: ctx.clientAddress };
}

/**
 * Rule: a body is at most 64 KiB of JSON that the route's strict schema accepts (unknown keys are
 * refused, not ignored). An empty body reads as `{}`. The Content-Type is not checked.
 */
export async function readJson<S extends z.ZodTypeAny>(ctx: RouteContext, schema: S): Promise<z.output<S>> {
  const bytes = await readBoundedBody(
    ctx.req,
    maxBodyBytes,
    () => new ApiError('REQUEST_TOO_LARGE', `request body exceeds ${maxBodyBytes} bytes`, { limit: maxBodyBytes }),
  );
  const text = bytes.toString('utf8').trim();
  let value: unknown = {};
  if (text.length > 0) {
    try {
      value = JSON.parse(text);
    } catch {
      throw new ApiError('INVALID_REQUEST', 'the request body is not valid JSON');
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalid(parsed.error);
  return parsed.data as z.output<S>;
}

/** Rule: query parameters (each given once) that the route's strict schema accepts; unknown ones are refused. */
export function readQuery<S extends z.ZodTypeAny>(ctx: RouteContext, schema: S): z.output<S> {
  const parsed = schema.safeParse(Object.fromEntries(ctx.query));
  if (!parsed.success) throw invalid(parsed.error);
  return parsed.data as z.output<S>;
}

function invalid(error: z.ZodError): ApiError {
  const issues = error.issues
    .slice(0, 20)
    .map(specificIssue)
    .map((i) => ({ path: i.path.join('.'), message: i.message }));
  const message = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
  return new ApiError('INVALID_REQUEST', message, { issues });
}

/** The principal a path names, by id or by login name; 404 PRINCIPAL_UNKNOWN otherwise. */
export function targetPrincipal(ctx: RouteContext) {
  return ctx.auth.admin.principals.resolve(pathParam(ctx, 'principal'));
}

/** A percent-decoded path parameter (names may contain `@`, which clients may encode). */
export function pathParam(ctx: RouteContext, name: string): string {
  try {
    return decodeURIComponent(ctx.params[name] ?? '');
  } catch {
    throw new ApiError('INVALID_REQUEST', `malformed percent-encoding in the ${name} path segment`);
  }
}

// ---------------------------------------------------------------------------------------------
// Schemas shared by the handlers: the API's own (src/api/), under the names the handlers use.

export { principalName, principalDescription as description, grantInput as grant, grantsInput as grants } from '../../../api/principals.js';
export { timestamp } from '../../../api/validation.js';
