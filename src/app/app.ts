/**
 * createApp wires the registry services and the HTTP listener from explicit dependencies. It never
 * listens by itself: `listen()` is called by `berth serve` and by tests (on port 0).
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createAuth, type Auth } from '../auth/index.js';
import type { Config } from '../config/schema.js';
import { parseAddress } from '../config/load.js';
import { registryListener } from '../http/server.js';
import type { Services } from '../http/services.js';
import { imageChangeEvents } from '../events/payload.js';
import { Webhooks } from '../events/webhooks.js';
import { createEgress } from '../net/egress.js';
import type { Metadata } from '../metadata/store.js';
import { createMetrics, type Metrics } from '../metrics/index.js';
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
  /** Stops accepting requests, lets in-flight ones finish, closes the metadata store. */
  close(): Promise<void>;
}

export function createApp(deps: AppDependencies): App {
  const { config, logger, metadata, storage } = deps;
  const clock = deps.clock ?? systemClock;
  const metrics = deps.metrics ?? createMetrics({ processMetrics: true });
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
  // Lifecycle policies act on every push (immutability, quotas, rate limits) and count every pull.
  const lifecycle = createLifecycle({ config: config.lifecycle, metadata, registry, clock, logger, metrics });
  context.pushPolicy = lifecycle.pushPolicy;
  context.pulled = lifecycle.pulled;
  const auth = createAuth(config.auth, config.federation, metadata.auth, clock, logger);
  const egress = createEgress(config.egress);
  const audit = metadata.auth.audit;
  const imports = new ImportService({
    registry,
    jobs: metadata.imports,
    clock,
    audit,
    egress,
    config: config.import,
    maxManifestBytes: config.limits.maxManifestBytes,
    logger,
  });
  const webhooks = new Webhooks({ config: config.webhooks, store: metadata.events, audit, egress, clock, logger });
  const sync = new SyncService({ store: metadata.sync, registry, egress, settings: config.sync, clock, audit, logger });
  const services: Services = { registry, auth, egress, imports, sync, webhooks, lifecycle: lifecycle.service };
  const listener = registryListener(services, logger);
  const server = config.tls
    ? createHttpsServer({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) }, listener)
    : createHttpServer(listener);
  // Large layers over slow links take long: no whole-request timeout, but idle headers are cut.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;

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
      imports.start();
      sync.start();
      webhooks.start();
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
      await new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeIdleConnections();
      });
      // After the server: the last requests' pulls are in the buffer it writes.
      await lifecycle.stop();
      await egress.close();
      await metadata.close();
    },
  };
}
