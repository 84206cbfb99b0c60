/**
 * /api/v1/principals/{idOrName}/secrets: named secrets (passwords, client secrets). Posting a name
 * that exists rotates it, which revokes the refresh tokens the old secret bought. The value is in
 * the response once; only its scrypt hash is stored.
 *
 * Names: a user's default is `password`; tokens and the admin user hold at most `password1` and
 * `password2` (ACR's two-password scheme, for rotation without downtime), defaulting to
 * `password1`; a service principal's default is the lowest free `secretN`.
 */
import { z } from 'zod';
import type { CredentialRecord, PrincipalKind } from '../../../metadata/auth-store.js';
import { RegistryError } from '../../../oci/errors.js';
import { send, sendJson } from '../../respond.js';
import type { RouteContext } from '../../routes.js';
import { actingOwner, assertFuture, audit, describeTarget, pathParam, policy, readJson, targetPrincipal, timestamp } from './common.js';

const secretBody = z
  .object({
    name: z.string().max(63).optional(),
    expiresAt: timestamp.optional(),
  })
  .strict();

/** POST /api/v1/principals/{idOrName}/secrets {name?, expiresAt?} → 201 {name, value}. */
export async function set(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const target = await targetPrincipal(ctx);
  const body = await readJson(ctx, secretBody);
  assertFuture(ctx, body.expiresAt);
  const existing = await ctx.auth.store.credentials.list(target.id);
  const name = body.name ?? defaultSecretName(target.kind, existing);
  const value = await policy(() => ctx.auth.principals.setSecret(target.id, name, body.expiresAt !== undefined ? { expiresAt: body.expiresAt } : {}));
  const rotated = existing.some((c) => c.label === name);
  await audit(ctx, actor, rotated ? 'admin.secret.rotated' : 'admin.secret.created', {
    target: describeTarget(target),
    secret: name,
    expiresAt: body.expiresAt,
  });
  sendJson(ctx.res, 201, { name, value }, { 'Cache-Control': 'no-store' });
}

/** DELETE /api/v1/principals/{idOrName}/secrets/{name} → 204; refresh tokens it bought are revoked. */
export async function remove(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const target = await targetPrincipal(ctx);
  const name = pathParam(ctx, 'secret');
  if (!(await ctx.auth.principals.removeSecret(target.id, name))) {
    throw new RegistryError('SECRET_UNKNOWN', `${target.name} has no secret named ${JSON.stringify(name.slice(0, 63))}`);
  }
  await audit(ctx, actor, 'admin.secret.deleted', { target: describeTarget(target), secret: name });
  send(ctx.res, 204, {});
}

function defaultSecretName(kind: PrincipalKind, existing: readonly CredentialRecord[]): string {
  if (kind === 'user') return 'password';
  if (kind === 'token' || kind === 'admin') return 'password1';
  const taken = new Set(existing.map((c) => c.label));
  let n = 1;
  while (taken.has(`secret${n}`)) n++;
  return `secret${n}`;
}
