/**
 * Routes are data: one line per route with its method, path pattern and handler. The same table
 * drives dispatch (404 vs 405 + Allow), and `requiredAccess` derives from it what a request needs
 * (GET/HEAD pull; POST/PUT/PATCH pull+push; DELETE delete; a mount also pull on its source), which
 * the authorization hook consumes.
 *
 * Repository names may contain `/`, so patterns are anchored on the fixed suffix and the name part
 * is matched greedily; handlers validate names and references against the spec grammar.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Access, Action } from '../auth/access.js';
import type { Auth } from '../auth/index.js';
import type { AccessClaims } from '../auth/tokens.js';
import type { Registry } from '../registry/index.js';
import * as admin from './handlers/admin/index.js';
import * as blobs from './handlers/blobs.js';
import * as listings from './handlers/listings.js';
import * as manifests from './handlers/manifests.js';
import * as oauth2 from './handlers/oauth2.js';
import * as uploads from './handlers/uploads.js';
import { sendJson } from './respond.js';
import type { Services } from './services.js';

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  /** Named groups of the route's path pattern, undecoded (names and references never need decoding). */
  params: Record<string, string>;
  query: URLSearchParams;
  registry: Registry;
  auth: Auth;
  /** Every service, including `registry` and `auth` (kept as shortcuts). */
  services: Services;
  /** Who is calling, once the guard has run (undefined when anonymous or auth is off). */
  identity: AccessClaims | undefined;
  logger: Logger;
}

/**
 * Who may call a route: `registry` routes need the access `requiredAccess` derives; `owner` routes
 * (management) need `registry:admin:*`; `public` routes (the token service itself) need nothing;
 * `token` routes need any valid access token and leave the rest to the handler (import: an owner,
 * or push on every target repository the request names).
 */
export type Guard = 'registry' | 'owner' | 'public' | 'token';

export interface Route {
  name: string;
  method: Method;
  path: RegExp;
  guard?: Guard;
  handle(ctx: RouteContext): Promise<void>;
}

const name = '(?<name>.+)';
const v2 = (suffix: string) => new RegExp(`^/v2/${suffix}$`);
const api = (suffix: string) => new RegExp(`^/api/v1/${suffix}$`);
const principal = 'principals/(?<principal>[^/]+)';
const importJob = 'imports/(?<id>[^/]+)';
const webhook = 'webhooks/(?<webhook>[^/]+)';
const syncRule = 'sync/rules/(?<rule>[^/]+)';

