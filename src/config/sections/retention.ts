import { z } from 'zod';
import { duration } from '../fields.js';

const day = 24 * 3600 * 1000;

/** How long the token service's records are kept; pruned by one replica at a time (`jobs/scheduled.ts`). */
export const retentionSection = () =>
  z
    .object({
      auditLogMs: z
        .number()
        .int()
        .min(0)
        .default(90 * day)
        .describe('Audit log entries older than this are deleted; 0 keeps them forever (export them first if you must keep them longer).'),
      expiredRefreshTokensMs: duration('Refresh tokens (revoked or not) are deleted this long after they expired.', 7 * day),
      everyMs: duration('How often the pruning runs (on one replica at a time).', 3600 * 1000),
    })
    .default({})
    .describe('Retention of the audit log and of expired refresh tokens.');
