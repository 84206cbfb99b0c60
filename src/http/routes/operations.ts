/** Probes, the metrics scrape and the run-time log level (`handlers/operations.ts`). */
import * as ops from '../handlers/operations.js';
import { api, type Route } from '../route.js';

/** The probes and the scrape: served on the main listener, and alone on `metrics.addr` when set (`operationsListener`). */
export function probeRoutes(listener: 'main' | 'metrics'): Route[] {
  return [
    { name: 'healthz', method: 'GET', path: /^\/healthz$/, guard: 'public', handle: ops.healthz },
    { name: 'healthz', method: 'HEAD', path: /^\/healthz$/, guard: 'public', handle: ops.healthz },
    { name: 'readyz', method: 'GET', path: /^\/readyz$/, guard: 'public', handle: ops.readyz },
    { name: 'readyz', method: 'HEAD', path: /^\/readyz$/, guard: 'public', handle: ops.readyz },
    // Public: scrapers send the metrics token (metrics.tokenFile), if any, which the service checks.
    { name: 'metrics', method: 'GET', path: /^\/metrics$/, guard: 'public', handle: ops.metricsOn(listener) },
  ];
}

export const operationsRoutes: readonly Route[] = [
  ...probeRoutes('main'),
  { name: 'log-level', method: 'GET', path: api('settings/log-level'), guard: 'owner', handle: ops.getLogLevel },
  { name: 'log-level', method: 'PUT', path: api('settings/log-level'), guard: 'owner', handle: ops.putLogLevel },
];
