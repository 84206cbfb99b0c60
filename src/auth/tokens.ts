/**
 * Issuing and verifying Berth's JWTs. Access tokens carry the Docker token-spec `access` claim and
 * `aud` = the service; refresh tokens are JWTs too, with their own `typ` so one can never be used
 * as the other, and a `jti` recorded in the store so they can be revoked.
 */
import { randomUUID } from 'node:crypto';
import type { CredentialKind, PrincipalKind, RefreshTokenIndex } from '../metadata/auth-store.js';
import type { Clock } from '../shared/clock.js';
import { JwtError, signJwt, verifyJwt, type JwtAlgorithm, type JwtClaims } from '../shared/jwt.js';
import { timeOrderedId } from '../shared/time-ordered-id.js';
import { formatScope, parseScopes, type Access } from './access.js';
import { acceptedAlgorithms, type KeyRing } from './keys.js';
import { InvalidTokenError } from './invalid-token.js';
import { VerifiedTokens, type VerifiedToken } from './verified-tokens.js';

/** A token's claims as signed: the registered ones and Berth's own. */
type JWTPayload = JwtClaims & { iss?: string; sub?: string; aud?: string | string[]; jti?: string; exp?: number; nbf?: number; iat?: number };

export const accessTokenType = 'at+jwt';
export const refreshTokenType = 'berth-refresh+jwt';
/** Allowed clock difference between Berth and its clients/replicas when checking exp/nbf/iat. */
export const clockSkewSeconds = 30;

export interface Identity {
  /** Principal id (`anonymous` for anonymous pulls). */
  subject: string;
  name: string;
  kind: PrincipalKind | 'anonymous';
  /** The credential used to authenticate, so tokens derived from it die when it is rotated. */
  credentialId?: string | undefined;
  /** Which kind of credential `credentialId` names (a secret or a federated credential). */
  credentialKind?: CredentialKind | undefined;
  /** For federated logins: the OIDC token's identifying claims, carried into every derived token. */
  provenance?: Record<string, unknown> | undefined;
  /**
   * When the login session ends (ms), never extended by any token derived from it: the earliest of
   * the OIDC token's expiry (and `federation.lifetimeCapMs`), the secret's and the principal's
   * `expiresAt`, and, for a refresh token bought with an access token, that access token's expiry.
   * Every token derived from the session, by refresh or exchange, is clamped to it.
   */
  sessionExpiresAt?: number | undefined;
  /**
   * The most any token derived from this login may grant, whatever the principal's roles: set when
   * a refresh token was requested for named scopes (`/oauth2/exchange` or RFC 8693 with `scope`,
   * e.g. a Kubernetes pull secret bound to two repositories). Carried into every derived token;
   * undefined means no ceiling beyond the principal's grants; `[]` allows nothing.
   */
  scopeCeiling?: Access[] | undefined;
}

export interface AccessClaims extends Identity {
  access: Access[];
  expiresAt: number;
  /** The signing key's id (so a cached verification can be dropped when the key is revoked). */
  keyId: string | undefined;
}

export interface IssuedToken {
  token: string;
  expiresIn: number;
  issuedAt: string;
}

/** Refresh tokens kept verified (they are few: one per client session). */
const maxCachedRefreshTokens = 2_000;

export { InvalidTokenError } from './invalid-token.js';

export class TokenService {
  /**
   * Refresh tokens whose signature was checked: a client renewing with the same refresh token (a
   * credential helper, a pull-secret controller) pays the signature once. Revocation is unaffected:
   * every use still reads the token's record.
   */
  private readonly refreshSignatures: VerifiedTokens<{ payload: JWTPayload; kid: string | undefined } & VerifiedToken>;

  constructor(
    private readonly keys: KeyRing,
    private readonly refreshTokens: RefreshTokenIndex,
    private readonly clock: Clock,
    private readonly options: { issuer: string; service: string },
  ) {
    this.refreshSignatures = new VerifiedTokens({ max: maxCachedRefreshTokens, clock, keyRevoked: (kid) => this.keyRevoked(kid) });
  }

  async issueAccess(identity: Identity, access: Access[], lifetimeMs: number): Promise<IssuedToken> {
    const claims: JWTPayload = { access, ...identityClaims(identity) };
    return this.sign(claims, accessTokenType, identity.subject, this.clamp(identity, lifetimeMs));
  }

  async verifyAccess(token: string): Promise<AccessClaims> {
    const { payload, kid } = await this.verify(token, accessTokenType);
    if (!Array.isArray(payload['access'])) throw new InvalidTokenError('token has no access claim');
    return {
      subject: payload.sub ?? '',
      name: typeof payload['name'] === 'string' ? payload['name'] : '',
      kind: payload['kind'] as AccessClaims['kind'],
      credentialId: typeof payload['cid'] === 'string' ? payload['cid'] : undefined,
      credentialKind: credentialKindOf(payload),
      keyId: kid,
      provenance: provenanceOf(payload),
      sessionExpiresAt: sessionEndOf(payload),
      scopeCeiling: ceilingOf(payload),
      access: payload['access'] as Access[],
      expiresAt: (payload.exp ?? 0) * 1000,
    };
  }

  /** Issues a refresh token and records it so it can be revoked. */
  async issueRefresh(identity: Identity, requestedMs: number): Promise<IssuedToken> {
    const lifetimeMs = this.clamp(identity, requestedMs);
    const now = this.clock.now();
    // Time-ordered: the rows a group commit writes together share the key index's last page.
    const jti = timeOrderedId(now);
    await this.refreshTokens.add({
      id: jti,
      principalId: identity.subject,
      credentialId: identity.credentialId,
      credentialKind: identity.credentialKind,
      expiresAt: now + lifetimeMs,
      createdAt: now,
      revokedAt: undefined,
    });
    const claims: JWTPayload = { jti, ...identityClaims(identity) };
    return this.sign(claims, refreshTokenType, identity.subject, lifetimeMs);
  }

