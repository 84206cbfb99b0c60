/** The management API (`/api/v1`): owner routes unless a line says otherwise. */
import * as admin from '../handlers/admin/index.js';
import { api, importJob, name, principal, syncRule, webhook, type Route } from '../route.js';

export const managementRoutes: readonly Route[] = [
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
