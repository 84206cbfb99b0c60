/**
 * The push attestation: an in-toto Statement v1 whose subject is the pushed manifest's digest and
 * whose predicate records what Berth verified about the pusher. It says who pushed, not how the
 * image was built (that is build provenance, which only the builder can state).
 *
 * Statement layer: https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md
 * The predicate's JSON schema is in docs/attestations.md; `pushPredicateSchema` below is the same
 * shape as a parser.
 */
import { z } from 'zod';
import type { Pusher } from '../metadata/store.js';

export const statementType = 'https://in-toto.io/Statement/v1';
/** Older statements (cosign still writes v0.1 for some predicates); accepted when verifying. */
const statementTypeV01 = 'https://in-toto.io/Statement/v0.1';
/** The DSSE payload type of an in-toto statement. */
export const inTotoPayloadType = 'application/vnd.in-toto+json';
/** Berth's predicate type: a push attestation, version 1. */
export const pushPredicateType = 'https://berth.dev/attestations/push/v1';

/** A claim value as recorded: the OIDC token's scalar claims, or lists of strings (`aud`). */
const claimValue = z.union([z.string(), z.number(), z.boolean(), z.array(z.string())]);

export const pushPredicateSchema = z
  .object({
    registry: z.string().describe('The registry that accepted the push (host, or the configured name).'),
    repository: z.string().describe('The repository pushed to.'),
    tag: z.string().nullable().describe('The tag pushed; null for a push by digest.'),
    mediaType: z.string().describe("The pushed manifest's media type."),
    pushedAt: z.string().describe('When the push was accepted (RFC 3339, UTC).'),
    principal: z
      .object({
        id: z.string(),
        name: z.string(),
        kind: z.string().nullable(),
      })
      .describe('The Berth principal the push was authorised as.'),
    federation: z
      .object({
        issuer: z.string().describe('The OIDC issuer whose signature Berth verified (`iss`).'),
        subject: z.string().describe('The token subject (`sub`).'),
        audience: z.array(z.string()).describe('The token audience(s) (`aud`).'),
        credentialId: z.string().nullable().describe('The federated credential that accepted the token.'),
        claims: z.record(claimValue).describe("The token's identifying claims Berth recorded (repository, ref, sha, job_workflow_ref, run_id, …)."),
      })
      .nullable()
      .describe('The federated (workload identity) login behind the push; null for passwords and tokens.'),
  })
  .strict();

export type PushPredicate = z.infer<typeof pushPredicateSchema>;

export interface StatementSubject {
  name: string;
  digest: Record<string, string>;
}

export interface Statement {
  _type: string;
  subject: StatementSubject[];
  predicateType: string;
  predicate: unknown;
}

const statementSchema = z.object({
  _type: z.enum([statementType, statementTypeV01]),
  subject: z.array(z.object({ name: z.string().default(''), digest: z.record(z.string()) })).min(1),
  predicateType: z.string().min(1),
  predicate: z.unknown(),
});

export interface PushFacts {
  registry: string;
  repository: string;
  tag: string | undefined;
  mediaType: string;
  pusher: Pusher;
  now: number;
}

export function pushPredicate(facts: PushFacts): PushPredicate {
  const provenance = facts.pusher.provenance;
  return {
    registry: facts.registry,
    repository: facts.repository,
    tag: facts.tag ?? null,
    mediaType: facts.mediaType,
    pushedAt: new Date(facts.now).toISOString(),
    principal: { id: facts.pusher.principalId, name: facts.pusher.principalName, kind: facts.pusher.kind ?? null },
    // Only a federated login's provenance (it names an issuer); imports and syncs record theirs too.
    federation: typeof provenance?.['iss'] === 'string' ? federationOf(provenance, facts.pusher.credentialId) : null,
  };
}

/** The statement of a push attestation: `predicate` about the manifest `digest`. */
export function pushStatement(predicate: PushPredicate, digest: string): Statement {
  const [algorithm, hex] = splitDigest(digest);
  return {
    _type: statementType,
    subject: [{ name: `${predicate.registry}/${predicate.repository}`, digest: { [algorithm]: hex } }],
    predicateType: pushPredicateType,
    predicate,
  };
}

function federationOf(provenance: Record<string, unknown>, credentialId: string | undefined): NonNullable<PushPredicate['federation']> {
  const claims: Record<string, string | number | boolean | string[]> = {};
  for (const [name, value] of Object.entries(provenance)) {
    const parsed = claimValue.safeParse(value);
    if (parsed.success) claims[name] = parsed.data;
  }
  const aud = provenance['aud'];
  return {
    issuer: typeof provenance['iss'] === 'string' ? provenance['iss'] : '',
    subject: typeof provenance['sub'] === 'string' ? provenance['sub'] : '',
    audience: typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [],
    credentialId: credentialId ?? null,
    claims,
  };
}

/**
 * The identity a push attestation states, as names → values for the rules' conditions: every
 * recorded claim, `iss`/`sub` (also as `issuer`/`subject`), and `principal`.
 */
export function identityOf(predicate: PushPredicate): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(predicate.federation?.claims ?? {})) {
    out[name] = Array.isArray(value) ? value : String(value);
  }
  if (predicate.federation) {
    out['iss'] = predicate.federation.issuer;
    out['sub'] = predicate.federation.subject;
    out['aud'] = predicate.federation.audience;
  }
  out['principal'] = predicate.principal.name;
  return out;
}

/** Parses a DSSE payload as an in-toto statement; throws an Error saying what is wrong. */
export function parseStatement(payload: Buffer): Statement {
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new Error('the signed payload is not JSON');
  }
  const parsed = statementSchema.safeParse(json);
  if (!parsed.success) throw new Error(`the signed payload is not an in-toto statement (${parsed.error.issues[0]?.message ?? 'invalid'})`);
  return { ...parsed.data, predicate: parsed.data.predicate };
}

/** True if one of the statement's subjects names `digest` (`sha256:<hex>`). */
export function statementCovers(statement: Statement, digest: string): boolean {
  const [algorithm, hex] = splitDigest(digest);
  return statement.subject.some((s) => s.digest[algorithm]?.toLowerCase() === hex);
}

/** The push predicate of a statement, or undefined if it is another predicate type or malformed. */
export function pushPredicateOf(statement: Statement): PushPredicate | undefined {
  if (statement.predicateType !== pushPredicateType) return undefined;
  const parsed = pushPredicateSchema.safeParse(statement.predicate);
  return parsed.success ? parsed.data : undefined;
}

function splitDigest(digest: string): [string, string] {
  const colon = digest.indexOf(':');
  return [digest.slice(0, colon), digest.slice(colon + 1)];
}
