/**
 * Single sign-on's claim-to-grant rules: a pure function from a person's ID token claims to the
 * grants they act with. A rule holds when every one of its conditions does; the grants are the
 * union over the rules that hold (in rule order, without duplicates). Conditions read like a
 * federated credential's (`equals`, `glob`, `oneOf`), and a list claim such as `groups` meets a
 * condition when any of its entries does. Globs are matched in linear time (`shared/glob.ts`).
 */
import { isPermission, isValidPattern, type Grant } from '../auth/permissions.js';
import { matchesWildcard } from '../shared/glob.js';

export interface ClaimRuleCondition {
  claim: string;
  equals?: string | undefined;
  glob?: string | undefined;
  oneOf?: readonly string[] | undefined;
}

export interface ClaimRule {
  claims: readonly ClaimRuleCondition[];
  grants: ReadonlyArray<{ pattern: string; permission: string }>;
}

/** Why a rule set cannot be used (an unknown permission, a bad pattern), or undefined. */
export function rulesProblem(rules: readonly ClaimRule[]): string | undefined {
  for (const [i, rule] of rules.entries()) {
    for (const grant of rule.grants) {
      if (!isValidPattern(grant.pattern)) return `rules[${i}]: invalid repository pattern ${JSON.stringify(grant.pattern)}`;
      if (!isPermission(grant.permission)) return `rules[${i}]: unknown role or action ${JSON.stringify(grant.permission)}`;
    }
  }
  return undefined;
}

/** The grants the claims earn, and which rules (by index) earned them. */
export function grantsForClaims(rules: readonly ClaimRule[], claims: Record<string, unknown>): { grants: Grant[]; matched: number[] } {
  const grants: Grant[] = [];
  const seen = new Set<string>();
  const matched: number[] = [];
  for (const [i, rule] of rules.entries()) {
    if (!rule.claims.every((condition) => conditionHolds(condition, claims[condition.claim]))) continue;
    matched.push(i);
    for (const grant of rule.grants) {
      const key = `${grant.pattern}\u0000${grant.permission}`;
      if (seen.has(key) || !isPermission(grant.permission)) continue;
      seen.add(key);
      grants.push({ pattern: grant.pattern, permission: grant.permission });
    }
  }
  return { grants, matched };
}

function conditionHolds(condition: ClaimRuleCondition, value: unknown): boolean {
  const values = Array.isArray(value) ? value : [value];
  return values.some((entry) => {
    const text = typeof entry === 'string' ? entry : typeof entry === 'number' || typeof entry === 'boolean' ? String(entry) : undefined;
    if (text === undefined) return false;
    if (condition.equals !== undefined) return text === condition.equals;
    if (condition.glob !== undefined) return matchesWildcard(condition.glob, text);
    if (condition.oneOf !== undefined) return condition.oneOf.includes(text);
    return false;
  });
}
