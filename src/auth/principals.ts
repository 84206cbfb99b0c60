/**
 * Principals and their credentials: authentication, the owner bootstrap, the admin user, and the
 * management operations the API and `berth apply` use. Secrets are generated here, shown once,
 * and stored only as scrypt hashes.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuthMetadata, CredentialRecord, GrantRecord, PrincipalKind, PrincipalRecord } from '../metadata/auth-store.js';
import { principalNameProblem } from '../api/principals.js';
import type { Clock } from '../shared/clock.js';
import { decoyHash, generateSecret, hashSecret, verifySecret } from './passwords.js';
import { isPermission, isValidPattern, registryScope, type Grant, type Permission } from './permissions.js';

export class AuthenticationError extends Error {
  override name = 'AuthenticationError';
}

export class PolicyError extends Error {
  override name = 'PolicyError';
}

export interface Authenticated {
  principal: PrincipalRecord;
  /** What the principal may do, read with it. */
  grants: Grant[];
  credentialId: string;
  /** The secret's own expiry: a login made with it ends no later (auth/token-bounds.ts). */
  credentialExpiresAt: number | undefined;
}

export interface PrincipalSettings {
  adminUser: { enabled: boolean; username: string };
  bootstrap: { user?: string | undefined; password?: string | undefined };
}

/**
 * What `principal` may do, given its stored grant rows: the admin user owns the registry whatever
 * is stored; rows naming no known permission grant nothing.
 */
export function grantsFrom(principal: PrincipalRecord, rows: readonly GrantRecord[]): Grant[] {
  if (principal.kind === 'admin') return [{ pattern: registryScope, permission: 'owner' }];
  return rows.filter((g): g is Grant => isPermission(g.permission));
}

/** A hash to verify against when the user does not exist, so timing does not reveal which names exist. */
const decoy = decoyHash();
/** Key derivations every failed login runs at least (see `authenticate`). */
export const failedLoginKdfRuns = 2;
/** Successful verifications, keyed by a hash of credential id + secret: saves a slow KDF per docker request. */
const verifiedTtlMs = 5 * 60 * 1000;
const maxVerified = 10_000;

export class PrincipalService {
  private readonly verified = new Map<string, number>();

  constructor(
    private readonly store: AuthMetadata,
    private readonly clock: Clock,
    private readonly settings: PrincipalSettings,
    private readonly logger: Logger,
  ) {}

  /**
   * Checks a login name and secret. The error never says which part was wrong, and a failure costs
   * the same key-derivation work whether the name exists or not: every failed login runs scrypt at
   * least {@link failedLoginKdfRuns} times (a name that does not exist, or has no live secret, runs
   * it against a decoy hash), which is what a user (one secret) or a token or the admin user (two)
   * costs. Only a principal with more secrets than that (service principals, whose names are
   * generated client ids) takes longer to fail.
   */
  async authenticate(name: string, secret: string): Promise<Authenticated> {
    const found = await this.store.principals.findByNameWithGrants(name);
    const principal = found?.principal;
    const now = this.clock.now();
    const credentials = principal ? (await this.store.credentials.list(principal.id)).filter((c) => c.expiresAt === undefined || c.expiresAt > now) : [];
    let match: CredentialRecord | undefined;
    for (const credential of credentials) {
      if (await this.checkSecret(credential, secret)) {
        match = credential;
        break;
      }
    }
    if (!principal || !match) {
      for (let run = credentials.length; run < failedLoginKdfRuns; run++) await verifySecret(secret, decoy);
      throw new AuthenticationError('invalid credentials');
    }
    this.assertUsable(principal);
    return { principal, grants: grantsFrom(principal, found.grants), credentialId: match.id, credentialExpiresAt: match.expiresAt };
  }

  /** Throws if the principal may not get tokens now (disabled, expired, admin user switched off). */
  assertUsable(principal: PrincipalRecord): void {
    if (principal.disabled) throw new AuthenticationError('principal is disabled');
    if (principal.expiresAt !== undefined && principal.expiresAt <= this.clock.now()) throw new AuthenticationError('principal has expired');
    if (principal.kind === 'admin' && (!this.settings.adminUser.enabled || principal.name !== this.settings.adminUser.username)) {
      throw new AuthenticationError('the admin user is disabled');
    }
  }

  async grantsFor(principal: PrincipalRecord): Promise<Grant[]> {
    return grantsFrom(principal, principal.kind === 'admin' ? [] : await this.store.grants.list(principal.id));
  }

  /** The principal with this id and what it may do, in one read; undefined when it no longer exists. */
  async withGrants(id: string): Promise<{ principal: PrincipalRecord; grants: Grant[] } | undefined> {
    const found = await this.store.principals.getWithGrants(id);
    return found && { principal: found.principal, grants: grantsFrom(found.principal, found.grants) };
  }

  /** The grants of the principal with this id; none when it no longer exists. */
  async grantsOf(principalId: string): Promise<Grant[]> {
    const principal = await this.store.principals.get(principalId);
    return principal ? this.grantsFor(principal) : [];
  }

  /**
   * On first start with no principals, creates the owner: from settings if given, else with a
   * generated password that the caller prints once. Returns undefined if principals already exist.
   */
  async bootstrap(): Promise<{ name: string; password: string | undefined } | undefined> {
    if ((await this.store.principals.count()) > 0) return undefined;
    const name = this.settings.bootstrap.user ?? 'owner';
    const given = this.settings.bootstrap.password;
    try {
      const { secret } = await this.createPrincipal('user', name, {
        grants: [{ pattern: registryScope, permission: 'owner' }],
        description: 'bootstrap owner',
        ...(given ? { secret: given } : {}),
      });
      return { name, password: given ? undefined : secret };
    } catch (err) {
      // Replicas sharing one database start together: the one that lost the race has nothing to do.
      if (err instanceof PolicyError && (await this.store.principals.findByName(name))) return undefined;
      throw err;
    }
  }