export const routes: readonly Route[] = [
  { name: 'base', method: 'GET', path: /^\/v2\/?$/, handle: async ({ res }) => sendJson(res, 200, {}) },
  { name: 'catalog', method: 'GET', path: v2('_catalog'), handle: listings.catalog },
  { name: 'tags', method: 'GET', path: v2(`${name}/tags/list`), handle: listings.tags },
  { name: 'referrers', method: 'GET', path: v2(`${name}/referrers/(?<digest>[^/]+)`), handle: listings.referrers },
  { name: 'manifest', method: 'GET', path: v2(`${name}/manifests/(?<reference>[^/]+)`), handle: manifests.get },
  { name: 'manifest', method: 'HEAD', path: v2(`${name}/manifests/(?<reference>[^/]+)`), handle: manifests.get },
  { name: 'manifest', method: 'PUT', path: v2(`${name}/manifests/(?<reference>[^/]+)`), handle: manifests.put },
  { name: 'manifest', method: 'DELETE', path: v2(`${name}/manifests/(?<reference>[^/]+)`), handle: manifests.remove },
  { name: 'uploads', method: 'POST', path: v2(`${name}/blobs/uploads/?`), handle: uploads.start },
  { name: 'upload', method: 'GET', path: v2(`${name}/blobs/uploads/(?<uuid>[^/]+)`), handle: uploads.status },
  { name: 'upload', method: 'PATCH', path: v2(`${name}/blobs/uploads/(?<uuid>[^/]+)`), handle: uploads.append },
  { name: 'upload', method: 'PUT', path: v2(`${name}/blobs/uploads/(?<uuid>[^/]+)`), handle: uploads.complete },
  { name: 'upload', method: 'DELETE', path: v2(`${name}/blobs/uploads/(?<uuid>[^/]+)`), handle: uploads.cancel },
  { name: 'blob', method: 'GET', path: v2(`${name}/blobs/(?<digest>[^/]+)`), handle: blobs.get },
  { name: 'blob', method: 'HEAD', path: v2(`${name}/blobs/(?<digest>[^/]+)`), handle: blobs.get },
  { name: 'blob', method: 'DELETE', path: v2(`${name}/blobs/(?<digest>[^/]+)`), handle: blobs.remove },
  { name: 'token', method: 'GET', path: /^\/oauth2\/token$/, guard: 'public', handle: oauth2.getToken },
  { name: 'token', method: 'POST', path: /^\/oauth2\/token$/, guard: 'public', handle: oauth2.postToken },
  { name: 'exchange', method: 'POST', path: /^\/oauth2\/exchange$/, guard: 'public', handle: oauth2.exchange },
  { name: 'jwks', method: 'GET', path: /^\/oauth2\/jwks$/, guard: 'public', handle: oauth2.jwks },
  { name: 'principals', method: 'GET', path: api('principals'), guard: 'owner', handle: admin.principals.list },
  { name: 'principals', method: 'POST', path: api('principals'), guard: 'owner', handle: admin.principals.create },
  { name: 'principal', method: 'GET', path: api(principal), guard: 'owner', handle: admin.principals.get },
  { name: 'principal', method: 'PATCH', path: api(principal), guard: 'owner', handle: admin.principals.update },
  { name: 'principal', method: 'DELETE', path: api(principal), guard: 'owner', handle: admin.principals.remove },
  { name: 'grants', method: 'PUT', path: api(`${principal}/grants`), guard: 'owner', handle: admin.principals.replaceGrants },
  { name: 'secrets', method: 'POST', path: api(`${principal}/secrets`), guard: 'owner', handle: admin.secrets.set },
  { name: 'secret', method: 'DELETE', path: api(`${principal}/secrets/(?<secret>[^/]+)`), guard: 'owner', handle: admin.secrets.remove },
  { name: 'federated-credentials', method: 'GET', path: api(`${principal}/federated-credentials`), guard: 'owner', handle: admin.federated.list },
  { name: 'federated-credentials', method: 'POST', path: api(`${principal}/federated-credentials`), guard: 'owner', handle: admin.federated.put },
  {
    name: 'federated-credential',
    method: 'DELETE',
    path: api(`${principal}/federated-credentials/(?<credential>[^/]+)`),
    guard: 'owner',
    handle: admin.federated.remove,
  },
  { name: 'anonymous-pull', method: 'GET', path: api('settings/anonymous-pull'), guard: 'owner', handle: admin.policy.getAnonymousPull },
  { name: 'anonymous-pull', method: 'PUT', path: api('settings/anonymous-pull'), guard: 'owner', handle: admin.policy.putAnonymousPull },
  { name: 'keys', method: 'POST', path: api('keys/rotate'), guard: 'owner', handle: admin.policy.rotateKeys },
  { name: 'audit', method: 'GET', path: api('audit'), guard: 'owner', handle: admin.policy.listAudit },
  { name: 'webhooks', method: 'GET', path: api('webhooks'), guard: 'owner', handle: admin.webhooks.list },
  { name: 'webhooks', method: 'POST', path: api('webhooks'), guard: 'owner', handle: admin.webhooks.create },
  { name: 'webhook', method: 'GET', path: api(webhook), guard: 'owner', handle: admin.webhooks.get },
  { name: 'webhook', method: 'PATCH', path: api(webhook), guard: 'owner', handle: admin.webhooks.update },
  { name: 'webhook', method: 'DELETE', path: api(webhook), guard: 'owner', handle: admin.webhooks.remove },
  { name: 'webhook-secret', method: 'POST', path: api(`${webhook}/secret`), guard: 'owner', handle: admin.webhooks.rotateSecret },
  { name: 'webhook-ping', method: 'POST', path: api(`${webhook}/ping`), guard: 'owner', handle: admin.webhooks.ping },
  { name: 'webhook-deliveries', method: 'GET', path: api(`${webhook}/deliveries`), guard: 'owner', handle: admin.webhooks.deliveries },
  { name: 'webhook-delivery', method: 'GET', path: api(`${webhook}/deliveries/(?<delivery>[^/]+)`), guard: 'owner', handle: admin.webhooks.delivery },
  {
    name: 'webhook-redeliver',
    method: 'POST',
    path: api(`${webhook}/deliveries/(?<delivery>[^/]+)/redeliver`),
    guard: 'owner',
    handle: admin.webhooks.redeliver,
  },
  { name: 'sync-rules', method: 'GET', path: api('sync/rules'), guard: 'owner', handle: admin.sync.list },
  { name: 'sync-rules', method: 'POST', path: api('sync/rules'), guard: 'owner', handle: admin.sync.create },
  { name: 'sync-rule', method: 'GET', path: api(syncRule), guard: 'owner', handle: admin.sync.get },
  { name: 'sync-rule', method: 'PATCH', path: api(syncRule), guard: 'owner', handle: admin.sync.update },
  { name: 'sync-rule', method: 'DELETE', path: api(syncRule), guard: 'owner', handle: admin.sync.remove },
  { name: 'sync-run', method: 'POST', path: api(`${syncRule}/run`), guard: 'owner', handle: admin.sync.run },
  { name: 'sync-status', method: 'GET', path: api(`${syncRule}/status`), guard: 'owner', handle: admin.sync.status },
  // Public: webhook senders authenticate with the rule's secret (signature or bearer), checked by the handler.
  { name: 'sync-webhook', method: 'POST', path: api(`${syncRule}/webhook`), guard: 'public', handle: admin.sync.webhook },
  // Not an owner route: the default `registry` guard makes it need pull on `name`, like a manifest GET.
  { name: 'history', method: 'GET', path: api(`repositories/${name}/history`), handle: admin.history.list },
  // `token` guard: owners, or principals with push on every target repository (checked by the handler).
  { name: 'import', method: 'POST', path: api('import'), guard: 'token', handle: admin.imports.create },
  { name: 'imports', method: 'GET', path: api('imports'), guard: 'token', handle: admin.imports.list },
  { name: 'import-job', method: 'GET', path: api(importJob), guard: 'token', handle: admin.imports.get },
  { name: 'import-retry', method: 'POST', path: api(`${importJob}/retry`), guard: 'token', handle: admin.imports.retry },
];

