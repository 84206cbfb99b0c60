/**
 * Managing principals and their secrets (`/api/v1/principals…`): users, service principals,
 * repository-scoped tokens and the admin user (created from configuration, listed and managed here
 * but never created or deleted). Every change is audited with its actor.
 *
 * Rules enforced here, whoever calls:
 * - lockout guard: the acting owner cannot disable or delete itself nor drop its own registry-wide
 *   owner grant; another owner must do that;
 * - a new principal or secret must not be born expired (usually a seconds-vs-milliseconds slip);
 * - secret names: a user's default is `password`; tokens and the admin user hold at most
 *   `password1` and `password2` (ACR's two-password scheme), defaulting to `password1`; a service
 *   principal's default is the lowest free `secretN`. Setting a name that exists rotates it, which
 *   revokes the refresh tokens the old secret bought.
 *
 * Callers resolve the principal a request names first (`resolve`, 404 PRINCIPAL_UNKNOWN), then
 * act on it, so an unknown principal is reported before anything about the request's body.
 */
import type { CreatedPrincipalView, IssuedSecret, PrincipalKind, PrincipalView } from '../../api/principals.js';
import type { AuthMetadata, CredentialRecord, PrincipalRecord } from '../../metadata/auth-store.js';
import { ApiError } from '../../api/errors.js';
import type { Actor } from '../../shared/actor.js';
import type { Clock } from '../../shared/clock.js';
import { isOwner, registryScope, type Grant } from '../permissions.js';
import { PolicyError, type PrincipalService } from '../principals.js';
import type { AuditLog } from './audit.js';
import { describeTarget, principalView } from './views.js';

export interface NewPrincipal {
  kind: 'user' | 'service' | 'token';
  /** Needed for users and tokens; a service principal without one is named by a generated client id. */
  name?: string | undefined;
  description?: string | undefined;
  grants: Grant[];
  expiresAt?: number | undefined;
}

/** A PATCH: `null` clears a description or expiry; absent keys stay as they are. */
export interface PrincipalChanges {
  disabled?: boolean | undefined;
  description?: string | null | undefined;
  expiresAt?: number | null | undefined;
}

