/**
 * Docker token-spec scopes, the access vocabulary shared by the token service, the registry and
 * every client that asks for tokens: `repository:<name>:<actions>`, `registry:catalog:*`, and the
 * actions they grant.
 *
 * Actions: `pull`, `push`, `delete` (Docker's), plus two narrower ones for repository-scoped
 * tokens: `metadata_read` (list tags, referrers) and `metadata_write` (delete a tag). A broader
 * action implies the narrower: pull ⊇ metadata_read, delete ⊇ metadata_write, `*` ⊇ everything.
 */
import { isValidRepositoryName } from '../oci/names.js';

export type Action = 'pull' | 'push' | 'delete' | 'metadata_read' | 'metadata_write' | '*';
export type ResourceType = 'repository' | 'registry';

export interface Access {
  type: ResourceType;
  name: string;
  actions: Action[];
}

/**
 * Longest scope considered: `repository:` + a `host:port/` qualifier + a 255-character name +
 * every action once. Longer ones cannot be valid and are dropped before any parsing.
 */
export const maxScopeLength = 640;
/** A host (and port) qualifying a repository name in a scope (`localhost:5000/team/app`), as the token spec's grammar allows. */
const hostPrefix = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})(?::[0-9]{1,5})?$/;

/**
 * True if `name` is a repository name a scope may carry: a valid OCI name (grammar and length),
 * optionally after a `host[:port]/` qualifier (at most 259 + 1 + 255 characters, so matching a
 * pattern against it stays bounded).
 */
export function isScopeRepositoryName(name: string): boolean {
  if (isValidRepositoryName(name)) return true;
  const slash = name.indexOf('/');
  return slash > 0 && hostPrefix.test(name.slice(0, slash)) && isValidRepositoryName(name.slice(slash + 1));
}

/** `registry:<name>:…` names a registry-wide resource (`catalog`, `admin`): a short lower-case word. */
const registryResourceName = /^[a-z]{1,32}$/;

const knownActions: ReadonlySet<string> = new Set(['pull', 'push', 'delete', 'metadata_read', 'metadata_write', '*']);

const implied: Readonly<Record<Action, readonly Action[]>> = {
  pull: ['pull', 'metadata_read'],
  push: ['push'],
  delete: ['delete', 'metadata_write'],
  metadata_read: ['metadata_read'],
  metadata_write: ['metadata_write'],
  '*': ['*', 'pull', 'push', 'delete', 'metadata_read', 'metadata_write'],
};

/** Every action that holding `actions` allows. */
export function expand(actions: readonly Action[]): Set<Action> {
  const out = new Set<Action>();
  for (const action of actions) for (const a of implied[action]) out.add(a);
  return out;
}

/**
 * Parses one scope. The name may itself contain `:` (a `host:port/` prefix), so the type ends at
 * the first colon and the actions start after the last. Unknown types, or a repository name that
 * is not a valid OCI name (grammar and 255-character limit), yield undefined: the token endpoint
 * ignores what it does not understand rather than failing the whole request, and no pattern is
 * ever matched against a name that failed the grammar. Unknown actions are dropped.
 */
export function parseScope(scope: string): Access | undefined {
  if (scope.length > maxScopeLength) return undefined;
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last <= first) return undefined;
  const type = scope.slice(0, first);
  const name = scope.slice(first + 1, last);
  if ((type !== 'repository' && type !== 'registry') || name.length === 0) return undefined;
  if (type === 'repository' && !isScopeRepositoryName(name)) return undefined;
  if (type === 'registry' && !registryResourceName.test(name)) return undefined;
  const actions = scope
    .slice(last + 1)
    .split(',')
    .filter((a): a is Action => knownActions.has(a));
  return { type, name, actions: [...new Set(actions)] };
}

/** Parses the `scope` parameters of a token request (repeated, and/or space-separated). */
export function parseScopes(values: readonly string[]): Access[] {
  return values
    .flatMap((value) => value.split(' '))
    .filter((s) => s.length > 0)
    .map(parseScope)
    .filter((a): a is Access => a !== undefined);
}

export function formatScope(access: Access): string {
  return `${access.type}:${access.name}:${access.actions.join(',')}`;
}

/** Each action as a bit, and what holding it allows as a mask (the `implied` table, for `missingAccess`). */
const actionBit: Readonly<Record<string, number>> = Object.fromEntries([...knownActions].map((a, i) => [a, 1 << i]));
const impliedMask: Readonly<Record<string, number>> = Object.fromEntries(
  Object.entries(implied).map(([action, allows]) => [action, allows.reduce((mask, a) => mask | (actionBit[a] ?? 0), 0)]),
);

/**
 * What `granted` lacks of `required`: the required entries (with only their missing actions) that
 * no granted entry for the same resource covers. Empty means allowed. Every authorized request
 * asks this, so the allowed case allocates nothing but the empty answer.
 */
export function missingAccess(granted: readonly Access[], required: readonly Access[]): Access[] {
  const missing: Access[] = [];
  for (const need of required) {
    let held = 0;
    for (const g of granted) {
      if (g.type !== need.type || g.name !== need.name) continue;
      for (const action of g.actions) held |= impliedMask[action] ?? 0;
    }
    if (need.actions.length === 0) {
      if (held === 0) missing.push(Object.assign({}, need, { actions: [] }));
      continue;
    }
    if (need.actions.every((action) => (held & (actionBit[action] ?? 0)) !== 0)) continue;
    missing.push(Object.assign({}, need, { actions: need.actions.filter((action) => (held & (actionBit[action] ?? 0)) === 0) }));
  }
  return missing;
}
