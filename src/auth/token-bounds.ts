/**
 * "A token never buys more than it was given, nor outlives what bought it": the rules the token
 * endpoint applies whenever one token derives from another (refresh -> access, the exchanges,
 * `berth token --expose`, the credential helper's renewal), in one place.
 *
 * - Scope: a derived token grants at most its source's ceiling (`Identity.scopeCeiling`); named
 *   scopes can only narrow it, and scopes that fail to parse narrow to nothing.
 * - Time: a login's session (`Identity.sessionExpiresAt`) ends at the earliest of what bought it:
 *   the OIDC token's `exp` (and `federation.lifetimeCapMs`), the secret's and the principal's
 *   `expiresAt`. Every derived token is clamped to it (tokens.ts), and renewal never moves it.
 * - Standing: at every redemption and exchange the credential a token was bought with must still
 *   exist (a rotated or removed secret, a replaced or removed federated credential ends the chain,
 *   also for a token issued in a race with the change) and must not have expired.
 */
import type { AuthMetadata, PrincipalRecord } from '../metadata/auth-store.js';
import type { Clock } from '../shared/clock.js';
import { limitAccess, parseScopes, type Access } from './access.js';
import type { Identity } from './tokens.js';

export class CredentialGoneError extends Error {
  override name = 'CredentialGoneError';
}

/** The earliest of the ends that are set (ms), or undefined when none is. */
export function earliest(...ends: ReadonlyArray<number | undefined>): number | undefined {
  const set = ends.filter((end): end is number => end !== undefined);
  return set.length > 0 ? Math.min(...set) : undefined;
}

/**
 * The ceiling `scopes` (a request's raw `scope` parameters) put on a derived token: undefined when
 * none were given; else what they name (an empty list, allowing nothing, when none of them parses).
 */
export function requestedCeiling(scopes: readonly string[]): Access[] | undefined {
  if (!scopes.some((scope) => scope.trim() !== '')) return undefined;
  return parseScopes(scopes);
}

/** `identity` bounded further by `ceiling` (and its own ceiling, so a bounded token is only ever narrowed). */
export function narrowed(identity: Identity, ceiling: readonly Access[] | undefined): Identity {
  if (ceiling === undefined) return identity;
  return Object.assign({}, identity, { scopeCeiling: identity.scopeCeiling ? limitAccess(ceiling, identity.scopeCeiling) : [...ceiling] });
}

/** `identity` whose session ends no later than `end` (an unset `end` changes nothing). */
export function endingBy(identity: Identity, end: number | undefined): Identity {
  const sessionExpiresAt = earliest(identity.sessionExpiresAt, end);
  return sessionExpiresAt === identity.sessionExpiresAt ? identity : Object.assign({}, identity, { sessionExpiresAt });
}

export class TokenBounds {
  constructor(
    private readonly store: Pick<AuthMetadata, 'credentials' | 'federatedCredentials'>,
    private readonly clock: Clock,
  ) {}

  /** `identity` whose session ends no later than the principal's and the credential's expiry. */
  bind(identity: Identity, principal: PrincipalRecord, credentialExpiresAt: number | undefined): Identity {
    return endingBy(identity, earliest(principal.expiresAt, credentialExpiresAt));
  }

  /**
   * Checks that the credential `identity` was bought with still stands; returns its expiry (a
   * secret's `expiresAt`; federated credentials have none). Throws CredentialGoneError otherwise.
   * Identities without a credential (anonymous) pass.
   */
  async check(identity: Identity): Promise<number | undefined> {
    const id = identity.credentialId;
    if (id === undefined) return undefined;
    const kind = identity.credentialKind;
    const secret = kind === 'federated' ? undefined : await this.store.credentials.get(id);
    if (secret && secret.principalId === identity.subject) {
      if (secret.expiresAt !== undefined && secret.expiresAt <= this.clock.now())
        throw new CredentialGoneError('the secret this login was made with has expired');
      return secret.expiresAt;
    }
    const federated = kind === 'secret' ? undefined : await this.store.federatedCredentials.get(id);
    if (federated && federated.principalId === identity.subject) return undefined;
    throw new CredentialGoneError('the credential this login was made with was rotated, replaced or removed');
  }
}