export class PrincipalAdmin {
  constructor(
    private readonly store: AuthMetadata,
    private readonly principals: PrincipalService,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  /** The principal by id or by login name; 404 PRINCIPAL_UNKNOWN otherwise. */
  async resolve(ref: string): Promise<PrincipalRecord> {
    const principal = (await this.store.principals.get(ref)) ?? (await this.store.principals.findByName(ref));
    if (!principal) throw new ApiError('PRINCIPAL_UNKNOWN', `no principal with id or name ${JSON.stringify(ref.slice(0, 128))}`);
    return principal;
  }

  /** Every principal (of one kind), sorted by name. */
  async list(kind?: PrincipalKind): Promise<PrincipalView[]> {
    const records = await this.store.principals.list(kind);
    return Promise.all(records.map((p) => this.view(p)));
  }

  async get(principal: PrincipalRecord): Promise<PrincipalView> {
    return this.view(principal);
  }

  /** Creates a principal with its first secret (shown once); a taken name is 409 PRINCIPAL_EXISTS. */
  async create(actor: Actor, input: NewPrincipal): Promise<CreatedPrincipalView> {
    if (input.kind !== 'service' && input.name === undefined) throw new ApiError('INVALID_REQUEST', `name: a ${input.kind} needs a name`);
    this.assertFuture(input.expiresAt);
    const name = input.name;
    const taken = () => new ApiError('PRINCIPAL_EXISTS', `a principal named ${name ?? ''} already exists`, { name });
    if (name !== undefined && (await this.store.principals.findByName(name))) throw taken();
    const created = await policy(() =>
      this.principals.createPrincipal(input.kind, name, {
        grants: input.grants,
        ...(input.description !== undefined ? { description: input.description } : {}),
        ...(input.expiresAt !== undefined ? { expiresAt: input.expiresAt } : {}),
      }),
    ).catch(async (err: unknown) => {
      // Lost a race with another create of the same name.
      if (name !== undefined && (await this.store.principals.findByName(name))) throw taken();
      throw err;
    });
    if (created.secret === undefined || created.label === undefined) throw new Error('createPrincipal returned no secret');
    await this.audit.record(actor, 'admin.principal.created', {
      target: describeTarget(created.principal),
      grants: input.grants,
      expiresAt: input.expiresAt,
    });
    return { principal: await this.view(created.principal), secret: { name: created.label, value: created.secret } };
  }

  /**
   * Applies a PATCH. Disabling revokes every refresh token of the principal at once; access tokens
   * already issued run out within their (short) lifetime. The audit entry records `changes` as given.
   */
  async update(actor: Actor, target: PrincipalRecord, changes: PrincipalChanges): Promise<PrincipalView> {
    if (changes.disabled === true && target.id === actor.principalId) {
      throw new ApiError('INVALID_REQUEST', 'refusing to disable the principal you are acting as; ask another owner');
    }
    if (changes.disabled !== undefined) await this.principals.setDisabled(target.id, changes.disabled);
    if (changes.description !== undefined || changes.expiresAt !== undefined) {
      await this.store.principals.update(
        target.id,
        Object.assign(
          {},
          changes.description !== undefined ? { description: changes.description } : {},
          changes.expiresAt !== undefined ? { expiresAt: changes.expiresAt } : {},
        ),
      );
    }
    await this.audit.record(actor, 'admin.principal.updated', { target: describeTarget(target), changes });
    const updated = await this.store.principals.get(target.id);
    if (!updated) throw new ApiError('PRINCIPAL_UNKNOWN', 'the principal was deleted meanwhile');
    return this.view(updated);
  }

  /** Deletes a principal; its secrets, grants and refresh tokens go with it. */
  async remove(actor: Actor, target: PrincipalRecord): Promise<void> {
    if (target.id === actor.principalId) throw new ApiError('INVALID_REQUEST', 'refusing to delete the principal you are acting as; ask another owner');
    if (target.kind === 'admin') {
      throw new ApiError('INVALID_REQUEST', 'the admin user comes from configuration (auth.adminUser); turn it off there, or disable it with PATCH');
    }
    if (!(await this.store.principals.delete(target.id))) throw new ApiError('PRINCIPAL_UNKNOWN', 'the principal was deleted meanwhile');
    await this.audit.record(actor, 'admin.principal.deleted', { target: describeTarget(target) });
  }

  /** Replaces the grants exactly. */
  async replaceGrants(actor: Actor, target: PrincipalRecord, grants: Grant[]): Promise<PrincipalView> {
    if (target.kind === 'admin') {
      throw new ApiError('INVALID_REQUEST', `the admin user always holds owner on ${registryScope}; its grants cannot be changed`);
    }
    if (target.id === actor.principalId && !isOwner(grants)) {
      throw new ApiError('INVALID_REQUEST', `refusing to remove your own owner grant on ${registryScope}; ask another owner`);
    }
    const previous = await this.store.grants.list(target.id);
    await policy(() => this.principals.setGrants(target.id, grants));
    await this.audit.record(actor, 'admin.grants.replaced', { target: describeTarget(target), previous, grants });
    return this.view(target);
  }

  /** Sets or rotates a named secret (see the module comment for the names); the value is returned once. */
  async setSecret(actor: Actor, target: PrincipalRecord, options: { name?: string | undefined; expiresAt?: number | undefined }): Promise<IssuedSecret> {
    this.assertFuture(options.expiresAt);
    const existing = await this.store.credentials.list(target.id);
    const name = options.name ?? defaultSecretName(target.kind, existing);
    const value = await policy(() => this.principals.setSecret(target.id, name, options.expiresAt !== undefined ? { expiresAt: options.expiresAt } : {}));
    const rotated = existing.some((c) => c.label === name);
    await this.audit.record(actor, rotated ? 'admin.secret.rotated' : 'admin.secret.created', {
      target: describeTarget(target),
      secret: name,
      expiresAt: options.expiresAt,
    });
    return { name, value };
  }

  /** Removes a secret; the refresh tokens it bought are revoked. 404 SECRET_UNKNOWN if it has none by that name. */
  async removeSecret(actor: Actor, target: PrincipalRecord, name: string): Promise<void> {
    if (!(await this.principals.removeSecret(target.id, name))) {
      throw new ApiError('SECRET_UNKNOWN', `${target.name} has no secret named ${JSON.stringify(name.slice(0, 63))}`);
    }
    await this.audit.record(actor, 'admin.secret.deleted', { target: describeTarget(target), secret: name });
  }

  private async view(principal: PrincipalRecord): Promise<PrincipalView> {
    const [grants, credentials, federated] = await Promise.all([
      this.principals.grantsFor(principal),
      this.store.credentials.list(principal.id),
      this.store.federatedCredentials.list(principal.id),
    ]);
    return principalView(principal, grants, credentials, federated);
  }

  private assertFuture(expiresAt: number | undefined): void {
    if (expiresAt !== undefined && expiresAt <= this.clock.now()) {
      throw new ApiError('INVALID_REQUEST', `expiresAt ${new Date(expiresAt).toISOString()} is in the past`);
    }
  }
}

/** The principal service's policy refusals (bad names, patterns, secret names) are 400s. */
async function policy<T>(action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (err) {
    if (err instanceof PolicyError) throw new ApiError('INVALID_REQUEST', err.message);
    throw err;
  }
}

function defaultSecretName(kind: PrincipalKind, existing: readonly CredentialRecord[]): string {
  if (kind === 'user') return 'password';
  if (kind === 'token' || kind === 'admin') return 'password1';
  const taken = new Set(existing.map((c) => c.label));
  let n = 1;
  while (taken.has(`secret${n}`)) n++;
  return `secret${n}`;
}
