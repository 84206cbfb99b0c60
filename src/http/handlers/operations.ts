/**
 * Operations endpoints: `/healthz` (the process answers), `/readyz` (database, migrations and
 * storage; 503 with the failing checks' reasons), `/metrics` (Prometheus text, optionally behind a
 * token) and the run-time log level (`/api/v1/settings/log-level`, owners, audited). The probes and
 * the scrape are public routes: Kubernetes and Prometheus call them without a registry token.
 */
import { logLevelSchema, type LogLevelView, type ReadinessView } from '../../api/operations.js';
import type { Listener } from '../../operations/service.js';
import { send, sendJson } from '../respond.js';
import type { RouteContext } from '../route.js';
import { actingOwner, readJson } from './admin/common.js';

/** GET /healthz → 200 `ok`. */
export async function healthz(ctx: RouteContext): Promise<void> {
  send(ctx.res, 200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' }, 'ok\n');
}

/** GET /readyz → 200 when this replica can serve, else 503 naming what is wrong. */
export async function readyz(ctx: RouteContext): Promise<void> {
  const readiness = await ctx.services.operations.readiness();
  const failing = Object.values(readiness.checks)
    .filter((check) => !check.ok)
    .map((check) => check.reason ?? 'failed');
  const view: ReadinessView = { status: readiness.ready ? 'ready' : 'not ready', checks: readiness.checks };
  if (failing.length > 0) view.reason = failing.join('; ');
  sendJson(ctx.res, readiness.ready ? 200 : 503, view, { 'Cache-Control': 'no-store' });
}

/** GET /metrics on the listener `listener` serves it from. */
export function metricsOn(listener: Listener): (ctx: RouteContext) => Promise<void> {
  return async (ctx) => {
    const header = ctx.req.headers['authorization'];
    const bearer = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    const { contentType, body } = await ctx.services.operations.scrape(listener, bearer);
    send(ctx.res, 200, { 'Content-Type': contentType, 'Cache-Control': 'no-store' }, body);
  };
}

/** GET /api/v1/settings/log-level → {level}. */
export async function getLogLevel(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  const view: LogLevelView = { level: ctx.services.operations.logLevel() };
  sendJson(ctx.res, 200, view);
}

/** PUT /api/v1/settings/log-level {level} → {level, previous}: this replica's level until the next change or restart. */
export async function putLogLevel(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const { level } = await readJson(ctx, logLevelSchema);
  const view: LogLevelView = await ctx.services.operations.setLogLevel(actor, level);
  sendJson(ctx.res, 200, view);
}
