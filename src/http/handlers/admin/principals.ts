/**
 * /api/v1/principals: users, service principals and repository-scoped tokens, their grants, and
 * the admin user (created from configuration, listed and managed here but never created or
 * deleted through the API).
 *
 * Lockout guard: the owner acting cannot disable or delete itself nor drop its own registry-wide
 * owner grant; another owner must do that.
 */
import { z } from 'zod';
import { isOwner, registryScope } from '../../../auth/permissions.js';
import type { PrincipalKind } from '../../../metadata/auth-store.js';
import { RegistryError } from '../../../oci/errors.js';
import { send, sendJson } from '../../respond.js';
import type { RouteContext } from '../../routes.js';
import {
  actingOwner,
  assertFuture,
  audit,
  description,
  describeTarget,
  grants,
  policy,
  principalName,
  readJson,
  targetPrincipal,
  timestamp,
} from './common.js';
import { principalView } from './views.js';

const kinds: readonly PrincipalKind[] = ['user', 'admin', 'service', 'token'];

/** GET /api/v1/principals?kind=user|admin|service|token → {principals: [view]}, sorted by name. */
export async function list(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  const kind = ctx.query.get('kind');
  if (kind !== null && !kinds.includes(kind as PrincipalKind)) {
    throw new RegistryError('INVALID_REQUEST', `kind must be one of ${kinds.join(', ')}`, { kind: kind.slice(0, 40) });
  }
  const records = await ctx.auth.store.principals.list((kind as PrincipalKind | null) ?? undefined);
  sendJson(ctx.res, 200, { principals: await Promise.all(records.map((p) => principalView(ctx.auth, p))) });
}

const createBody = z
  .object({
    kind: z.enum(['user', 'service', 'token']),
    name: principalName.optional(),
    description: description.optional(),
    grants: grants.default([]),
    expiresAt: timestamp.optional(),
  })
  .strict();

/**
 * POST /api/v1/principals → 201 {principal, secret: {name, value}}. Users and tokens need a name;
 * a service principal without one is named by a generated client id. A taken name is 409.
 */
export async function create(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const body = await readJson(ctx, createBody);
  if (body.kind !== 'service' && body.name === undefined) throw new RegistryError('INVALID_REQUEST', `name: a ${body.kind} needs a name`);
  assertFuture(ctx, body.expiresAt);
  const store = ctx.auth.store.principals;
  const taken = () => new RegistryError('PRINCIPAL_EXISTS', `a principal named ${body.name ?? ''} already exists`, { name: body.name });
  if (body.name !== undefined && (await store.findByName(body.name))) throw taken();
  const created = await policy(() =>
    ctx.auth.principals.createPrincipal(body.kind, body.name, {
      grants: body.grants,
      ...(body.description !== undefined ? { description: body.description } : {}),
      ...(body.expiresAt !== undefined ? { expiresAt: body.expiresAt } : {}),
    }),
  ).catch(async (err: unknown) => {
    // Lost a race with another create of the same name.
    if (body.name !== undefined && (await store.findByName(body.name))) throw taken();
    throw err;
  });
  if (created.secret === undefined || created.label === undefined) throw new Error('createPrincipal returned no secret');
  await audit(ctx, actor, 'admin.principal.created', { target: describeTarget(created.principal), grants: body.grants, expiresAt: body.expiresAt });
  sendJson(ctx.res, 201, { principal: await principalView(ctx.auth, created.principal), secret: { name: created.label, value: created.secret } });
}

/** GET /api/v1/principals/{idOrName} → view. */
export async function get(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  sendJson(ctx.res, 200, await principalView(ctx.auth, await targetPrincipal(ctx)));
}

const patchBody = z
  .object({
    disabled: z.boolean().optional(),
    description: description.nullable().optional(),
    expiresAt: timestamp.nullable().optional(),
  })
  .strict();

/**
 * PATCH /api/v1/principals/{idOrName} {disabled?, description?, expiresAt?} → view. `null` clears
 * a description or expiry. Disabling revokes every refresh token of the principal at once; access
 * tokens already issued run out within their (short) lifetime.
 */
export async function update(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const target = await targetPrincipal(ctx);
  const body = await readJson(ctx, patchBody);
  if (body.disabled === true && target.id === actor.subject) {
    throw new RegistryError('INVALID_REQUEST', 'refusing to disable the principal you are acting as; ask another owner');
  }
  if (body.disabled !== undefined) await ctx.auth.principals.setDisabled(target.id, body.disabled);
  if (body.description !== undefined || body.expiresAt !== undefined) {
    await ctx.auth.store.principals.update(target.id, {
      ...(body.description !== undefined ? { description: body.description } : {}),
      ...(body.expiresAt !== undefined ? { expiresAt: body.expiresAt } : {}),
    });
  }
  await audit(ctx, actor, 'admin.principal.updated', { target: describeTarget(target), changes: body });
  const updated = await ctx.auth.store.principals.get(target.id);
  if (!updated) throw new RegistryError('PRINCIPAL_UNKNOWN', 'the principal was deleted meanwhile');
  sendJson(ctx.res, 200, await principalView(ctx.auth, updated));
}

/** DELETE /api/v1/principals/{idOrName} → 204; its secrets, grants and refresh tokens go with it. */
export async function remove(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const target = await targetPrincipal(ctx);
  if (target.id === actor.subject) throw new RegistryError('INVALID_REQUEST', 'refusing to delete the principal you are acting as; ask another owner');
  if (target.kind === 'admin') {
    throw new RegistryError('INVALID_REQUEST', 'the admin user comes from configuration (auth.adminUser); turn it off there, or disable it with PATCH');
  }
  if (!(await ctx.auth.store.principals.delete(target.id))) throw new RegistryError('PRINCIPAL_UNKNOWN', 'the principal was deleted meanwhile');
  await audit(ctx, actor, 'admin.principal.deleted', { target: describeTarget(target) });
  send(ctx.res, 204, {});
}

const grantsBody = z.object({ grants }).strict();

/** PUT /api/v1/principals/{idOrName}/grants {grants} → view. Replaces the grants exactly. */
export async function replaceGrants(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const target = await targetPrincipal(ctx);
  const body = await readJson(ctx, grantsBody);
  if (target.kind === 'admin')
    throw new RegistryError('INVALID_REQUEST', `the admin user always holds owner on ${registryScope}; its grants cannot be changed`);
  if (target.id === actor.subject && !isOwner(body.grants)) {
    throw new RegistryError('INVALID_REQUEST', `refusing to remove your own owner grant on ${registryScope}; ask another owner`);
  }
  const previous = await ctx.auth.store.grants.list(target.id);
  await policy(() => ctx.auth.principals.setGrants(target.id, body.grants));
  await audit(ctx, actor, 'admin.grants.replaced', { target: describeTarget(target), previous, grants: body.grants });
  sendJson(ctx.res, 200, await principalView(ctx.auth, target));
}
