/**
 * Stored policy: permissions granted on repository patterns, and how they turn into the exact
 * actions of an issued token. Wildcards live only here; tokens always name exact repositories.
 *
 * Patterns: `*` matches within one path component, `**` across components; the pattern `**` is
 * "registry scope" (every repository, plus the catalog).
 */
import { isScopeRepositoryName } from '../api/scopes.js';
import { isValidRepositoryName } from '../oci/names.js';
import { matchesRepositoryPattern } from '../shared/glob.js';
import {
  isOwner,
  isPermission,
  isValidPattern,
  registryScope,
  roles,
  scopeMapActions,
  type Grant,
  type Permission,
  type Role,
  type ScopeMapAction,
} from '../api/principals.js';
import { narrowActions, type Access, type Action } from './access.js';

/** The permission vocabulary and the pattern grammar are the API's (`api/principals.ts`). */
export { isOwner, isPermission, isValidPattern, registryScope, roles, scopeMapActions, type Grant, type Permission, type Role, type ScopeMapAction };

const actionsOf: Readonly<Record<Permission, readonly Action[]>> = {
  pull: ['pull'],
  push: ['pull', 'push'],
  delete: ['delete'],
  owner: ['*'],
  'content/read': ['pull'],
  'content/write': ['push'],
  'content/delete': ['delete'],
  'metadata/read': ['metadata_read'],
  'metadata/write': ['metadata_write'],
};

/**
 * True if `repository` matches the pattern (`*` within one path component, `**` across; linear
 * time, `shared/glob.ts`). Rule: a name is matched only once it passed the OCI grammar and its
 * 255-character limit; anything else matches no pattern, so no caller (a route, a token `scope`,
 * the catalog) can make a pattern run over text an attacker chose the length of.
 */
export function matchesPattern(pattern: string, repository: string): boolean {
  return isValidRepositoryName(repository) && matchesRepositoryPattern(pattern, repository);
}

/**
 * Every action the grants allow on one repository: none for a name that is not a valid OCI name
 * (optionally `host[:port]/`-qualified, as a token scope may name it), which is never matched.
 */
export function allowedOnRepository(grants: readonly Grant[], repository: string): Action[] {
  const actions = new Set<Action>();
  if (!isScopeRepositoryName(repository)) return [];
  for (const grant of grants) {
    if (matchesRepositoryPattern(grant.pattern, repository)) for (const action of actionsOf[grant.permission]) actions.add(action);
  }
  return [...actions];
}

/**
 * The catalog: a read or owner grant at registry scope sees all of it (`*`); any other grant that
 * reads some repositories (pull, push, metadata/read...) gets `metadata_read`, for which the
 * catalog lists only the repositories those grants can read (see `readableRepository`).
 */
export function allowedOnRegistry(grants: readonly Grant[]): Action[] {
  const registryWide = grants.filter((g) => g.pattern === registryScope);
  if (registryWide.some((g) => ['owner', 'pull', 'push', 'content/read', 'metadata/read'].includes(g.permission))) return ['*'];
  return grants.some((g) => readsRepositories(g.permission)) ? ['metadata_read'] : [];
}

function readsRepositories(permission: Permission): boolean {
  return actionsOf[permission].some((a) => a === '*' || a === 'pull' || a === 'metadata_read');
}

/** True if `grants` let their holder at least list the tags of `repository` (so it may appear in a catalog). */
export function readableRepository(grants: readonly Grant[], repository: string): boolean {
  return grants.some((g) => readsRepositories(g.permission) && matchesPattern(g.pattern, repository));
}

/**
 * The anonymous-pull policy as grants: anyone may `pull` the repositories matching the configured
 * patterns (and so list their tags and referrers, and see them in the catalog). The token
 * endpoint grants an anonymous token from these, the authorizer lets token-less reads through by
 * them, and the catalog filters by them.
 */
export function anonymousPullGrants(patterns: readonly string[]): Grant[] {
  return patterns.map((pattern) => ({ pattern, permission: 'pull' }));
}

/**
 * Which repositories a caller sees in the catalog, from its token's `registry:catalog` actions and
 * its grants: all of them (undefined) when the token holds `*` on the catalog (registry-wide read);
 * else only those its grants can read. `grants` is asked for only when needed.
 */
export async function catalogVisibility(
  catalogActions: readonly Action[],
  grants: () => Promise<readonly Grant[]>,
): Promise<((repository: string) => boolean) | undefined> {
  if (catalogActions.includes('*')) return undefined;
  const held = await grants();
  return (repository) => readableRepository(held, repository);
}

/** True if the grants include managing principals and policy (the owner role at registry scope). */

/**
 * The intersection of what was asked and what the grants allow, per requested resource. A requested
 * broad action is narrowed to what the grants imply (asking `pull` with only `metadata/read` yields
 * `metadata_read`), so standard clients work with narrow tokens. Empty entries are dropped.
 */
export function grantAccess(grants: readonly Grant[], requested: readonly Access[]): Access[] {
  const granted: Access[] = [];
  for (const request of requested) {
    if (request.type === 'registry' && request.name !== 'catalog' && request.name !== 'admin') continue;
    const allowed: Action[] =
      request.type === 'repository'
        ? allowedOnRepository(grants, request.name)
        : request.name === 'admin'
          ? isOwner(grants)
            ? ['*']
            : []
          : allowedOnRegistry(grants);
    const actions = narrowActions(request.actions, allowed);
    if (actions.length > 0) granted.push({ type: request.type, name: request.name, actions });
  }
  return granted;
}
