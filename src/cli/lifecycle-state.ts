/**
 * The `lifecycle:` section of a `berth apply` file, without I/O: parse it into the desired policies
 * (validated by the same schemas the server uses, `api/lifecycle.ts`, so a file entry means what an
 * API body means), and plan the changes that bring the registry's policies to it.
 *
 *     lifecycle:
 *       retention:    [ {name, repositories, tags, conditions, match, …} ]
 *       immutability: [ {name, repositories, tags, immutable, writers} ]
 *       quotas:       [ {name, repositories, limit, warnAt, perPrincipal} ]
 *
 * A kind the file lists is managed: each policy it names is created or replaced when it differs
 * (compared in canonical form: `30d` and `2592000000` are the same duration), and policies of that
 * kind it does not name are deleted only with the file's `prune: true`. A kind the file does not
 * list is left alone. What needs the server (a tag filter's regular expression) is checked there.
 */
import type { z } from 'zod';
import { specificIssue } from '../api/validation.js';
import { policyInputs, policyKinds, type PoliciesView, type PolicyKind } from '../api/lifecycle.js';

export type DesiredLifecycle = Partial<Record<PolicyKind, Array<{ name: string; rule: unknown }>>>;

export type LifecycleChange =
  { op: 'policy-put'; kind: PolicyKind; name: string; rule: unknown; exists: boolean } | { op: 'policy-delete'; kind: PolicyKind; name: string };

export class LifecycleStateError extends Error {
  override name = 'LifecycleStateError';
}

/** Validates the section (`where` names it in errors, e.g. `berth.yaml: lifecycle`). */
export function parseLifecycle(raw: unknown, where: string): DesiredLifecycle {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new LifecycleStateError(`${where}: expected a mapping of retention, immutability, quotas`);
  const desired: DesiredLifecycle = {};
  for (const [key, entries] of Object.entries(raw)) {
    if (!(policyKinds as readonly string[]).includes(key)) throw new LifecycleStateError(`${where}.${key}: unknown kind (retention, immutability or quotas)`);
    const kind = key as PolicyKind;
    if (!Array.isArray(entries)) throw new LifecycleStateError(`${where}.${kind}: expected a list of rules`);
    const names = new Set<string>();
    desired[kind] = entries.map((entry: unknown, i) => {
      const schema: z.ZodTypeAny = policyInputs[kind];
      const parsed = schema.safeParse(entry);
      if (!parsed.success) {
        const issue = parsed.error.issues.map(specificIssue)[0];
        const path = issue?.path.join('.') ?? '';
        throw new LifecycleStateError(`${where}.${kind}.${i}${path ? `.${path}` : ''}: ${issue?.message ?? 'invalid'}`);
      }
      const rule = parsed.data as { name: string };
      if (names.has(rule.name)) throw new LifecycleStateError(`${where}.${kind}.${i}.name: ${rule.name} is declared twice`);
      names.add(rule.name);
      return { name: rule.name, rule };
    });
  }
  return desired;
}

/** The changes that make the registry's policies match `desired` (see the module comment). */
export function planLifecycle(desired: DesiredLifecycle, observed: PoliciesView, prune: boolean): { changes: LifecycleChange[]; notes: string[] } {
  const changes: LifecycleChange[] = [];
  const notes: string[] = [];
  for (const kind of policyKinds) {
    const want = desired[kind];
    if (want === undefined) continue;
    const have = new Map((observed[kind] as Array<{ name: string; rule: unknown }>).map((p) => [p.name, p.rule]));
    for (const { name, rule } of want) {
      const current = have.get(name);
      if (current === undefined || canonical(current) !== canonical(rule)) changes.push({ op: 'policy-put', kind, name, rule, exists: current !== undefined });
    }
    const named = new Set(want.map((p) => p.name));
    for (const name of [...have.keys()].sort()) {
      if (named.has(name)) continue;
      if (prune) changes.push({ op: 'policy-delete', kind, name });
      else notes.push(`kept ${kind} policy ${name}: not in the file (prune: true deletes it)`);
    }
  }
  return { changes, notes };
}

export function formatLifecycleChange(change: LifecycleChange): string {
  if (change.op === 'policy-delete') return `- delete ${change.kind} policy ${change.name}`;
  return `${change.exists ? '~ replace' : '+ create'} ${change.kind} policy ${change.name}`;
}

/** JSON with sorted keys: the same rule, whatever order a file or the server wrote it in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
