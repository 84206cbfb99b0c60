/** Helpers for the request schemas the server validates with (zod), shared with the CLI. */
import { z } from 'zod';

/**
 * The most telling issue under a union's failure: the deepest, preferring a failed rule over "wrong
 * type" (which only says another branch was not meant), so users read "unknown permission", not
 * zod's "Invalid input".
 */
export function specificIssue(issue: z.ZodIssue): z.ZodIssue {
  if (issue.code !== 'invalid_union') return issue;
  const leaves = issue.unionErrors.flatMap((e) => e.issues.map(specificIssue));
  const rank = (i: z.ZodIssue) => i.path.length * 2 + (i.code === 'invalid_type' ? 0 : 1);
  return leaves.reduce((best, i) => (rank(i) > rank(best) ? i : best), leaves[0] ?? issue);
}

/** A point in time: an ISO 8601 date(-time) string or milliseconds since the epoch; yields ms. */
export const timestamp = z.union([
  z.number().int().nonnegative().max(8.64e15),
  z
    .string()
    .regex(/^\d{4}-\d\d-\d\d(?:[T ][0-9:.]+(?:Z|[+-]\d\d:?\d\d)?)?$/, 'expected an ISO 8601 date or date-time')
    .transform((text, ctx) => {
      const ms = Date.parse(text);
      if (Number.isNaN(ms)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'not a valid date' });
        return z.NEVER;
      }
      return ms;
    }),
]);
