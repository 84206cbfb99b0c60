/**
 * Everything a route handler may call, built once by `createApp` and handed to every request.
 * Each capability (registry, token service, and the later ones: webhooks, import, sync) adds one
 * field here and one line in `createApp`; handlers reach it as `ctx.services.<name>`.
 */
import type { AttestationService } from '../attestations/service.js';
import type { Auth } from '../auth/index.js';
import type { Console, RepositoryViews } from '../console/index.js';
import type { CacheService } from '../cache/service.js';
import type { Webhooks } from '../events/webhooks.js';
import type { LifecycleService } from '../lifecycle/service.js';
import type { Egress } from '../net/egress.js';
import type { OperationsService } from '../operations/service.js';
import type { ImportService } from '../replication/imports.js';
import type { Registry } from '../registry/index.js';
import type { SyncService } from '../sync/service.js';

export interface Services {
  registry: Registry;
  auth: Auth;
  /** The only way to make outbound requests on a user's behalf (webhooks, import, sync). */
  egress: Egress;
  /** Server-side import jobs (`src/replication/imports.ts`). */
  imports: ImportService;
  /** Selective sync: rules, the webhook receiver, the worker (`src/sync`). */
  sync: SyncService;
  /** Webhook subscriptions, deliveries and the dispatcher (`src/events`). */
  webhooks: Webhooks;
  /** Push attestations: public keys, rotation, verification status and the policy preview (`src/attestations`). */
  attestations: AttestationService;
  /** The web console: sessions and single sign-on (`src/console`). */
  console: Console;
  /** Browsing repositories, tags and images for `/api/v1/repositories…` (`src/console/repositories.ts`). */
  repositories: RepositoryViews;
  /** The pull-through cache: rules, pulls under their prefixes, eviction (`src/cache`). */
  cache: CacheService;
  /** Lifecycle policies: retention, immutability, quotas, usage (`src/lifecycle`). */
  lifecycle: LifecycleService;
  /** Probes, the metrics scrape and the run-time log level (`src/operations`). */
  operations: OperationsService;
}
