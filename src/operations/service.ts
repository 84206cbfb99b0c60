/**
 * What the operations routes call (`http/routes/operations.ts`): the metrics scrape with its
 * optional token, readiness, and the run-time log level (owners, audited). Built once by
 * `createApp` as `services.operations`.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditIndex } from '../metadata/auth-store.js';
import type { Metrics } from '../metrics/index.js';
import { RegistryError } from '../oci/errors.js';
import type { Actor } from '../shared/actor.js';
import type { Clock } from '../shared/clock.js';
import { logLevels, setLogLevel, type LogLevel } from '../shared/logger.js';
import type { Health, Readiness } from './health.js';

export type { LogLevel, Readiness };
export { logLevels };

/** Which listener a request came through: the main one, or the separate `metrics.addr` one. */
export type Listener = 'main' | 'metrics';

export interface OperationsDependencies {
  /** Undefined when `metrics.enabled` is false. */
  metrics: Metrics | undefined;
  /** The bearer token scrapes must send (`metrics.tokenFile`), if any. */
  metricsToken: string | undefined;
  /** Where `/metrics` is served: the main listener, or only the separate one. */
  metricsListener: Listener;
  health: Health;
  logger: Logger;
  audit: AuditIndex;
  clock: Clock;
}

export class OperationsService {
  private readonly tokenDigest: Buffer | undefined;

  constructor(private readonly deps: OperationsDependencies) {
    this.tokenDigest = deps.metricsToken === undefined ? undefined : digest(deps.metricsToken);
  }

  /**
   * The Prometheus text of every family. Rule: served on one listener only, and with a token
   * configured only to a request bearing it (compared in constant time); otherwise 404 or 401.
   */
  async scrape(listener: Listener, bearer: string | undefined): Promise<{ contentType: string; body: string }> {
    const { metrics } = this.deps;
    if (!metrics || listener !== this.deps.metricsListener) throw new RegistryError('NOT_FOUND', 'metrics are not served here');
    if (this.tokenDigest && (bearer === undefined || !timingSafeEqual(digest(bearer), this.tokenDigest))) {
      throw new RegistryError('UNAUTHORIZED', 'a metrics token is required (metrics.tokenFile)', undefined, {
        'WWW-Authenticate': 'Bearer realm="berth-metrics"',
      });
    }
    return { contentType: metrics.registry.contentType, body: await metrics.registry.metrics() };
  }

  readiness(): Promise<Readiness> {
    return this.deps.health.readiness();
  }

  logLevel(): LogLevel {
    return this.deps.logger.level as LogLevel;
  }

  /** Changes the level of this process's logs until the next change or restart (other replicas keep theirs). Audited. */
  async setLogLevel(actor: Actor, level: LogLevel): Promise<{ previous: LogLevel; level: LogLevel }> {
    const previous = this.logLevel();
    setLogLevel(this.deps.logger, level);
    await this.deps.audit.append({ at: this.deps.clock.now(), event: 'admin.log_level.changed', ...actor, detail: { previous, level } });
    this.deps.logger.warn({ previous, level, by: actor.principalName }, 'log level changed');
    return { previous, level };
  }
}

/** Equal-length digests, so the comparison takes the same time whatever the token's length. */
function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
