/**
 * The one access decision, for every route, listing and (later) console view: given the bearer
 * token a request carries (or none) and the access it needs (derived from the route table), it is
 * - `allowed`, with the verified identity (undefined for a token-less request the anonymous-pull
 *   policy covers, or when the token service is off);
 * - `challenge`: the client should (re)authenticate. `missing`: no token; `invalid_token`: the
 *   token is bad or expired; `insufficient_scope`: the token lacks the access but its principal
 *   holds it, so a better token would do;
 * - `denied`: the principal itself lacks `missing`; no token can help.
 * Presenting a decision (the `WWW-Authenticate` challenge, a 403 body) is the caller's business.
 *
 * State, per instance: verified tokens (verified-tokens.ts: a burst of requests with one token
 * costs one signature check) and the anonymous-pull patterns (re-read at most every few seconds,
 * so replicas see a change within that time).
 */
import type { AnonymousPullIndex } from '../metadata/auth-store.js';
import type { Clock } from '../shared/clock.js';
import { expand, limitAccess, missingAccess, type Access } from './access.js';
import { allowedOnRegistry, allowedOnRepository, anonymousPullGrants, catalogVisibility, grantAccess, type Grant } from './permissions.js';
import { InvalidTokenError, type AccessClaims, type Identity } from './tokens.js';
import { VerifiedTokens } from './verified-tokens.js';

export type ChallengeReason = 'missing' | 'invalid_token' | 'insufficient_scope';

export type Decision =
  { kind: 'allowed'; identity: AccessClaims | undefined } | { kind: 'challenge'; reason: ChallengeReason } | { kind: 'denied'; missing: Access[] };

/**
 * A web console session's principal, as the console resolved it from the session cookie (the
 * session is live and the principal usable). Its requests carry no token: they are decided by the
 * principal's grants as they are now, the way the token endpoint would grant a token.
 */
export interface SessionPrincipal extends Pick<Identity, 'subject' | 'name' | 'kind'> {
  /** When the session ends (ms). */
  expiresAt: number;
}

/** The identity of a request made with a console session: its access for this request, and the grants behind it. */
export interface SessionIdentity extends AccessClaims {
  session: true;
  grants: Grant[];
}

export function isSessionIdentity(identity: AccessClaims): identity is SessionIdentity {
  return (identity as Partial<SessionIdentity>).session === true;
}

export interface AuthorizerDependencies {
  /** With the token service off every request is allowed, anonymously. */
  enabled: boolean;
  verifyAccess(token: string): Promise<AccessClaims>;
  /** True if the key with this id was revoked (a cached verification of a token it signed no longer counts). */
  keyRevoked(kid: string | undefined): Promise<boolean>;
  /** The grants of a principal by id; none when it no longer exists. */
  grantsOf(principalId: string): Promise<Grant[]>;
  anonymousPull: Pick<AnonymousPullIndex, 'list'>;
  clock: Clock;
}

const maxCachedTokens = 10_000;
/** The anonymous-pull patterns are re-read at most this often. */
const anonymousTtlMs = 5_000;

export class Authorizer {
  private readonly verified: VerifiedTokens<AccessClaims>;
  private anonymous: { at: number; patterns: string[] } | undefined;

  constructor(private readonly deps: AuthorizerDependencies) {
    this.verified = new VerifiedTokens({ max: maxCachedTokens, clock: deps.clock, keyRevoked: (kid) => deps.keyRevoked(kid) });
  }

  /** The decision for a request carrying `bearer` (undefined: no token) that needs `required`. */
  async decide(bearer: string | undefined, required: readonly Access[]): Promise<Decision> {
    if (!this.deps.enabled) return { kind: 'allowed', identity: undefined };
    if (!bearer) {
      if (required.length > 0 && anonymousCovers(anonymousPullGrants(await this.anonymousPatterns()), required))
        return { kind: 'allowed', identity: undefined };
      return { kind: 'challenge', reason: 'missing' };
    }
    let claims: AccessClaims;
    try {
      claims = await this.verify(bearer);
    } catch (err) {
      if (err instanceof InvalidTokenError) return { kind: 'challenge', reason: 'invalid_token' };
      throw err;
    }
    const missing = missingAccess(claims.access, required);
    if (missing.length === 0) return { kind: 'allowed', identity: claims };
    if (claims.kind === 'anonymous') return { kind: 'challenge', reason: 'insufficient_scope' };
    const grants = await this.deps.grantsOf(claims.subject);
    if (missingAccess(grantAccess(grants, missing), missing).length === 0) return { kind: 'challenge', reason: 'insufficient_scope' };
    return { kind: 'denied', missing };
  }

  /**
   * The decision for a request made with a console session (no token): what the principal's grants
   * give for `required`, exactly as the token endpoint would grant it. Nothing to re-authenticate
   * with can help a session, so a shortfall is `denied`.
   */
  async decideSession(principal: SessionPrincipal, required: readonly Access[]): Promise<Decision> {
    if (!this.deps.enabled) return { kind: 'allowed', identity: undefined };
    const grants = await this.deps.grantsOf(principal.subject);
    const access = grantAccess(grants, required);
    const missing = missingAccess(access, required);
    if (missing.length > 0) return { kind: 'denied', missing };
    const identity: SessionIdentity = {
      subject: principal.subject,
      name: principal.name,
      kind: principal.kind,
      sessionExpiresAt: principal.expiresAt,
      access,
      expiresAt: principal.expiresAt,
      // No token, so no signing key whose revocation could end it (the session's own row does).
      keyId: undefined,
      session: true,
      grants,
    };
    return { kind: 'allowed', identity };
  }

