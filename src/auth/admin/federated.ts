/**
 * Managing federated credentials (`/api/v1/principals/{idOrName}/federated-credentials`): which
 * OIDC tokens (from GitHub Actions, a Kubernetes cluster, GitLab or any issuer) a service principal
 * accepts in place of a secret. A credential is written out or produced by a preset
 * (`federation/presets.ts`), validated by the same rules as a `federatedCredentials:` entry in
 * berth.yaml.
 *
 * Putting a name that exists replaces that credential, and removing one deletes it; either way the
 * refresh tokens bought with the old credential are revoked at once (access tokens run out within
 * their short lifetime), so narrowing a trust takes effect without waiting. Every change is audited.
 */
import { randomUUID } from 'node:crypto';
import type { FederatedCredentialView, PutFederatedCredentialView } from '../../api/principals.js';
import type { Config } from '../../config/schema.js';
import { resolveFederatedCredential, type FederatedCredentialInput } from '../../api/federated-credentials.js';
import { PresetError, type FederatedTrust } from '../../api/federation-presets.js';
import type { AuthMetadata, FederatedCredentialRecord, PrincipalRecord } from '../../metadata/auth-store.js';
import { ApiError } from '../../api/errors.js';
import type { Actor } from '../../shared/actor.js';
import type { Clock } from '../../shared/clock.js';
import { isLoopbackUrl } from '../../shared/loopback.js';
import type { AuditLog } from './audit.js';
import { describeTarget, federatedCredentialView } from './views.js';

/** Each credential is one more candidate every exchange for its issuer is checked against. */
export const maxFederatedCredentials = 20;

export class FederatedCredentialAdmin {
  constructor(
    private readonly store: Pick<AuthMetadata, 'federatedCredentials' | 'refreshTokens'>,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly federation: Pick<Config['federation'], 'issuers'>,
    /** This registry's audience: what presets default to (federation/audience.ts). */
    private readonly audience: () => Promise<string>,
  ) {}

  /** The principal's credentials, sorted by name (none for principals other than service principals). */
  async list(target: PrincipalRecord): Promise<FederatedCredentialView[]> {
    return (await this.store.federatedCredentials.list(target.id)).map(federatedCredentialView);
  }

  /**
   * Rule: only service principals act on behalf of workloads. A user, token or the admin user
   * logs in with its own secrets; letting an OIDC token act as a person would blur the audit trail.
   * (`put` checks it too; callers check first to refuse before reading a request body.)
   */
  assertMayTrust(target: PrincipalRecord): void {
    if (target.kind !== 'service') {
      throw new ApiError(
        'INVALID_REQUEST',
        `only service principals may have federated credentials; ${target.name} is ${target.kind === 'admin' ? 'the admin user' : `a ${target.kind}`} (create one with POST /principals {"kind": "service"})`,
      );
    }
  }

  /** Adds a credential, or replaces the one with the same name (revoking what it bought). */
  async put(actor: Actor, target: PrincipalRecord, input: FederatedCredentialInput): Promise<PutFederatedCredentialView> {
    this.assertMayTrust(target);
    let trust: FederatedTrust;
    try {
      trust = resolveFederatedCredential(input, await this.audience());
    } catch (err) {
      if (err instanceof PresetError) throw new ApiError('INVALID_REQUEST', err.message);
      throw err;
    }
    this.assertIssuerAllowed(trust.issuer);

    const store = this.store.federatedCredentials;
    const existing = await store.list(target.id);
    if (!existing.some((c) => c.name === input.name) && existing.length >= maxFederatedCredentials) {
      throw new ApiError(
        'INVALID_REQUEST',
        `${target.name} already has ${maxFederatedCredentials} federated credentials, the most a principal may have; remove one first`,
      );
    }
    const now = this.clock.now();
    const record: FederatedCredentialRecord = { id: randomUUID(), principalId: target.id, name: input.name, ...trust, createdAt: now };
    const replacedId = await store.put(record);
    const revoked = replacedId === undefined ? 0 : await this.store.refreshTokens.revoke({ credentialId: replacedId }, now);
    const view = federatedCredentialView(record);
    await this.audit.record(actor, replacedId === undefined ? 'admin.federated_credential.created' : 'admin.federated_credential.replaced', {
      target: describeTarget(target),
      credential: { name: view.name, issuer: view.issuer, audiences: view.audiences, subject: view.subject, conditions: view.conditions },
      ...(input.preset !== undefined ? { preset: input.preset } : {}),
      ...(replacedId !== undefined ? { revokedRefreshTokens: revoked } : {}),
    });
    return { credential: view, replaced: replacedId !== undefined };
  }

  /** Removes a credential by name; the refresh tokens it bought are revoked. 404 SECRET_UNKNOWN if there is none. */
  async remove(actor: Actor, target: PrincipalRecord, name: string): Promise<void> {
    const removedId = await this.store.federatedCredentials.remove(target.id, name);
    if (removedId === undefined) {
      throw new ApiError('SECRET_UNKNOWN', `${target.name} has no federated credential named ${JSON.stringify(name.slice(0, 64))}`);
    }
    const revoked = await this.store.refreshTokens.revoke({ credentialId: removedId }, this.clock.now());
    await this.audit.record(actor, 'admin.federated_credential.deleted', { target: describeTarget(target), credential: name, revokedRefreshTokens: revoked });
  }

  /**
   * Rule: tokens are only ever fetched over HTTPS; an `http://` issuer is accepted only for a
   * loopback host that the configuration lists in `federation.issuers` with
   * `allowInsecureLoopback` (the same rule the key fetcher enforces, checked here so a credential
   * that could never work is refused when it is made rather than at the first login).
   */
  private assertIssuerAllowed(issuer: string): void {
    const url = new URL(issuer);
    if (url.protocol === 'https:') return;
    const configured = this.federation.issuers.some((i) => i.issuer === issuer && i.allowInsecureLoopback);
    if (url.protocol === 'http:' && isLoopbackUrl(url) && configured) return;
    throw new ApiError(
      'INVALID_REQUEST',
      `issuer: ${issuer.slice(0, 200)} is plain http; the issuer must be an https URL (plain http only for a loopback issuer configured in federation.issuers with allowInsecureLoopback)`,
    );
  }
}
