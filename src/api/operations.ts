/** The wire contract of the operations endpoints: readiness (`/readyz`) and the run-time log level (`/api/v1/settings/log-level`). */
import { z } from 'zod';

export const logLevelNames = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevelName = (typeof logLevelNames)[number];

/** PUT /api/v1/settings/log-level. */
export const logLevelSchema = z
  .object({ level: z.enum(logLevelNames).describe('The new level of this replica until the next change or restart.') })
  .strict()
  .describe('A log level change.');

/** GET /api/v1/settings/log-level, and the answer of a PUT (`previous` only there). */
export interface LogLevelView {
  level: LogLevelName;
  previous?: LogLevelName;
}

/** GET /readyz: 200 when ready, 503 with the failing checks' reasons otherwise. */
export interface ReadinessView {
  status: 'ready' | 'not ready';
  /** The failing checks' reasons, joined (absent when ready). */
  reason?: string;
  checks: Record<string, { ok: boolean; reason?: string }>;
}
