/**
 * Identity-bound rules, evaluated by pure functions: the enforcement at pull and push and the
 * preview (`POST /api/v1/attestations/preview`, `berth verify`) call the same ones with the same
 * evidence, so "what would happen" and "what happens" cannot disagree.
 *
 * Evidence is what verification found on an image: each attestation bundle that verified, with the
 * key that signed it and, for Berth's own push attestations, the identity it states. Gathering it
 * (reading referrers, checking signatures) is `service.ts`'s job; nothing here does I/O.
 */
import { matchesRepositoryPattern, matchesStarGlob, matchesWildcard } from '../shared/glob.js';

export interface AttestationRule {
  name: string;
  repositories: string;
  tags: string;
  /** claim → wildcard glob; all must hold. */
  identity: Readonly<Record<string, string>>;
  /** Hints of the rule's listed keys (`keys.ts` `keyHint`). */
  keyHints: readonly string[];
  enforce: { pull: boolean; push: boolean };
}

/** One verified attestation on an image. */
export interface Evidence {
  /** True when signed by one of Berth's own attestation keys. */
  berth: boolean;
  keyHint: string;
  /** For Berth push attestations: the identity the predicate states (`statement.ts` `identityOf`). */
  identity: Readonly<Record<string, string | readonly string[]>> | undefined;
  /** The attestation's manifest digest, to name it in reports. */
  digest: string;
}

export type Decision = { allowed: true; rule: string | undefined; by: string | undefined } | { allowed: false; rule: string; reason: string };

/** Aliases accepted in conditions for the standard claims. */
const aliases: Readonly<Record<string, string>> = { issuer: 'iss', subject: 'sub' };

export function rulesFor(rules: readonly AttestationRule[], repository: string): AttestationRule[] {
  return rules.filter((rule) => matchesRepositoryPattern(rule.repositories, repository));
}

/** The first condition `identity` fails, or undefined when all hold. */
export function failedCondition(
  conditions: Readonly<Record<string, string>>,
  identity: Readonly<Record<string, string | readonly string[]>>,
): { claim: string; glob: string } | undefined {
  for (const [name, glob] of Object.entries(conditions)) {
    const value = identity[aliases[name] ?? name];
    const values = value === undefined ? [] : typeof value === 'string' ? [value] : value;
    if (!values.some((v) => matchesWildcard(glob, v))) return { claim: name, glob };
  }
  return undefined;
}

/** True if `evidence` satisfies `rule`: a Berth push attestation whose identity matches, or a signature by a listed key. */
export function satisfies(rule: AttestationRule, evidence: Evidence): boolean {
  if (rule.keyHints.includes(evidence.keyHint)) return true;
  return evidence.berth && evidence.identity !== undefined && failedCondition(rule.identity, evidence.identity) === undefined;
}

function describeConditions(rule: AttestationRule): string {
  const conditions = Object.entries(rule.identity).map(([claim, glob]) => `${claim}=${glob}`);
  const parts = [conditions.length > 0 ? `a Berth push attestation with ${conditions.join(', ')}` : 'a valid Berth push attestation'];
  if (rule.keyHints.length > 0) parts.push('a signature by one of its listed keys');
  return parts.join(' or ');
}

/**
 * Pull: every rule that governs `repository` and is enforced at pull must be satisfied by some
 * evidence. `runnable` is false for artifacts (signatures, SBOMs, attestations: manifests whose
 * config is not an image config), which no runtime can start, so rules do not apply to them.
 */
export function evaluatePull(rules: readonly AttestationRule[], repository: string, runnable: boolean, evidence: readonly Evidence[]): Decision {
  if (!runnable) return { allowed: true, rule: undefined, by: undefined };
  let by: string | undefined;
  let rule: string | undefined;
  for (const r of rulesFor(rules, repository).filter((x) => x.enforce.pull)) {
    const match = evidence.find((e) => satisfies(r, e));
    if (!match) {
      const seen = evidence.length === 0 ? 'the image carries no valid attestation' : `none of its ${evidence.length} valid attestation(s) matches`;
      return { allowed: false, rule: r.name, reason: `rule ${r.name} requires ${describeConditions(r)}; ${seen}` };
    }
    rule ??= r.name;
    by ??= match.digest;
  }
  return { allowed: true, rule, by };
}

/** Who is pushing, as the push rules see it. */
export interface Pusher {
  /** The principal's name, for the refusal's text; undefined when unauthenticated. */
  principal: string | undefined;
  /** The identity the push's own attestation will state; undefined when the push will carry none (not a federated login, or signing off). */
  identity: Readonly<Record<string, string | readonly string[]>> | undefined;
}

/**
 * Push of `tag`: every rule enforced at push that governs the repository and the tag must be
 * satisfied, either by the attestation this push will carry (the pusher's own identity) or by one
 * the image already carries (a copy made by sync or import brings the original pusher's
 * attestation along). Pushes by digest are not refused: they make nothing pullable by name.
 */
export function evaluatePush(
  rules: readonly AttestationRule[],
  repository: string,
  tag: string | undefined,
  pusher: Pusher,
  evidence: readonly Evidence[],
): Decision {
  if (tag === undefined) return { allowed: true, rule: undefined, by: undefined };
  for (const r of rulesFor(rules, repository).filter((x) => x.enforce.push && matchesStarGlob(x.tags, tag))) {
    if (pusher.identity !== undefined && failedCondition(r.identity, pusher.identity) === undefined) continue;
    if (evidence.some((e) => satisfies(r, e))) continue;
    const who = pusher.principal === undefined ? 'an unauthenticated push' : `this push by ${pusher.principal}`;
    const failed = pusher.identity === undefined ? undefined : failedCondition(r.identity, pusher.identity);
    const why = failed ? `${failed.claim} does not match ${failed.glob}` : 'it is not a federated (workload identity) login, so it carries no push attestation';
    return { allowed: false, rule: r.name, reason: `rule ${r.name} requires tag ${tag} to come from ${describeConditions(r)}; ${who} does not: ${why}` };
  }
  return { allowed: true, rule: undefined, by: undefined };
}
