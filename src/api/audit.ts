/** The management API's wire contract for the audit log and registry-wide settings (`/api/v1/audit`, `/settings`, `/keys`). */
import { z } from 'zod';
import { isValidPattern } from './principals.js';

export interface AuditEntryView {
  id: number;
  at: string;
  event: string;
  principalId: string | null;
  principalName: string | null;
  clientAddress: string | null;
  /** The repository the entry is about (pushes, pulls, deletes), else null. */
  repository: string | null;
  detail: unknown;
}

/** An audit entry as recorded (times in milliseconds; absent fields not known). */
export interface AuditEntryInput {
  id: number;
  at: number;
  event: string;
  principalId?: string | undefined;
  principalName?: string | undefined;
  clientAddress?: string | undefined;
  repository?: string | undefined;
  detail?: unknown;
}

/** The one view of an audit entry: the API's answer, and the body every audit export sends. */
export function auditEntryView(entry: AuditEntryInput): AuditEntryView {
  return {
    id: entry.id,
    at: new Date(entry.at).toISOString(),
    event: entry.event,
    principalId: entry.principalId ?? null,
    principalName: entry.principalName ?? null,
    clientAddress: entry.clientAddress ?? null,
    repository: entry.repository ?? null,
    detail: entry.detail ?? null,
  };
}

/** GET /api/v1/audit: a page of entries, newest first; `next` is the `before` cursor of the next page (null on the last). */
export interface AuditPageView {
  entries: AuditEntryView[];
  next: number | null;
}

export const maxAuditLimit = 1000;
export const defaultAuditLimit = 100;

const instant = z
  .string()
  .refine((value) => /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/.test(value) && !Number.isNaN(Date.parse(value)), {
    message: 'expected an RFC 3339 time (2026-01-31T12:00:00Z) or a date (2026-01-31)',
  })
  .transform((value) => Date.parse(value));

/** The query of GET /api/v1/audit (every filter optional; all that are given must hold). */
export const auditQuerySchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(maxAuditLimit).default(defaultAuditLimit).describe(`Entries per page, 1 to ${maxAuditLimit}.`),
    principal: z.string().min(1).max(256).optional().describe('A principal id or name (the id of a deleted principal still finds its history).'),
    repository: z.string().min(1).max(512).optional().describe('Only entries about this repository.'),
    event: z
      .string()
      .regex(/^[a-z0-9_.]{1,128}$/, 'an event name (login.failed) or a prefix ending in a dot (admin.)')
      .optional()
      .describe('An event name, or a prefix ending in `.` (`admin.` for every management change).'),
    since: instant.optional().describe('Only entries recorded at or after this time (RFC 3339).'),
    until: instant.optional().describe('Only entries recorded before this time (RFC 3339).'),
    before: z.coerce.number().int().min(1).optional().describe('Only entries older than this id: the `next` cursor of the previous page.'),
  })
  .strict()
  .describe('Filters of the audit log listing.');

export type AuditQueryInput = z.input<typeof auditQuerySchema>;
export type AuditQuery = z.output<typeof auditQuerySchema>;

/** GET/PUT /api/v1/settings/anonymous-pull: the repository patterns anyone may pull without a token. */
export interface AnonymousPullView {
  patterns: string[];
}

/** POST /api/v1/keys/rotate: the new signing key's id. */
export interface RotatedKeyView {
  kid: string;
}

/** One signing key in GET /api/v1/keys (times ISO 8601; `null` when not so). */
export interface SigningKeyView {
  kid: string;
  alg: string;
  createdAt: string;
  /** When it stopped signing (it still verifies the tokens it signed until they expire). */
  retiredAt: string | null;
  /** When an owner revoked it: it verifies nothing any more. */
  revokedAt: string | null;
  state: 'active' | 'retired' | 'revoked';
}

/** POST /api/v1/keys/{kid}/revoke: the revoked key, and the key that signs from now on. */
export interface RevokedKeyView {
  kid: string;
  signingKid: string;
}
/** PUT /api/v1/settings/anonymous-pull */
export const anonymousPullBody = z
  .object({
    patterns: z.array(z.string().refine(isValidPattern, (p) => ({ message: `invalid repository pattern ${JSON.stringify(p.slice(0, 100))}` }))).max(1000),
  })
  .strict();