/**
 * What a matched request needs, derived from the route's method (see the module comment). Listing
 * endpoints need only `metadata_read` and deleting a tag only `metadata_write`; `pull` and `delete`
 * imply them, so Docker-scoped tokens work unchanged while repository-scoped tokens can be narrower.
 */
export function requiredAccess(route: Route, params: Record<string, string>, query: URLSearchParams): Access[] {
  if (route.guard === 'public' || route.guard === 'token' || route.name === 'base') return [];
  if (route.guard === 'owner') return [{ type: 'registry', name: 'admin', actions: ['*'] }];
  // The handler narrows the listing to what the caller may read unless the token holds `*`.
  if (route.name === 'catalog') return [{ type: 'registry', name: 'catalog', actions: ['metadata_read'] }];
  const repository = params['name'] ?? '';
  const access: Access[] = [{ type: 'repository', name: repository, actions: actionsFor(route, params) }];
  const from = query.get('from');
  if (route.name === 'uploads' && query.has('mount') && from) access.push({ type: 'repository', name: from, actions: ['pull'] });
  return access;
}

function actionsFor(route: Route, params: Record<string, string>): Action[] {
  if (route.name === 'tags' || route.name === 'referrers') return ['metadata_read'];
  if (route.method === 'GET' || route.method === 'HEAD') return ['pull'];
  if (route.method === 'DELETE') return route.name === 'manifest' && !(params['reference'] ?? '').includes(':') ? ['metadata_write'] : ['delete'];
  return ['pull', 'push'];
}

export type Match = { kind: 'route'; route: Route; params: Record<string, string> } | { kind: 'method-not-allowed'; allow: Method[] } | { kind: 'not-found' };

/** Finds the route for a method and path; distinguishes an unknown path from an unsupported method. */
export function matchRoute(method: string, path: string): Match {
  const allow: Method[] = [];
  for (const route of routes) {
    const found = route.path.exec(path);
    if (!found) continue;
    if (route.method === method) return { kind: 'route', route, params: { ...found.groups } };
    allow.push(route.method);
  }
  return allow.length > 0 ? { kind: 'method-not-allowed', allow } : { kind: 'not-found' };
}
