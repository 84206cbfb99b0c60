/**
 * The pull-through cache's routes: its management API (`/api/v1/cache/rules…`, owner routes) and
 * `pullThrough`, the one hook the cache has into the registry API (called by the dispatcher for
 * every matched request, before access is decided):
 *
 * - A containerd mirror request names the upstream's repository and the upstream in `?ns=`
 *   (containerd docs/hosts.md: with a mirror host configured, "containerd will append the registry
 *   host namespace to requests as a query parameter called `ns`", e.g.
 *   `https://mymirror.io/v2/image_name/manifests/tag_name?ns=myregistry.io:5000`). A GET or HEAD
 *   with an `ns` a rule mirrors is renamed into that rule's prefix, so access is decided on (and
 *   the content kept under) `<prefix>/<repository>`. Any other `ns` is ignored.
 * - GET/HEAD of manifests and blobs under a rule's prefix are served by the cache's handlers.
 * - Pushes under a prefix are refused (405 UNSUPPORTED): the prefix belongs to the cache. Deletes
 *   are allowed (an owner may drop cached content; the next pull fetches it again).
 * Everything else (listings, other repositories) passes through unchanged.
 */
import { RegistryError } from '../../oci/errors.js';
import type { CacheService } from '../../cache/service.js';
import * as admin from '../handlers/admin/index.js';
import * as cached from '../handlers/cache.js';
import { api, type Route } from '../route.js';

const cacheRule = 'cache/rules/(?<rule>[^/]+)';

export const cacheRoutes: readonly Route[] = [
  { name: 'cache-rules', method: 'GET', path: api('cache/rules'), guard: 'owner', handle: admin.cache.list },
  { name: 'cache-rules', method: 'POST', path: api('cache/rules'), guard: 'owner', handle: admin.cache.create },
  { name: 'cache-rule', method: 'GET', path: api(cacheRule), guard: 'owner', handle: admin.cache.get },
  { name: 'cache-rule', method: 'PATCH', path: api(cacheRule), guard: 'owner', handle: admin.cache.update },
  { name: 'cache-rule', method: 'DELETE', path: api(cacheRule), guard: 'owner', handle: admin.cache.remove },
  { name: 'cache-refresh', method: 'POST', path: api(`${cacheRule}/refresh`), guard: 'owner', handle: admin.cache.refresh },
  { name: 'cache-entries', method: 'GET', path: api(`${cacheRule}/entries`), guard: 'owner', handle: admin.cache.entries },
];

/** Registry routes that push content into a repository. */
const pushes = new Set(['manifest PUT', 'uploads POST', 'upload PATCH', 'upload PUT']);

/**
 * The route and parameters a registry request is served with, given the cache's rules (see the
 * module comment). Requests without a repository name pass through at once.
 */
export async function pullThrough(
  route: Route,
  params: Record<string, string>,
  query: URLSearchParams,
  cache: Pick<CacheService, 'mirrorRepository' | 'owner'>,
): Promise<{ route: Route; params: Record<string, string> }> {
  let name = params['name'];
  if (name === undefined || route.guard !== undefined) return { route, params };
  const pull = (route.name === 'manifest' || route.name === 'blob') && (route.method === 'GET' || route.method === 'HEAD');
  const ns = pull ? query.get('ns') : null;
  if (ns) name = (await cache.mirrorRepository(ns, name)) ?? name;
  const owner = await cache.owner(name);
  if (!owner) return { route, params: Object.assign({}, params, { name }) };
  if (pull)
    return {
      route: Object.assign({}, route, { handle: route.name === 'manifest' ? cached.manifest : cached.blob }),
      params: Object.assign({}, params, { name }),
    };
  if (pushes.has(`${route.name} ${route.method}`)) {
    throw new RegistryError(
      'UNSUPPORTED',
      `${name} belongs to pull-through cache rule ${owner.rule} (a cache of ${owner.upstream}): push to a repository outside its prefix`,
      {
        rule: owner.rule,
      },
    );
  }
  return { route, params };
}
