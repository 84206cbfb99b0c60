/**
 * Verifies an OIDC token against the federated credentials that trust its issuer and finds the
 * principal it acts as. Order of checks: issuer trusted (some credential names it) -> signature
 * with that issuer's keys only, allowed asymmetric algorithm, exp/nbf/iat within the clock skew,
 * token age -> per credential: audience, subject, conditions.
 *
 * Errors name the failing check so a CI log says what to fix, but never which principals exist:
 * an unknown client id and a client without a credential for the issuer get the same answer.
 */
import { decodeJwt, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Config } from '../config/schema.js';
import type { AuthMetadata, ClaimCondition, FederatedCredentialRecord, PrincipalRecord } from '../metadata/auth-store.js';
import type { Clock } from '../shared/clock.js';
import { matchesWildcard } from '../shared/glob.js';
import { IssuerError, type IssuerKeys } from './issuers.js';

export const federatedAlgorithms = ['RS256', 'PS256', 'ES256', 'EdDSA'];

export type FailedCheck = 'malformed' | 'issuer' | 'signature' | 'expired' | 'age' | 'audience' | 'subject' | 'condition' | 'ambiguous';

export class FederationError extends Error {
  override name = 'FederationError';
  constructor(
    readonly check: FailedCheck,
    message: string,
  ) {
    super(message);
  }
}

export interface FederatedMatch {
  principal: PrincipalRecord;
  credential: FederatedCredentialRecord;
  /** When the OIDC token expires (ms); registry tokens bought with it are capped by it. */
  expiresAt: number;
  /** The token's identifying claims, recorded as push provenance. */
  provenance: Record<string, unknown>;
}

/** True for a compact JWS whose `iss` is not `ownIssuer`: a candidate OIDC token. */
export function isForeignJwt(token: string, ownIssuer: string): boolean {
  if (token.split('.').length !== 3) return false;
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === 'string' && iss !== ownIssuer;
  } catch {
    return false;
  }
}

function claimText(value: unknown): string | undefined {
  return typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
}

/**
 * Whether a claim meets its condition. Subject and claim globs have AWS `StringLike` semantics: `*` matches any run of characters
 * (including `/` and `:`), `?` one character; everything else is literal. `repo:acme/app:*`
 * matches every ref of acme/app. Matched in linear time (`shared/glob.ts`): globs are user-written.
 * Also the rule of immutability writers (`lifecycle/immutability.ts`), over a push's provenance claims.
 */
export function conditionHolds(condition: ClaimCondition, claims: JWTPayload): boolean {
  const value = claimText(claims[condition.claim]);
  if (value === undefined) return false;
  if (condition.equals !== undefined) return value === condition.equals;
  if (condition.glob !== undefined) return matchesWildcard(condition.glob, value);
  if (condition.oneOf !== undefined) return condition.oneOf.includes(value);
  return false;
}

/** Why a credential does not accept verified claims, or undefined if it does. */
function mismatch(credential: FederatedCredentialRecord, claims: JWTPayload): FederationError | undefined {
  const audiences = typeof claims.aud === 'string' ? [claims.aud] : (claims.aud ?? []);
  if (!audiences.some((aud) => credential.audiences.includes(aud))) {
    return new FederationError('audience', `audience ${JSON.stringify(audiences)} is not accepted (expected one of ${JSON.stringify(credential.audiences)})`);
  }
  if (typeof claims.sub !== 'string' || !matchesWildcard(credential.subject, claims.sub)) {
    return new FederationError('subject', `subject ${JSON.stringify(claims.sub)} does not match ${JSON.stringify(credential.subject)}`);
  }
  const failed = credential.conditions.find((condition) => !conditionHolds(condition, claims));
  if (failed) return new FederationError('condition', `claim ${failed.claim} does not meet its condition`);
  return undefined;
}

/** Claims worth keeping as provenance (public facts about the workload, never the token). */
const provenanceClaims = [
  'iss',
  'sub',
  'aud',
  'repository',
  'repository_owner',
  'ref',
  'sha',
  'workflow',
  'job_workflow_ref',
  'run_id',
  'run_attempt',
  'actor',
  'environment',
  'event_name',
  'project_path',
  'pipeline_id',
  'job_id',
  'kubernetes.io',
];

export function provenanceOf(claims: JWTPayload): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of provenanceClaims) if (claims[name] !== undefined) out[name] = claims[name];
  return out;
}

export class FederationVerifier {
  constructor(
    private readonly store: AuthMetadata,
    private readonly keys: IssuerKeys,
    private readonly config: Config['federation'],
    private readonly clock: Clock,
  ) {}

