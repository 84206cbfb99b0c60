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
import { createOperability, measuredBackends } from './operability.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { createRegistry, type Registry } from '../registry/index.js';
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
  const operability = createOperability({ config, metadata, storage, logger, clock, metrics: measured });
  const registry = createRegistry({
    storage,
    metadata,
    clock,
    logger,
    limits: config.limits,
    // Every manifest change writes its webhook event in its own transaction (the outbox).
    changeEvents: imageChangeEvents,
    sparse: { indexes: config.registry.sparseIndexes, images: config.registry.sparseImages },
  });
  const audit = operability.audit;
  const auth = createAuth(config.auth, config.federation, { ...metadata.auth, audit }, clock, logger, measured);
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
  const sync = new SyncService({ store: metadata.sync, registry, egress, settings: config.sync, clock, audit, logger, metrics: measured });
  const services: Services = { registry, auth, egress, imports, sync, webhooks, operations: operability.service };
  const listener = registryListener(services, logger, operability.observer);
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
      const address = server.address() as AddressInfo;
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return `${config.tls ? 'https' : 'http'}://${shownHost}:${address.port}`;
    },
    async close() {
      if (sweep) clearInterval(sweep);
      await imports.stop();
      await sync.stop();
      await webhooks.stop();
      await operability.stop();
      await new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeIdleConnections();
      });
      await egress.close();
      await metadata.close();
    },
  };
}