  /** Makes sure the configured admin user exists when it is enabled (its passwords are set by an owner). */
  async ensureAdminUser(): Promise<void> {
    const { enabled, username } = this.settings.adminUser;
    if (!enabled) return;
    const existing = await this.store.principals.findByName(username);
    if (existing?.kind === 'admin') return;
    if (existing) {
      this.logger.warn(
        { username },
        'auth.adminUser is enabled, but a principal of another kind already has that name: the admin user is not created; choose another auth.adminUser.username',
      );
      return;
    }
    try {
      await this.createPrincipal('admin', username, { description: 'admin user', withoutSecret: true });
    } catch (err) {
      // Another replica created it meanwhile (several replicas on one database start together).
      if (err instanceof PolicyError && (await this.store.principals.findByName(username))?.kind === 'admin') return;
      throw err;
    }
  }

  /**
   * Creates a principal with its grants and first secret (`password`, `password1` for admin users
   * and tokens, or `secret1` for service principals). Service principals are named by a generated
   * client id. Returns the secret in clear, once.
   */
  async createPrincipal(
    kind: PrincipalKind,
    name: string | undefined,
    options: { grants?: Grant[]; description?: string; expiresAt?: number; secret?: string; withoutSecret?: boolean } = {},
  ): Promise<{ principal: PrincipalRecord; secret: string | undefined; label: string | undefined }> {
    const grants = options.grants ?? [];
    validateGrants(grants);
    const principal: PrincipalRecord = {
      id: randomUUID(),
      kind,
      name: kind === 'service' && name === undefined ? randomUUID() : requireName(name),
      description: options.description,
      disabled: false,
      expiresAt: options.expiresAt,
      createdAt: this.clock.now(),
    };
    if (!(await this.store.principals.create(principal))) throw new PolicyError(`a principal named ${principal.name} already exists`);
    await this.store.grants.replace(principal.id, grants);
    if (options.withoutSecret) return { principal, secret: undefined, label: undefined };
    const label = kind === 'user' ? 'password' : kind === 'service' ? 'secret1' : 'password1';
    const secret = await this.setSecret(principal.id, label, { ...(options.secret ? { secret: options.secret } : {}) });
    return { principal, secret, label };
  }

  /**
   * Sets (or rotates) one named secret. Rotation revokes the refresh tokens the old secret bought.
   * Returns the new secret in clear, once.
   */
  async setSecret(principalId: string, label: string, options: { secret?: string; expiresAt?: number } = {}): Promise<string> {
    if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(label)) throw new PolicyError('a secret name is 1-63 lowercase letters, digits, - or _');
    const principal = await this.store.principals.get(principalId);
    if (!principal) throw new PolicyError('no such principal');
    // ACR's two-password scheme: rotate one while clients still use the other.
    if ((principal.kind === 'token' || principal.kind === 'admin') && label !== 'password1' && label !== 'password2') {
      throw new PolicyError(`${principal.kind === 'admin' ? 'the admin user' : 'a token'} has at most two secrets, password1 and password2`);
    }
    const secret = options.secret ?? generateSecret();
    const replaced = await this.store.credentials.put({
      id: randomUUID(),
      principalId,
      label,
      hash: await hashSecret(secret),
      expiresAt: options.expiresAt,
      createdAt: this.clock.now(),
    });
    if (replaced) await this.store.refreshTokens.revoke({ credentialId: replaced }, this.clock.now());
    return secret;
  }

  async removeSecret(principalId: string, label: string): Promise<boolean> {
    const removed = await this.store.credentials.remove(principalId, label);
    if (removed) await this.store.refreshTokens.revoke({ credentialId: removed }, this.clock.now());
    return removed !== undefined;
  }

  /** Disabling also revokes every refresh token at once. */
  async setDisabled(principalId: string, disabled: boolean): Promise<boolean> {
    const updated = await this.store.principals.update(principalId, { disabled });
    if (updated && disabled) {
      const revoked = await this.store.refreshTokens.revoke({ principalId }, this.clock.now());
      this.logger.info({ principalId, revoked }, 'principal disabled; refresh tokens revoked');
    }
    return updated;
  }

  async setGrants(principalId: string, grants: Grant[]): Promise<void> {
    validateGrants(grants);
    await this.store.grants.replace(principalId, grants);
  }

  private async checkSecret(credential: CredentialRecord, secret: string): Promise<boolean> {
    const key = createHash('sha256').update(credential.id).update('\u0000').update(secret).digest('base64url');
    const until = this.verified.get(key);
    if (until !== undefined && until > this.clock.now()) return true;
    if (!(await verifySecret(secret, credential.hash))) return false;
    if (this.verified.size >= maxVerified) this.verified.clear();
    this.verified.set(key, this.clock.now() + verifiedTtlMs);
    return true;
  }
}

function requireName(name: string | undefined): string {
  const problem = principalNameProblem(name ?? '');
  if (problem !== undefined) throw new PolicyError(problem);
  return name as string;
}

export function validateGrants(grants: readonly { pattern: string; permission: string }[]): asserts grants is Grant[] {
  for (const grant of grants) {
    if (!isValidPattern(grant.pattern)) throw new PolicyError(`invalid repository pattern: ${grant.pattern}`);
    if (!isPermission(grant.permission)) throw new PolicyError(`unknown role or action: ${grant.permission}`);
  }
}

export type { Permission };