  /**
   * For routes that authorize inside the handler (import: an owner, or push on every target): an
   * already verified identity against `required`, by its token alone (a console session: by its grants).
   */
  check(identity: AccessClaims, required: readonly Access[]): { kind: 'allowed' } | { kind: 'denied'; missing: Access[] } {
    const held = isSessionIdentity(identity) ? grantAccess(identity.grants, required) : identity.access;
    const missing = missingAccess(held, required);
    return missing.length === 0 ? { kind: 'allowed' } : { kind: 'denied', missing };
  }

  /**
   * Which repositories `identity` sees in the catalog; undefined: all of them (auth off, no
   * identity, or a token with registry-wide read). A token with only `metadata_read` on the
   * catalog (a principal granted some repositories, e.g. a vendor's scoped customer credential that
   * a sync rule uses to discover what it may copy) sees just the repositories its grants can read;
   * an anonymous token those of the anonymous-pull policy (read afresh, not from the cache).
   *
   * Rule: a token bound to a ceiling (`scopeCeiling`, e.g. a pull secret for two repositories)
   * sees at most the repositories its ceiling lets it read, whatever the principal's grants and
   * even with registry-wide catalog access: the catalog is a read like any other.
   */
  async catalogFilter(identity: AccessClaims | undefined): Promise<((repository: string) => boolean) | undefined> {
    if (!this.deps.enabled || !identity) return undefined;
    if (isSessionIdentity(identity)) return catalogVisibility(allowedOnRegistry(identity.grants), async () => identity.grants);
    const actions = identity.access.filter((a) => a.type === 'registry' && a.name === 'catalog').flatMap((a) => a.actions);
    const visible = await catalogVisibility(actions, async () =>
      identity.kind === 'anonymous' ? anonymousPullGrants(await this.deps.anonymousPull.list()) : this.deps.grantsOf(identity.subject),
    );
    const ceiling = identity.scopeCeiling;
    if (ceiling === undefined) return visible;
    return (repository) => (visible === undefined || visible(repository)) && ceilingReads(ceiling, repository);
  }

  /**
   * Which repositories the caller may pull, for decisions that look beyond the repositories a
   * request names (a blob mount without `from`: link the blob only from a repository the caller
   * could read anyway). With auth off: all. Without a token, or with an anonymous one: those of the
   * anonymous-pull policy. Otherwise a repository is pullable when the token itself grants `pull`
   * on it, or when the principal's grants do and the token's scope ceiling (a login bound to named
   * scopes, `Identity.scopeCeiling`) allows it, i.e. when the caller could get a token for it.
   * The grants are read once per call, afresh.
   */
  async pullFilter(identity: AccessClaims | undefined): Promise<(repository: string) => boolean> {
    if (!this.deps.enabled) return () => true;
    const pull = (name: string): Access[] => [{ type: 'repository', name, actions: ['pull'] }];
    if (!identity || identity.kind === 'anonymous') {
      const grants = anonymousPullGrants(await this.deps.anonymousPull.list());
      return (repository) => expand(allowedOnRepository(grants, repository)).has('pull');
    }
    const grants = await this.deps.grantsOf(identity.subject);
    const ceiling = identity.scopeCeiling;
    return (repository) => {
      if (missingAccess(identity.access, pull(repository)).length === 0) return true;
      if (!expand(allowedOnRepository(grants, repository)).has('pull')) return false;
      return ceiling === undefined || missingAccess(ceiling, pull(repository)).length === 0;
    };
  }

  private async verify(token: string): Promise<AccessClaims> {
    return this.verified.verify(token, (t) => this.deps.verifyAccess(t));
  }

  private async anonymousPatterns(): Promise<string[]> {
    const now = this.deps.clock.now();
    if (!this.anonymous || now - this.anonymous.at > anonymousTtlMs) {
      this.anonymous = { at: now, patterns: await this.deps.anonymousPull.list() };
    }
    return this.anonymous.patterns;
  }
}

/** True if the ceiling lets a token list `repository`'s tags (pull or metadata_read on it). */
function ceilingReads(ceiling: readonly Access[], repository: string): boolean {
  return limitAccess([{ type: 'repository', name: repository, actions: ['metadata_read'] }], ceiling).length > 0;
}

/**
 * Rule: a request without a token gets through only for repository reads (pull, metadata_read)
 * the anonymous-pull grants cover; the catalog and everything else need a token.
 */
function anonymousCovers(grants: readonly Grant[], required: readonly Access[]): boolean {
  return (
    required.length > 0 &&
    required.every((r) => {
      if (r.type !== 'repository') return false;
      const allowed = expand(allowedOnRepository(grants, r.name));
      return allowed.size > 0 && r.actions.every((a) => allowed.has(a));
    })
  );
}