  /** Verifies `token`; with `clientId`, only that principal's credentials are considered. */
  async verify(token: string, clientId?: string): Promise<FederatedMatch> {
    let issuer: unknown;
    try {
      issuer = decodeJwt(token).iss;
    } catch {
      throw new FederationError('malformed', 'the token is not a JWT');
    }
    if (typeof issuer !== 'string') throw new FederationError('malformed', 'the token has no issuer (iss)');
    const candidates = await this.candidates(issuer, clientId);
    if (candidates.length === 0) {
      throw new FederationError('issuer', `issuer ${issuer} is not trusted${clientId !== undefined ? ' for this client' : ''}`);
    }
    const claims = await this.verifySignature(token, issuer);
    const matches: FederatedMatch[] = [];
    let firstFailure: FederationError | undefined;
    for (const { principal, credential } of candidates) {
      const failure = mismatch(credential, claims);
      if (failure) firstFailure ??= failure;
      else matches.push({ principal, credential, expiresAt: (claims.exp ?? 0) * 1000, provenance: provenanceOf(claims) });
    }
    const principals = new Set(matches.map((m) => m.principal.id));
    if (principals.size > 1) {
      throw new FederationError('ambiguous', 'the token matches federated credentials of several identities: pass client_id');
    }
    const match = matches[0];
    if (!match) throw firstFailure ?? new FederationError('subject', 'no federated credential accepts this token');
    return match;
  }

  private async candidates(
    issuer: string,
    clientId: string | undefined,
  ): Promise<Array<{ principal: PrincipalRecord; credential: FederatedCredentialRecord }>> {
    if (clientId !== undefined) {
      const principal = await this.store.principals.findByName(clientId);
      if (!principal) return [];
      const credentials = (await this.store.federatedCredentials.list(principal.id)).filter((c) => c.issuer === issuer);
      return credentials.map((credential) => ({ principal, credential }));
    }
    const out: Array<{ principal: PrincipalRecord; credential: FederatedCredentialRecord }> = [];
    for (const credential of await this.store.federatedCredentials.listByIssuer(issuer)) {
      const principal = await this.store.principals.get(credential.principalId);
      if (principal) out.push({ principal, credential });
    }
    return out;
  }

  private async verifySignature(token: string, issuer: string): Promise<JWTPayload> {
    let keys;
    try {
      keys = await this.keys.keysFor(issuer);
    } catch (err) {
      if (err instanceof IssuerError) throw new FederationError('issuer', err.message);
      throw err;
    }
    const maxAgeMs = this.keys.settingsFor(issuer)?.maxTokenAgeMs ?? this.config.maxTokenAgeMs;
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer,
        algorithms: federatedAlgorithms,
        clockTolerance: this.config.clockSkewSeconds,
        maxTokenAge: Math.floor(maxAgeMs / 1000),
        currentDate: new Date(this.clock.now()),
        requiredClaims: ['exp', 'iat', 'sub', 'aud'],
      });
      return payload;
    } catch (err) {
      throw describeJoseError(err);
    }
  }
}

function describeJoseError(err: unknown): Error {
  // jose reports an exceeded maximum age as JWTExpired on the `iat` claim.
  if (err instanceof joseErrors.JWTExpired) {
    return err.claim === 'iat'
      ? new FederationError('age', 'the token is too old (issued longer ago than the maximum token age)')
      : new FederationError('expired', 'the token has expired');
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'iat') return new FederationError('age', `the token is too old or not yet valid (${err.reason})`);
    if (err.claim === 'nbf') return new FederationError('expired', 'the token is not yet valid');
    return new FederationError('malformed', `claim ${err.claim} is invalid (${err.reason})`);
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed)
    return new FederationError('signature', "the token's algorithm is not allowed (RS256, PS256, ES256 or EdDSA)");
  if (err instanceof joseErrors.JWKSNoMatchingKey) return new FederationError('signature', "no key of the issuer matches the token's kid");
  if (err instanceof joseErrors.JWKSMultipleMatchingKeys) return new FederationError('signature', "the token's kid is ambiguous");
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return new FederationError('signature', 'the signature does not verify');
  if (err instanceof joseErrors.JWKSTimeout) return new FederationError('issuer', "the issuer's keys could not be fetched in time");
  if (err instanceof joseErrors.JOSEError) return new FederationError('malformed', `the token is invalid (${err.code})`);
  return err instanceof Error ? err : new Error(String(err));
}
