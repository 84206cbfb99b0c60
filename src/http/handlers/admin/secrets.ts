/**
 * /api/v1/principals/{idOrName}/secrets: named secrets (passwords, client secrets). Posting a name
 * that exists rotates it, which revokes the refresh tokens the old secret bought. The value is in
 * the response once; only its scrypt hash is stored. Names and defaults: `auth/admin/principals.ts`.
 */
import { secretBody } from '../../../api/principals.js';
import { send, sendJson } from '../../respond.js';
import type { RouteContext } from '../../route.js';
import { actingOwner, pathParam, readJson, targetPrincipal } from './common.js';

/** POST /api/v1/principals/{idOrName}/secrets {name?, expiresAt?} → 201 {name, value}. */
export async function set(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const target = await targetPrincipal(ctx);
  const body = await readJson(ctx, secretBody);
  sendJson(ctx.res, 201, await ctx.auth.admin.principals.setSecret(actor, target, body), { 'Cache-Control': 'no-store' });
}

/** DELETE /api/v1/principals/{idOrName}/secrets/{name} → 204; refresh tokens it bought are revoked. */
export async function remove(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const target = await targetPrincipal(ctx);
  await ctx.auth.admin.principals.removeSecret(actor, target, pathParam(ctx, 'secret'));
  send(ctx.res, 204, {});
}