  /** Verifies signature, expiry and that the token was not revoked; the caller re-checks the principal. */
  async verifyRefresh(token: string): Promise<Identity & { expiresAt: number }> {
    const { payload } = await this.refreshSignatures.verify(token, async (t) => {
      const verified = await this.verify(t, refreshTokenType);
      return Object.assign({}, verified, { keyId: verified.kid, expiresAt: (verified.payload.exp ?? 0) * 1000 });
    });
    const record = payload.jti ? await this.refreshTokens.get(payload.jti) : undefined;
    if (!record || record.revokedAt !== undefined || record.principalId !== payload.sub) {
      throw new InvalidTokenError('refresh token revoked or unknown');
    }
    return {
      subject: record.principalId,
      name: typeof payload['name'] === 'string' ? payload['name'] : '',
      kind: payload['kind'] as Identity['kind'],
      credentialId: record.credentialId,
      credentialKind: record.credentialKind,
      provenance: provenanceOf(payload),
      sessionExpiresAt: sessionEndOf(payload),
      scopeCeiling: ceilingOf(payload),
      expiresAt: record.expiresAt,
    };
  }

  /** A lifetime that ends no later than the identity's session. */
  private clamp(identity: Identity, lifetimeMs: number): number {
    if (identity.sessionExpiresAt === undefined) return lifetimeMs;
    return Math.max(1000, Math.min(lifetimeMs, identity.sessionExpiresAt - this.clock.now()));
  }

  private async sign(claims: JWTPayload, typ: string, subject: string, lifetimeMs: number): Promise<IssuedToken> {
    const key = await this.keys.signingKey();
    const now = this.clock.now();
    const iat = Math.floor(now / 1000);
    const lifetime = Math.max(1, Math.floor(lifetimeMs / 1000));
    const payload: JWTPayload = Object.assign({}, claims, {
      iss: this.options.issuer,
      aud: this.options.service,
      sub: subject,
      iat,
      nbf: iat,
      exp: iat + lifetime,
      jti: typeof claims.jti === 'string' ? claims.jti : randomUUID(),
    });
    const token = signJwt({ alg: key.alg as JwtAlgorithm, kid: key.kid, typ }, payload, key.privateKey, key.macKey);
    return { token, expiresIn: lifetime, issuedAt: new Date(iat * 1000).toISOString() };
  }

  /** True if the key `kid` was revoked (as far as this replica knows: see keys.ts). */
  async keyRevoked(kid: string | undefined): Promise<boolean> {
    return kid !== undefined && (await this.keys.isRevoked(kid));
  }

  private async verify(token: string, typ: string): Promise<{ payload: JWTPayload; kid: string | undefined }> {
    try {
      const { claims, header } = await verifyJwt(
        token,
        async (header) => {
          const key = await this.keys.verificationKey(header.kid);
          if (!key) throw new InvalidTokenError('unknown signing key');
          return key;
        },
        {
          algorithms: acceptedAlgorithms,
          issuer: this.options.issuer,
          audience: this.options.service,
          typ,
          clockToleranceSeconds: clockSkewSeconds,
          now: this.clock.now(),
          requiredClaims: ['exp', 'iat', 'sub'],
          // Berth's own tokens carry a MAC: an HMAC (~2 µs) this replica checks instead of the P-256 signature (~45 µs).
          macKeyFor: (header) => this.keys.macKey(header.kid),
        },
      );
      return { payload: claims as JWTPayload, kid: header.kid };
    } catch (err) {
      if (err instanceof InvalidTokenError) throw err;
      if (err instanceof JwtError) throw new InvalidTokenError(err.code);
      throw err;
    }
  }
}

function identityClaims(identity: Identity): JWTPayload {
  const claims: JWTPayload = { name: identity.name, kind: identity.kind };
  if (identity.credentialId) claims['cid'] = identity.credentialId;
  if (identity.credentialKind) claims['ckd'] = identity.credentialKind;
  if (identity.provenance) claims['fed'] = identity.provenance;
  if (identity.sessionExpiresAt !== undefined) claims['sxp'] = Math.floor(identity.sessionExpiresAt / 1000);
  if (identity.scopeCeiling !== undefined) claims['lim'] = identity.scopeCeiling.map(formatScope).join(' ');
  return claims;
}

/**
 * The `lim` claim: space-separated scopes (an empty string is a ceiling that allows nothing).
 * Rule: a ceiling that cannot be read narrows to nothing, never to "no ceiling": a `lim` that is
 * not a string allows nothing, and scopes in it that do not parse are dropped, not widened.
 */
function ceilingOf(payload: JWTPayload): Access[] | undefined {
  if (payload['lim'] === undefined) return undefined;
  return typeof payload['lim'] === 'string' ? parseScopes([payload['lim']]) : [];
}

function credentialKindOf(payload: JWTPayload): CredentialKind | undefined {
  return payload['ckd'] === 'secret' || payload['ckd'] === 'federated' ? payload['ckd'] : undefined;
}

function sessionEndOf(payload: JWTPayload): number | undefined {
  return typeof payload['sxp'] === 'number' ? payload['sxp'] * 1000 : undefined;
}

function provenanceOf(payload: JWTPayload): Record<string, unknown> | undefined {
  const fed = payload['fed'];
  return typeof fed === 'object' && fed !== null && !Array.isArray(fed) ? (fed as Record<string, unknown>) : undefined;
}
