/**
 * What the management API sends: the JSON shapes of principals, secrets and audit entries. Times
 * are ISO 8601 strings, absent values are `null`. Secret hashes never leave the server; a secret's
 * value appears only in the one response that created it.
 *
 * These types are the wire contract shared with the CLI (`src/cli/admin-client.ts`) and with
 * `berth apply` (which diffs against `PrincipalView`).
 */
import type { Auth } from '../../../auth/index.js';
import type { AuditEntry, PrincipalKind, PrincipalRecord } from '../../../metadata/auth-store.js';

export interface GrantView {
  pattern: string;
  permission: string;
}

export interface SecretView {
  name: string;
  expiresAt: string | null;
  createdAt: string;
}

export interface PrincipalView {
  id: string;
  kind: PrincipalKind;
  name: string;
  description: string | null;
  disabled: boolean;
  expiresAt: string | null;
  createdAt: string;
  /** The effective grants (the admin user always shows its fixed owner grant). */
  grants: GrantView[];
  secrets: SecretView[];
}

/** The one response that shows a secret's value. */
export interface IssuedSecret {
  name: string;
  value: string;
}

export interface AuditEntryView {
  id: number;
  at: string;
  event: string;
  principalId: string | null;
  principalName: string | null;
  clientAddress: string | null;
  detail: unknown;
}

const iso = (ms: number): string => new Date(ms).toISOString();

export async function principalView(auth: Auth, principal: PrincipalRecord): Promise<PrincipalView> {
  const [grants, credentials] = await Promise.all([auth.principals.grantsFor(principal), auth.store.credentials.list(principal.id)]);
  return {
    id: principal.id,
    kind: principal.kind,
    name: principal.name,
    description: principal.description ?? null,
    disabled: principal.disabled,
    expiresAt: principal.expiresAt === undefined ? null : iso(principal.expiresAt),
    createdAt: iso(principal.createdAt),
    grants: grants.map((g) => ({ pattern: g.pattern, permission: g.permission })),
    secrets: credentials.map((c) => ({ name: c.label, expiresAt: c.expiresAt === undefined ? null : iso(c.expiresAt), createdAt: iso(c.createdAt) })),
  };
}

export function auditEntryView(entry: AuditEntry & { id: number }): AuditEntryView {
  return {
    id: entry.id,
    at: iso(entry.at),
    event: entry.event,
    principalId: entry.principalId ?? null,
    principalName: entry.principalName ?? null,
    clientAddress: entry.clientAddress ?? null,
    detail: entry.detail ?? null,
  };
}
