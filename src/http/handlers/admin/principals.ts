/**
 * /api/v1/principals: users, service principals and repository-scoped tokens, their grants, and
 * the admin user. The rules (lockout guard, names, expiry) and the audit entries are the
 * service's (`auth/admin/principals.ts`); these handlers parse and answer.
 */
import { createPrincipalBody, grantsBody, principalKinds, updatePrincipalBody, type PrincipalKind } from '../../../api/principals.js';
import { ApiError } from '../../../api/errors.js';
import { send, sendJson } from '../../respond.js';
import type { RouteContext } from '../../route.js';
import { actingOwner, readJson, targetPrincipal } from './common.js';

/** GET /api/v1/principals?kind=user|admin|service|token → {principals: [view]}, sorted by name. */
export async function list(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  const kind = ctx.query.get('kind');
  if (kind !== null && !principalKinds.includes(kind as PrincipalKind)) {
    throw new ApiError('INVALID_REQUEST', `kind must be one of ${principalKinds.join(', ')}`, { kind: kind.slice(0, 40) });
  }
  sendJson(ctx.res, 200, { principals: await ctx.auth.admin.principals.list((kind as PrincipalKind | null) ?? undefined) });
}

/**
 * POST /api/v1/principals → 201 {principal, secret: {name, value}}. Users and tokens need a name;
 * a service principal without one is named by a generated client id. A taken name is 409.
 */
export async function create(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const body = await readJson(ctx, createPrincipalBody);
  sendJson(ctx.res, 201, await ctx.auth.admin.principals.create(actor, body));
}

/** GET /api/v1/principals/{idOrName} → view. */
export async function get(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  sendJson(ctx.res, 200, await ctx.auth.admin.principals.get(await targetPrincipal(ctx)));
}

/**
 * PATCH /api/v1/principals/{idOrName} {disabled?, description?, expiresAt?} → view. `null` clears
 * a description or expiry; disabling revokes the principal's refresh tokens at once.
 */
export async function update(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const target = await targetPrincipal(ctx);
  const body = await readJson(ctx, updatePrincipalBody);
  sendJson(ctx.res, 200, await ctx.auth.admin.principals.update(actor, target, body));
}

/** DELETE /api/v1/principals/{idOrName} → 204; its secrets, grants and refresh tokens go with it. */
export async function remove(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  await ctx.auth.admin.principals.remove(actor, await targetPrincipal(ctx));
  send(ctx.res, 204, {});
}

/** PUT /api/v1/principals/{idOrName}/grants {grants} → view. Replaces the grants exactly. */
export async function replaceGrants(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const target = await targetPrincipal(ctx);
  const body = await readJson(ctx, grantsBody);
  sendJson(ctx.res, 200, await ctx.auth.admin.principals.replaceGrants(actor, target, body.grants));
}
