/**
 * Verifies an OIDC token against the federated credentials that trust its issuer and finds the
 * principal it acts as. Order of checks: issuer trusted (some credential names it) -> signature
 * with that issuer's keys only, allowed asymmetric algorithm, exp/nbf/iat within the clock skew,
 * token age -> per credential: audience, subject, conditions.
 *
 * Errors carry two texts. `publicMessage` names the failing check in general terms, for the
 * unauthenticated caller: enough for a CI log to say what to fix, never the configured subject,
 * audiences or conditions, nor which principals exist (an unknown client id and a client without a
 * credential for the issuer get the same answer). `message` is the full reason, for the audit log.
 *
 * Audiences (audience.ts): a credential accepts a token whose `aud` it lists. A credential listing
 * the legacy `berth` also accepts this registry's own audience, and accepts `berth` itself only
 * while `federation.acceptLegacyAudience` is on (the match then says so, to be logged).
 */
import type * as Jose from 'jose';
import type { JWTPayload } from 'jose';
import { KeyObject, type webcrypto } from 'node:crypto';
import { JwtError, readUnverified, verifyJwt, type UnverifiedJwt } from '../shared/jwt.js';
import type { Config } from '../config/schema.js';
import type { AuthMetadata, ClaimCondition, FederatedCredentialRecord, GrantRecord, PrincipalRecord } from '../metadata/auth-store.js';
import type { Clock } from '../shared/clock.js';
import { matchesWildcard } from '../shared/glob.js';
import { legacyAudience } from '../api/oidc.js';
import { IssuerError, type IssuerKeys } from './issuers.js';

export const federatedAlgorithms = ['RS256', 'PS256', 'ES256', 'EdDSA'];

export type FailedCheck = 'malformed' | 'issuer' | 'unavailable' | 'signature' | 'expired' | 'age' | 'audience' | 'subject' | 'condition' | 'ambiguous';

/** What an unauthenticated caller is told per check: general terms only. */
const publicMessages: Record<FailedCheck, string> = {
  malformed: 'malformed: the token is not a JWT with the claims an OIDC token has (iss, sub, aud, exp, iat)',
  issuer: "issuer: the token's issuer is not trusted by this registry, or not for this client",
  unavailable: "issuer: the issuer's signing keys could not be fetched; try again later",
  signature: "signature: the token's signature does not verify with its issuer's published keys",
  expired: 'expired: the token has expired or is not yet valid',
  age: 'expired: the token was issued too long ago',
  audience: "audience: the token's audience is not accepted",
  subject: "subject: no federated credential trusts the token's subject",
  condition: 'condition: the token does not meet the claim conditions of the federated credential its subject matches',
  ambiguous: 'ambiguous: the token matches federated credentials of several identities: pass client_id',
};

export class FederationError extends Error {
  override name = 'FederationError';
  /** The failing check in general terms, for the caller (see the module comment). */
  readonly publicMessage: string;
  constructor(
    readonly check: FailedCheck,
    /** The full reason, for the audit log. */
    message: string,
    publicMessage?: string,
  ) {
    super(message);
    this.publicMessage = publicMessage ?? publicMessages[check];
  }
}

export interface FederatedMatch {
  principal: PrincipalRecord;
  /** The principal's stored grants when they were read with it (a named client); else the caller reads them. */
  grants?: GrantRecord[] | undefined;
  credential: FederatedCredentialRecord;
  /** Accepted only because the credential lists the legacy audience `berth` and that is still allowed. */
  legacyAudience: boolean;
  /** When the OIDC token expires (ms); registry tokens bought with it are capped by it. */
  expiresAt: number;
  /** The token's identifying claims, recorded as push provenance. */
  provenance: Record<string, unknown>;
}

/**
 * A compact JWS whose `iss` is not `ownIssuer`, read (not verified): a candidate OIDC token, to be
 * handed to `FederationVerifier.verify` as it is, so its claims are decoded once. Undefined for
 * anything else.
 */
