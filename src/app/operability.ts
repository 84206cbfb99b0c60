/**
 * How `createApp` makes the registry observable, kept here so app.ts only calls it:
 * - `measuredBackends`: the storage driver and metadata store wrapped to time every operation
 *   (when `metrics.enabled`);
 * - `createOperability`: the audit log as services write it (export queue, counts), the audit
 *   exporter, the request observer, the operations service (probes, scrape, log level), the
 *   database-state gauges, and at `start` the separate metrics listener and OpenTelemetry (loaded
 *   only when `tracing.endpoint` is set).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { parseAddress } from '../config/load.js';
import type { ClientAddressOf } from '../http/client-address.js';
import { RequestObserver } from '../http/observe.js';
import { operationsListener } from '../http/operations-listener.js';
import type { Services } from '../http/services.js';
import type { AuditIndex } from '../metadata/auth-store.js';
import type { Metadata } from '../metadata/store.js';
import type { Metrics } from '../metrics/index.js';
import { installTracer } from '../metrics/tracing.js';
import { AuditExporter } from '../operations/audit-export.js';
import { recordingAudit } from '../operations/audit-recorder.js';
import { registerStateGauges } from '../operations/gauges.js';
import { Health } from '../operations/health.js';
import { instrumentMetadata, instrumentStorage } from '../operations/instrument.js';
import { OperationsService } from '../operations/service.js';
import type { Clock } from '../shared/clock.js';
import type { StorageDriver } from '../storage/driver.js';

/** The backends as services use them: timed when metrics are on. */
export function measuredBackends(
  config: Config,
  backends: { metadata: Metadata; storage: StorageDriver },
  metrics: Metrics | undefined,
): { metadata: Metadata; storage: StorageDriver } {
  if (!metrics) return backends;
  return { metadata: instrumentMetadata(backends.metadata, metrics, config.metadata.driver), storage: instrumentStorage(backends.storage, metrics) };
}

export interface Operability {
  /** The audit log every service writes to (queues exports, counts events). */
  audit: AuditIndex;
  observer: RequestObserver;
  service: OperationsService;
  exporter: AuditExporter;
  /** Starts the exporter, tracing and the separate metrics listener. */
  start(services: Services): Promise<void>;
  /** The base URL of the separate metrics listener once started (`metrics.addr`), else undefined. */
  metricsUrl(): string | undefined;
  stop(): Promise<void>;
}

export function createOperability(deps: {
  config: Config;
  metadata: Metadata;
  storage: StorageDriver;
  logger: Logger;
  clock: Clock;
  /** Undefined when `metrics.enabled` is false. */
  metrics: Metrics | undefined;
  /** Who is calling, for the audit entries of registry changes (`http/client-address.ts`). */
  clientAddressOf: ClientAddressOf;
}): Operability {
  const { config, metadata, storage, logger, clock, metrics } = deps;
  const exporter = new AuditExporter({ store: metadata.auditExports, settings: config.audit.export, clock, logger, metrics });
  const audit = recordingAudit(metadata.auth.audit, { exportTo: exporter.sinkNames, onQueued: () => exporter.wake(), metrics });
  const observer = new RequestObserver(
    {
      metrics,
      audit,
      pulls: config.audit.pulls,
      pullSampleRatio: config.audit.pullSampleRatio,
      clock,
      clientAddressOf: deps.clientAddressOf,
    },
    logger,
  );
  const service = new OperationsService({
    metrics,
    metricsToken: config.metrics.tokenFile ? readToken(config.metrics.tokenFile) : undefined,
    metricsListener: config.metrics.addr ? 'metrics' : 'main',
    health: new Health(metadata.operations, storage),
    logger,
    audit,
    clock,
  });
  if (metrics) registerStateGauges(metrics, metadata.operations, clock, logger, exporter.sinkNames);

  let metricsServer: Server | undefined;
  let uninstallTracer: (() => void) | undefined;
  let shutdownTracer: (() => Promise<void>) | undefined;
  return {
    audit,
    observer,
    service,
    exporter,
    metricsUrl() {
      const address = metricsServer?.address();
      if (!address || typeof address === 'string') return undefined;
      return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
    },
    async start(services) {
      if (config.tracing.endpoint && !uninstallTracer) {
        const { createOtelTracer } = await import('../metrics/otel.js');
        const tracer = createOtelTracer({ ...config.tracing, endpoint: config.tracing.endpoint });
        uninstallTracer = installTracer(tracer);
        shutdownTracer = () => tracer.shutdown();
      }
      exporter.start();
      if (config.metrics.addr && !metricsServer) {
        const { host, port } = parseAddress(config.metrics.addr);
        const server = createServer(operationsListener(services, logger));
        await new Promise<void>((ok, fail) => {
          server.once('error', fail);
          server.listen(port, host, () => {
            server.off('error', fail);
            ok();
          });
        });
        metricsServer = server;
      }
    },
    async stop() {
      await exporter.stop();
      const server = metricsServer;
      metricsServer = undefined;
      if (server) {
        await new Promise<void>((ok) => {
          server.close(() => ok());
          server.closeAllConnections();
        });
      }
      uninstallTracer?.();
      uninstallTracer = undefined;
      await shutdownTracer?.();
      shutdownTracer = undefined;
    },
  };
}

/** The metrics token: the file's content without trailing newlines; an empty file is refused. */
function readToken(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').replace(/[\r\n]+$/, '');
  } catch (err) {
    throw new Error(`metrics.tokenFile ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`, { cause: err });
  }
  if (token.length === 0) throw new Error(`metrics.tokenFile ${file} is empty`);
  return token;
}
