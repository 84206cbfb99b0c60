/**
 * createApp wires the registry services and the HTTP listener from explicit dependencies. It never
 * listens by itself: `listen()` is called by `berth serve` and by tests (on port 0).
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { AttestationKeys } from '../attestations/keys.js';
import { AttestationService } from '../attestations/service.js';
import { createAuth, type Auth } from '../auth/index.js';
import { CacheService } from '../cache/service.js';
import type { Config } from '../config/schema.js';
import { createConsole, createRepositoryViews } from '../console/index.js';
import { parseAddress } from '../config/load.js';
import { clientAddressResolver } from '../http/client-address.js';
import { ScheduledTasks, type ScheduledTask } from '../jobs/scheduled.js';
import { registryListener } from '../http/server.js';
import type { Services } from '../http/services.js';
import { imageChangeEvents } from '../events/payload.js';
import { Webhooks } from '../events/webhooks.js';
import { createEgress } from '../net/egress.js';
import type { Metadata } from '../metadata/store.js';
import { createMetrics, type Metrics } from '../metrics/index.js';
import { createOperability, measuredBackends } from './operability.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { createRegistry, type Registry } from '../registry/index.js';
import { createLifecycle } from '../lifecycle/index.js';
import type { RegistryContext } from '../registry/context.js';
import { ImportService } from '../replication/imports.js';
import { SyncService } from '../sync/service.js';
import type { StorageDriver } from '../storage/driver.js';

export interface AppDependencies {
  config: Config;
  storage: StorageDriver;
  metadata: Metadata;
  logger: Logger;
  clock?: Clock;
  /** Where services count things; default: a registry of this app's own with Node's process metrics. */
  metrics?: Metrics;
}

export interface App {
  server: Server;
  services: Services;
  registry: Registry;
  auth: Auth;
  /** The stores the services were built from (for tools and tests that inspect or seed them directly). */
  metadata: Metadata;
  storage: StorageDriver;
  /** This app's Prometheus registry and family factory (`metrics/index.ts`). */
  metrics: Metrics;
  /** Starts listening on `config.addr`; resolves to the base URL actually bound. */
  listen(): Promise<string>;
  /** The separate metrics listener's base URL (`metrics.addr`) once listening; undefined without one. */
  metricsUrl(): string | undefined;
  /** Stops accepting requests, lets in-flight ones finish, closes the metadata store. */
  close(): Promise<void>;
}

