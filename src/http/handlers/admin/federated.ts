/**
 * /api/v1/principals/{idOrName}/federated-credentials: which OIDC tokens (from GitHub Actions, a
 * Kubernetes cluster, GitLab or any issuer) a service principal accepts in place of a secret.
 * A credential is an issuer, audiences, a subject (exact or glob) and claim conditions, written
 * out or produced by a preset (`src/federation/presets.ts`); the body is validated by the same
 * rules as a `federatedCredentials:` entry in berth.yaml (`auth/desired-state.ts`).
 *
 * Posting a name that exists replaces that credential, and deleting one removes it; either way
 * the refresh tokens bought with the old credential are revoked at once (access tokens run out
 * within their short lifetime), so narrowing a trust takes effect without waiting.
 */
import { randomUUID } from 'node:crypto';
import { federatedCredentialInput, resolveFederatedCredential } from '../../../federation/credential-input.js';
import { PresetError, type FederatedTrust } from '../../../federation/presets.js';
import { isLoopbackUrl } from '../../../shared/loopback.js';
import type { FederatedCredentialRecord, PrincipalRecord } from '../../../metadata/auth-store.js';
import { RegistryError } from '../../../oci/errors.js';
import { send, sendJson } from '../../respond.js';
import type { RouteContext } from '../../routes.js';
import { actingOwner, audit, describeTarget, pathParam, readJson, targetPrincipal } from './common.js';
import { federatedCredentialView } from './views.js';

/** Each credential is one more candidate every exchange for its issuer is checked against. */
export const maxFederatedCredentials = 20;

/** GET …/federated-credentials → {credentials: [view]}, sorted by name (empty for non-service principals). */
export async function list(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  const target = await targetPrincipal(ctx);
  const records = await ctx.auth.store.federatedCredentials.list(target.id);
  sendJson(ctx.res, 200, { credentials: records.map(federatedCredentialView) });
}

/**
 * POST …/federated-credentials {name, preset?, …} → 201 {credential, replaced}. A preset body
 * (`preset`, `repository`, `ref`, `environment`, `issuer`, `namespace`, `serviceAccount`) or an
 * explicit one (`issuer`, `audiences`, `subject`); `conditions` and `audiences` in both.
 */
export async function put(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const target = await targetPrincipal(ctx);
  assertService(target);
  const body = await readJson(ctx, federatedCredentialInput);
  let trust: FederatedTrust;
  try {
    trust = resolveFederatedCredential(body);
  } catch (err) {
    if (err instanceof PresetError) throw new RegistryError('INVALID_REQUEST', err.message);
    throw err;
  }
  assertIssuerAllowed(ctx, trust.issuer);

  const store = ctx.auth.store.federatedCredentials;
  const existing = await store.list(target.id);
  if (!existing.some((c) => c.name === body.name) && existing.length >= maxFederatedCredentials) {
    throw new RegistryError(
      'INVALID_REQUEST',
      `${target.name} already has ${maxFederatedCredentials} federated credentials, the most a principal may have; remove one first`,
    );
  }
  const now = ctx.registry.context.clock.now();
  const record: FederatedCredentialRecord = { id: randomUUID(), principalId: target.id, name: body.name, ...trust, createdAt: now };
  const replacedId = await store.put(record);
  const revoked = replacedId === undefined ? 0 : await ctx.auth.store.refreshTokens.revoke({ credentialId: replacedId }, now);
  const view = federatedCredentialView(record);
  await audit(ctx, actor, replacedId === undefined ? 'admin.federated_credential.created' : 'admin.federated_credential.replaced', {
    target: describeTarget(target),
    credential: { name: view.name, issuer: view.issuer, audiences: view.audiences, subject: view.subject, conditions: view.conditions },
    ...(body.preset !== undefined ? { preset: body.preset } : {}),
    ...(replacedId !== undefined ? { revokedRefreshTokens: revoked } : {}),
  });
  sendJson(ctx.res, 201, { credential: view, replaced: replacedId !== undefined });
}

/** DELETE …/federated-credentials/{name} → 204; the refresh tokens it bought are revoked. */
export async function remove(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const target = await targetPrincipal(ctx);
  const name = pathParam(ctx, 'credential');
  const removedId = await ctx.auth.store.federatedCredentials.remove(target.id, name);
  if (removedId === undefined) {
    throw new RegistryError('SECRET_UNKNOWN', `${target.name} has no federated credential named ${JSON.stringify(name.slice(0, 64))}`);
  }
  const revoked = await ctx.auth.store.refreshTokens.revoke({ credentialId: removedId }, ctx.registry.context.clock.now());
  await audit(ctx, actor, 'admin.federated_credential.deleted', { target: describeTarget(target), credential: name, revokedRefreshTokens: revoked });
  send(ctx.res, 204, {});
}

/**
 * Rule: only service principals act on behalf of workloads. A user, token or the admin user
 * logs in with its own secrets; letting an OIDC token act as a person would blur the audit trail.
 */
function assertService(target: PrincipalRecord): void {
  if (target.kind !== 'service') {
    throw new RegistryError(
      'INVALID_REQUEST',
      `only service principals may have federated credentials; ${target.name} is ${target.kind === 'admin' ? 'the admin user' : `a ${target.kind}`} (create one with POST /principals {"kind": "service"})`,
    );
  }
}

/**
 * Rule: tokens are only ever fetched over HTTPS; an `http://` issuer is accepted only for a
 * loopback host that the configuration lists in `federation.issuers` with
 * `allowInsecureLoopback` (the same rule the key fetcher enforces, checked here so a credential
 * that could never work is refused when it is made rather than at the first login).
 */
function assertIssuerAllowed(ctx: RouteContext, issuer: string): void {
  const url = new URL(issuer);
  if (url.protocol === 'https:') return;
  const configured = ctx.auth.federationConfig.issuers.some((i) => i.issuer === issuer && i.allowInsecureLoopback);
  if (url.protocol === 'http:' && isLoopbackUrl(url) && configured) return;
  throw new RegistryError(
    'INVALID_REQUEST',
    `issuer: ${issuer.slice(0, 200)} is plain http; the issuer must be an https URL (plain http only for a loopback issuer configured in federation.issuers with allowInsecureLoopback)`,
  );
}
