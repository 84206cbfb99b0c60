/**
 * /api/v1/principals/{idOrName}/federated-credentials: which OIDC tokens a service principal
 * accepts in place of a secret. The body is validated by the same schema as a
 * `federatedCredentials:` entry in berth.yaml; the rules (service principals only, https issuers,
 * at most 20, revoking what a replaced credential bought) and the audit entries are the service's
 * (`auth/admin/federated.ts`).
 */
import { federatedCredentialInput } from '../../../api/federated-credentials.js';
import { send, sendJson } from '../../respond.js';
import type { RouteContext } from '../../route.js';
import { actingOwner, pathParam, readJson, targetPrincipal } from './common.js';

/** GET …/federated-credentials → {credentials: [view]}, sorted by name (empty for non-service principals). */
export async function list(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  sendJson(ctx.res, 200, { credentials: await ctx.auth.admin.federatedCredentials.list(await targetPrincipal(ctx)) });
}

/**
 * POST …/federated-credentials {name, preset?, …} → 201 {credential, replaced}. A preset body
 * (`preset`, `repository`, `ref`, `environment`, `issuer`, `namespace`, `serviceAccount`) or an
 * explicit one (`issuer`, `audiences`, `subject`); `conditions` and `audiences` in both.
 */
export async function put(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const target = await targetPrincipal(ctx);
  const federated = ctx.auth.admin.federatedCredentials;
  federated.assertMayTrust(target);
  const body = await readJson(ctx, federatedCredentialInput);
  sendJson(ctx.res, 201, await federated.put(actor, target, body));
}

/** DELETE …/federated-credentials/{name} → 204; the refresh tokens it bought are revoked. */
export async function remove(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const target = await targetPrincipal(ctx);
  await ctx.auth.admin.federatedCredentials.remove(actor, target, pathParam(ctx, 'credential'));
  send(ctx.res, 204, {});
}
