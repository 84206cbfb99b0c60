/**
 * The token service's narrowing rules over the access vocabulary (Docker token-spec scopes and
 * their actions). The vocabulary itself, its grammar and what implies what, lives in
 * api/scopes.ts, because clients read and write scopes too; it is re-exported here for the
 * server's modules.
 */
import { expand, type Access, type Action } from '../api/scopes.js';

export { expand, formatScope, missingAccess, parseScope, parseScopes, type Access, type Action, type ResourceType } from '../api/scopes.js';

/**
 * The part of `requested` that holding `allowed` permits. A broad action is narrowed to what
 * `allowed` implies rather than dropped (`pull` to `metadata_read`, `delete` to `metadata_write`,
 * `*` to `allowed` itself), so standard clients work with narrow grants and tokens.
 */
export function narrowActions(requested: readonly Action[], allowed: readonly Action[]): Action[] {
  const permitted = expand(allowed);
  const actions = new Set<Action>();
  for (const action of requested) {
    if (permitted.has('*') || permitted.has(action)) actions.add(action);
    else if (action === '*') for (const a of allowed) actions.add(a);
    else if (action === 'pull' && permitted.has('metadata_read')) actions.add('metadata_read');
    else if (action === 'delete' && permitted.has('metadata_write')) actions.add('metadata_write');
  }
  return [...actions];
}

/**
 * `access` narrowed to what `ceiling` allows (a token bound to a fixed set of scopes: see
 * `Identity.scopeCeiling`). Entries the ceiling does not name are dropped.
 */
export function limitAccess(access: readonly Access[], ceiling: readonly Access[]): Access[] {
  const limited: Access[] = [];
  for (const entry of access) {
    const named = ceiling.filter((c) => c.type === entry.type && c.name === entry.name).flatMap((c) => c.actions);
    const actions = narrowActions(entry.actions, named);
    if (actions.length > 0) limited.push({ type: entry.type, name: entry.name, actions });
  }
  return limited;
}