export function foreignJwt(token: string, ownIssuer: string): UnverifiedJwt | undefined {
  // An ordinary password is no JWT: answered here without the cost of a thrown and caught error.
  if (token.split('.').length !== 3) return undefined;
  try {
    const read = readUnverified(token);
    const iss = read.claims['iss'];
    return typeof iss === 'string' && iss !== ownIssuer ? read : undefined;
  } catch {
    return undefined;
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

export interface AudiencePolicy {
  /** This registry's audience. */
  instance: string;
  acceptLegacy: boolean;
}

/** How a credential accepts the token's audiences: `exact`, `legacy` (the legacy `berth`), or not at all. */
export function audienceMatch(credential: FederatedCredentialRecord, audiences: readonly string[], policy: AudiencePolicy): 'exact' | 'legacy' | undefined {
  const listsLegacy = credential.audiences.includes(legacyAudience);
  if (audiences.some((aud) => aud !== legacyAudience && credential.audiences.includes(aud))) return 'exact';
  if (listsLegacy && audiences.includes(policy.instance)) return 'exact';
  if (listsLegacy && policy.acceptLegacy && audiences.includes(legacyAudience)) return 'legacy';
  return undefined;
}

/** Why a credential does not accept verified claims, or how it does. */
export function mismatch(credential: FederatedCredentialRecord, claims: JWTPayload, policy: AudiencePolicy): FederationError | { legacy: boolean } {
  const audiences = typeof claims.aud === 'string' ? [claims.aud] : (claims.aud ?? []);
  const audience = audienceMatch(credential, audiences, policy);
  if (audience === undefined) {
    const legacyOff = audiences.includes(legacyAudience) && !policy.acceptLegacy && credential.audiences.includes(legacyAudience);
    return new FederationError(
      'audience',
      `audience ${JSON.stringify(audiences)} is not accepted by credential ${credential.name} (it accepts ${JSON.stringify(credential.audiences)}${legacyOff ? '; the legacy audience berth is turned off: federation.acceptLegacyAudience' : ''})`,
      `${publicMessages.audience}; ask for this registry's audience ${JSON.stringify(policy.instance)}`,
    );
  }
  if (typeof claims.sub !== 'string' || !matchesWildcard(credential.subject, claims.sub)) {
    return new FederationError(
      'subject',
      `subject ${JSON.stringify(claims.sub)} does not match ${JSON.stringify(credential.subject)} of credential ${credential.name}`,
    );
  }
  const failed = credential.conditions.find((condition) => !conditionHolds(condition, claims));
  if (failed) {
    const value = claimText(claims[failed.claim]);
    return new FederationError(
      'condition',
      `claim ${failed.claim} (${value === undefined ? 'absent' : JSON.stringify(value.slice(0, 200))}) does not meet its condition in credential ${credential.name}`,
    );
  }
  return { legacy: audience === 'legacy' };
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

export type Candidate = { principal: PrincipalRecord; credential: FederatedCredentialRecord; grants?: GrantRecord[] | undefined };

/**
 * The one credential verified `claims` act through, among the candidates for their issuer: a
 * token several principals' credentials accept is ambiguous; none accepting it fails with the
 * first candidate's reason. Shared by `verify` and the token test (`token-test.ts`).
 */
export function chooseCredential(candidates: readonly Candidate[], claims: JWTPayload, policy: AudiencePolicy): FederatedMatch {
  const matches: FederatedMatch[] = [];
  let firstFailure: FederationError | undefined;
  for (const { principal, credential, grants } of candidates) {
    const result = mismatch(credential, claims, policy);
    // Of several failures, report the one that got furthest (a credential that matched the audience and subject but
    // not a condition says more than another principal's credential for another audience).
    if (result instanceof FederationError) firstFailure = furthest(firstFailure, result);
    else matches.push({ principal, grants, credential, legacyAudience: result.legacy, expiresAt: (claims.exp ?? 0) * 1000, provenance: provenanceOf(claims) });
  }
  const principals = new Set(matches.map((m) => m.principal.id));
  if (principals.size > 1) {
    throw new FederationError('ambiguous', 'the token matches federated credentials of several identities: pass client_id');
  }
  const match = matches[0];
  if (!match) throw firstFailure ?? new FederationError('subject', 'no federated credential accepts this token');
  return match;
}

export class FederationVerifier {
  constructor(
    private readonly store: AuthMetadata,
    private readonly keys: IssuerKeys,
    private readonly config: Config['federation'],
    private readonly clock: Clock,
    /** This registry's audience (audience.ts). */
    private readonly audience: () => Promise<string>,
  ) {}

  /** Verifies `token` (or a token `foreignJwt` read); with `clientId`, only that principal's credentials are considered. */
  async verify(token: string | UnverifiedJwt, clientId?: string): Promise<FederatedMatch> {
    let read: UnverifiedJwt;
    try {
      read = typeof token === 'string' ? readUnverified(token) : token;
    } catch {
      throw new FederationError('malformed', 'the token is not a JWT');
    }
    const issuer = read.claims['iss'];
    if (typeof issuer !== 'string') throw new FederationError('malformed', 'the token has no issuer (iss)');
    const candidates = await this.candidates(issuer, clientId);
    if (candidates.length === 0) {
      throw new FederationError(
        'issuer',
        `issuer ${issuer.slice(0, 200)} is not trusted${clientId !== undefined ? ` for client ${clientId.slice(0, 128)}` : ''}`,
      );
    }
    const claims = await this.verifySignature(read, issuer);
    return chooseCredential(candidates, claims, await this.audiencePolicy());
  }

  /** How credentials accept audiences here: this registry's own, and the legacy `berth` while it is accepted. */
  async audiencePolicy(): Promise<AudiencePolicy> {
    return { instance: await this.audience(), acceptLegacy: this.config.acceptLegacyAudience };
  }

  /** The credentials a token from `issuer` is checked against (with `clientId`, only that principal's). */
  async candidates(issuer: string, clientId: string | undefined): Promise<Candidate[]> {
    if (clientId !== undefined) {
      const named = await this.store.federatedCredentials.ofPrincipalNamed(clientId, issuer);
      return named ? named.credentials.map((credential) => ({ principal: named.principal, grants: named.grants, credential })) : [];
    }
    const out: Candidate[] = [];
    for (const credential of await this.store.federatedCredentials.listByIssuer(issuer)) {
      const principal = await this.store.principals.get(credential.principalId);
      if (principal) out.push({ principal, credential });
    }
    return out;
  }

  private async verifySignature(read: UnverifiedJwt, issuer: string): Promise<JWTPayload> {
    let keys;
    try {
      keys = await this.keys.keysFor(issuer);
    } catch (err) {
      if (err instanceof IssuerError) throw new FederationError('unavailable', err.message);
      throw err;
    }
    const maxAgeMs = this.keys.settingsFor(issuer)?.maxTokenAgeMs ?? this.config.maxTokenAgeMs;
    // jose (remote key sets, issuers.ts) is loaded with the first federated login, not at start. It
    // finds the key; the signature and claims are checked by shared/jwt.ts, with jose's rules (see there).
    const [protectedHeader = '', payload = '', signature = ''] = read.token.split('.');
    try {
      const { claims } = await verifyJwt(read, async (header) => keyObjectOf(await keys(header, { protected: protectedHeader, payload, signature })), {
        issuer,
        algorithms: federatedAlgorithms,
        clockToleranceSeconds: this.config.clockSkewSeconds,
        maxTokenAgeSeconds: Math.floor(maxAgeMs / 1000),
        now: this.clock.now(),
        requiredClaims: ['exp', 'iat', 'sub', 'aud'],
      });
      return claims as JWTPayload;
    } catch (err) {
      // jose's error classes are needed only here (a dynamic import costs microseconds even once loaded).
      throw err instanceof JwtError ? describeJwtError(err) : describeJoseError(err, (await import('jose')).errors);
    }
  }
}

/** node:crypto's view of the keys jose hands over (CryptoKeys for key sets), converted once per key. */
const keyObjects = new WeakMap<object, KeyObject>();

function keyObjectOf(key: unknown): KeyObject | undefined {
  if (key instanceof KeyObject) return key;
  // A raw secret or a JWK is never a federated issuer's verification key.
  if (typeof key !== 'object' || key === null || key instanceof Uint8Array || !('usages' in key && 'algorithm' in key)) return undefined;
  let converted = keyObjects.get(key);
  if (!converted) keyObjects.set(key, (converted = KeyObject.from(key as webcrypto.CryptoKey)));
  return converted;
}

/** The federation refusal for a refusal of shared/jwt.ts (codes and claims as jose reports them). */
function describeJwtError(err: JwtError): FederationError {
  switch (err.code) {
    case 'ERR_JWT_EXPIRED':
      return err.claim === 'iat'
        ? new FederationError('age', 'the token is too old (issued longer ago than the maximum token age)')
        : new FederationError('expired', 'the token has expired');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (err.claim === 'iat') return new FederationError('age', `the token is too old or not yet valid (${err.message})`);
      if (err.claim === 'nbf') return new FederationError('expired', 'the token is not yet valid');
      return new FederationError('malformed', `claim ${err.claim ?? '?'} is invalid (${err.message})`);
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return new FederationError('signature', "the token's algorithm is not allowed (RS256, PS256, ES256 or EdDSA)");
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return new FederationError('signature', "no key of the issuer matches the token's kid");
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return new FederationError('signature', 'the signature does not verify');
    default:
      return new FederationError('malformed', `the token is invalid (${err.code})`);
  }
}

const stage: Partial<Record<FailedCheck, number>> = { audience: 1, subject: 2, condition: 3 };

function furthest(a: FederationError | undefined, b: FederationError): FederationError {
  return a === undefined || (stage[b.check] ?? 0) > (stage[a.check] ?? 0) ? b : a;
}

function describeJoseError(err: unknown, joseErrors: typeof Jose.errors): Error {
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
  if (err instanceof joseErrors.JWKSTimeout) return new FederationError('unavailable', "the issuer's keys could not be fetched in time");
  if (err instanceof joseErrors.JWKSInvalid) return new FederationError('unavailable', "the issuer's key set is not a valid JWKS");
  if (err instanceof joseErrors.JOSEError) return new FederationError('malformed', `the token is invalid (${err.code})`);
  // Anything else came from fetching the issuer's keys (a refused connection, the egress policy).
  return new FederationError('unavailable', `the issuer's keys could not be fetched: ${fetchFailure(err)}`);
}

function fetchFailure(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  const detail = cause instanceof Error ? cause.message : undefined;
  return (detail ?? (err instanceof Error ? err.message : String(err))).slice(0, 500);
}
