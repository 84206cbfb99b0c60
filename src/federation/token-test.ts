/**
 * The "test a token" tool's decision: for a pasted OIDC token (or only its claims), which
 * federated credential accepts it, or exactly which check fails and why. The verdicts are the
 * verifier's own (`FederationVerifier.verify` for a token, `chooseCredential` and `mismatch` for
 * claims), so what the tool says and what the token endpoint does cannot disagree; the per-check
 * breakdown of each candidate only explains them. Nothing is issued or audited.
 */
import type { JWTPayload } from 'jose';
import { decodeClaims } from '../shared/jwt.js';
import type { TokenTestInput, TokenTestView } from '../api/federation-test.js';
import type { ClaimCondition } from '../metadata/auth-store.js';
import { matchesWildcard } from '../shared/glob.js';
import {
  audienceMatch,
  chooseCredential,
  conditionHolds,
  FederationError,
  mismatch,
  type AudiencePolicy,
  type Candidate,
  type FederationVerifier,
} from './verifier.js';

export class TokenTester {
  constructor(private readonly verifier: FederationVerifier) {}

  async test(input: TokenTestInput): Promise<TokenTestView> {
    let claims: JWTPayload;
    if (input.token !== undefined) {
      try {
        claims = decodeClaims(input.token.trim()) as JWTPayload;
      } catch {
        return refused('token', null, {}, 'malformed', 'This is not a JWT: paste the whole token (three base64url parts separated by dots).', [], []);
      }
    } else {
      claims = (input.claims ?? {}) as JWTPayload;
    }
    const issuer = typeof claims.iss === 'string' ? claims.iss : null;
    const skipped = input.token === undefined ? ['signature', 'expiry', 'token age'] : [];
    if (issuer === null) return refused(input.token ? 'token' : 'claims', null, claims, 'malformed', 'The token has no issuer (iss claim).', [], skipped);
    const candidates = await this.verifier.candidates(issuer, input.clientId);
    const policy = await this.verifier.audiencePolicy();
    const explained = candidates.map((c) => explain(c, claims, policy));
    const mode = input.token !== undefined ? 'token' : 'claims';
    try {
      const match =
        input.token !== undefined ? await this.verifier.verify(input.token.trim(), input.clientId) : chooseClaims(candidates, claims, input.clientId, policy);
      return {
        mode,
        issuer,
        claims,
        decision: {
          accepted: true,
          principal: { id: match.principal.id, name: match.principal.name },
          credential: match.credential.name,
          check: null,
          message: `Accepted: this token signs in as ${match.principal.name} through its federated credential ${match.credential.name}.`,
        },
        candidates: explained,
        skipped,
      };
    } catch (err) {
      if (!(err instanceof FederationError)) throw err;
      return refused(mode, issuer, claims, err.check, sentence(err), explained, skipped);
    }
  }
}

function chooseClaims(candidates: readonly Candidate[], claims: JWTPayload, clientId: string | undefined, policy: AudiencePolicy) {
  if (candidates.length === 0) {
    throw new FederationError('issuer', `issuer ${String(claims.iss)} is not trusted${clientId !== undefined ? ' for this client' : ''}`);
  }
  return chooseCredential(candidates, claims, policy);
}

/** Each check of one credential against the claims; `accepted` is the verifier's own verdict. */
function explain({ principal, credential }: Candidate, claims: JWTPayload, policy: AudiencePolicy): TokenTestView['candidates'][number] {
  const audiences = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
  const checks: TokenTestView['candidates'][number]['checks'] = [
    {
      check: 'audience',
      ok: audienceMatch(credential, audiences, policy) !== undefined,
      detail: `aud ${JSON.stringify(audiences)}; accepted: ${JSON.stringify(credential.audiences)}${credential.audiences.includes('berth') ? ` (and this registry's ${JSON.stringify(policy.instance)})` : ''}`,
    },
    {
      check: 'subject',
      ok: typeof claims.sub === 'string' && matchesWildcard(credential.subject, claims.sub),
      detail: `sub ${JSON.stringify(claims.sub ?? null)}; must match ${JSON.stringify(credential.subject)}`,
    },
    ...credential.conditions.map((condition) => ({
      check: 'condition' as const,
      ok: conditionHolds(condition, claims),
      detail: `${condition.claim} is ${JSON.stringify(claims[condition.claim] ?? null)}; ${describeCondition(condition)}`,
    })),
  ];
  return {
    principal: { id: principal.id, name: principal.name },
    credential: credential.name,
    accepted: !(mismatch(credential, claims, policy) instanceof FederationError),
    checks,
  };
}

function describeCondition(c: ClaimCondition): string {
  if (c.equals !== undefined) return `must equal ${JSON.stringify(c.equals)}`;
  if (c.glob !== undefined) return `must match ${JSON.stringify(c.glob)}`;
  return `must be one of ${JSON.stringify(c.oneOf ?? [])}`;
}

/** The verifier's reason as a sentence that says what to change. */
function sentence(err: FederationError): string {
  const hint: Record<string, string> = {
    issuer: 'Add a federated credential for this issuer to the principal the workload should act as.',
    signature: "Check that the token comes from the issuer it names, and that Berth can reach the issuer's keys.",
    expired: 'Mint a fresh token: this one is outside its validity period.',
    age: 'Mint a fresh token: it was issued longer ago than federation.maxTokenAgeMs allows.',
    audience:
      "Ask the workload for a token with one of the credential's audiences (by default this registry's own, which its 401 challenges advertise), or add its audience to the credential.",
    subject: 'The subject names another repository, branch or service account: fix the credential or run from the trusted place.',
    condition: "A claim condition does not hold: see the candidates' checks below.",
    ambiguous: 'Pass client_id (the principal) so only its credentials are considered.',
    unavailable: "Berth could not fetch the issuer's keys: check that the issuer is reachable from the registry and allowed by its egress policy.",
    malformed: 'Paste the whole token, as the workload received it.',
  };
  return `Refused (${err.check}): ${err.message}. ${hint[err.check] ?? ''}`.trim();
}

function refused(
  mode: 'token' | 'claims',
  issuer: string | null,
  claims: JWTPayload,
  check: TokenTestView['decision']['check'],
  message: string,
  candidates: TokenTestView['candidates'],
  skipped: string[],
): TokenTestView {
  return { mode, issuer, claims, decision: { accepted: false, principal: null, credential: null, check, message }, candidates, skipped };
}