export function createApp(deps: AppDependencies): App {
  const { config, logger } = deps;
  const clock = deps.clock ?? systemClock;
  const metrics = deps.metrics ?? createMetrics({ processMetrics: config.metrics.enabled && config.metrics.processMetrics });
  // Metrics off: nothing is measured (no wrappers, no request metrics), only counted into a registry nobody reads.
  const measured = config.metrics.enabled ? metrics : undefined;
  const { metadata, storage } = measuredBackends(config, deps, measured);
  const clientAddress = clientAddressResolver(config.http.trustedProxies);
  const operability = createOperability({ config, metadata, storage, logger, clock, metrics: measured, clientAddressOf: clientAddress });
  // The audit log every service writes to: entries are also queued for the configured exports.
  const audit = operability.audit;
  const context: RegistryContext = {
    storage,
    metadata,
    clock,
    logger,
    limits: config.limits,
    // Every manifest change writes its webhook event in its own transaction (the outbox).
    changeEvents: imageChangeEvents,
    sparse: { indexes: config.registry.sparseIndexes, images: config.registry.sparseImages },
  };
  const registry = createRegistry(context);
  const attestations = new AttestationService({
    config: config.attestations,
    publicUrl: config.auth.publicUrl,
    registry,
    keys: new AttestationKeys(metadata.attestationKeys, clock, config.attestations.keyRotationMs),
    audit,
    clock,
    logger,
    metrics,
  });
  // Push attestations are written in the push's transaction; the policy refuses pushes and pulls.
  if (attestations.hooksPush) context.pushHook = (push) => attestations.pushHook(push);
  if (attestations.enforcesPull) context.pullGate = (repository, manifest) => attestations.pullGate(repository, manifest);
  // Lifecycle policies act on every push (immutability, quotas, rate limits) and count every pull.
  const lifecycle = createLifecycle({ config: config.lifecycle, metadata, registry, clock, logger, metrics, audit });
  context.pushPolicy = lifecycle.pushPolicy;
  context.pulled = lifecycle.pulled;
  const auth = createAuth(config.auth, config.federation, config.egress, { ...metadata.auth, audit }, clock, logger, measured);
  const egress = createEgress(config.egress);
  const imports = new ImportService({
    registry,
    jobs: metadata.imports,
    clock,
    audit,
    egress,
    config: config.import,
    maxManifestBytes: config.limits.maxManifestBytes,
    logger,
    metrics: measured,
  });
  const webhooks = new Webhooks({ config: config.webhooks, store: metadata.events, audit, egress, clock, logger, metrics: measured });
  const sync = new SyncService({
    store: metadata.sync,
    registry,
    egress,
    settings: config.sync,
    secrets: config.secrets,
    clock,
    audit,
    logger,
    metrics: measured,
  });
  const cache = new CacheService({
    store: metadata.cache,
    registry,
    egress,
    settings: config.cache,
    secrets: config.secrets,
    clock,
    audit,
    metrics,
    logger,
  });
  const webConsole = createConsole({ config, metadata, auth, egress, clock });
  const services: Services = {
    registry,
    auth,
    egress,
    imports,
    sync,
    webhooks,
    attestations,
    console: webConsole,
    repositories: createRepositoryViews(registry),
    cache,
    lifecycle: lifecycle.service,
    operations: operability.service,
  };
  const scheduled = new ScheduledTasks(metadata.tasks, retentionTasks(config.retention, metadata), { clock, logger });
  const listener = registryListener(services, logger, {
    slowClients: { body: config.http.body, response: config.http.response },
    clientAddress,
    observer: operability.observer,
  });
  // How often Node looks for connections past headersTimeout (its default, 30 s, would let a
  // silent connection live up to that much longer than configured).
  const serverOptions = { connectionsCheckingInterval: Math.max(100, Math.min(5000, Math.floor(config.http.headersTimeoutMs / 4))) };
  const server = config.tls
    ? createHttpsServer({ ...serverOptions, cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) }, listener)
    : createHttpServer(serverOptions, listener);
  // Large layers over slow links take long: no whole-request timeout. The head must arrive within
  // headersTimeout; bodies and responses are bounded by progress (http/slow-clients.ts).
  server.requestTimeout = 0;
  server.headersTimeout = config.http.headersTimeoutMs;
  server.keepAliveTimeout = config.http.keepAliveTimeoutMs;

  let sweep: NodeJS.Timeout | undefined;
  const sweepUploads = () => {
    registry.uploads.expireIdle().then(
      (expired) => expired.length > 0 && logger.info({ count: expired.length }, 'expired abandoned uploads'),
      (err: unknown) => logger.warn({ err }, 'upload expiry failed'),
    );
  };

  return {
    server,
    services,
    registry,
    auth,
    metadata,
    storage,
    metrics,
    metricsUrl: () => operability.metricsUrl(),
    async listen() {
      const { host, port } = parseAddress(config.addr);
      await new Promise<void>((ok, fail) => {
        server.once('error', fail);
        server.listen(port, host, () => {
          server.off('error', fail);
          ok();
        });
      });
      sweep = setInterval(sweepUploads, config.limits.uploadSweepIntervalMs);
      sweep.unref();
      await operability.start(services);
      imports.start();
      sync.start();
      webhooks.start();
      scheduled.start();
      cache.start();
      lifecycle.start();
      const address = server.address() as AddressInfo;
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return `${config.tls ? 'https' : 'http'}://${shownHost}:${address.port}`;
    },
    async close() {
      if (sweep) clearInterval(sweep);
      await imports.stop();
      await sync.stop();
      await webhooks.stop();
      await scheduled.stop();
      await cache.stop();
      await operability.stop();
      await new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeIdleConnections();
      });
      await webConsole.close();
      // After the server: the last requests' pulls are in the buffer it writes.
      await lifecycle.stop();
      await egress.close();
      await auth.close();
      await metadata.close();
    },
  };
}

/** Pruning of the audit log and of expired refresh tokens (`retention` config), one replica at a time. */
function retentionTasks(retention: Config['retention'], metadata: Metadata): ScheduledTask[] {
  const tasks: ScheduledTask[] = [
    {
      name: 'retention.refresh-tokens',
      everyMs: retention.everyMs,
      run: async (now) => ({ refreshTokens: await metadata.auth.refreshTokens.prune(now - retention.expiredRefreshTokensMs) }),
    },
  ];
  if (retention.auditLogMs > 0) {
    tasks.push({
      name: 'retention.audit-log',
      everyMs: retention.everyMs,
      run: async (now) => ({ auditEntries: await metadata.auth.audit.prune(now - retention.auditLogMs) }),
    });
  }
  return tasks;
}
