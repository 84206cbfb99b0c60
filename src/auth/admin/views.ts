/**
 * Auth records as the management API shows them (the wire types are in `api/`). Times are ISO 8601
 * strings, absent values `null`; secret hashes never leave the server.
 */
import type { ClaimConditionView, FederatedCredentialView, PrincipalView } from '../../api/principals.js';
import type { ClaimCondition, CredentialRecord, FederatedCredentialRecord, PrincipalRecord } from '../../metadata/auth-store.js';
import type { Grant } from '../permissions.js';

const iso = (ms: number): string => new Date(ms).toISOString();

export function principalView(
  principal: PrincipalRecord,
  grants: readonly Grant[],
  credentials: readonly CredentialRecord[],
  federated: readonly FederatedCredentialRecord[],
): PrincipalView {
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
    federatedCredentials: federated.map(federatedCredentialView),
  };
}

export function federatedCredentialView(record: FederatedCredentialRecord): FederatedCredentialView {
  return {
    name: record.name,
    issuer: record.issuer,
    audiences: [...record.audiences],
    subject: record.subject,
    conditions: record.conditions.map(conditionView),
    createdAt: iso(record.createdAt),
  };
}

function conditionView(c: ClaimCondition): ClaimConditionView {
  if (c.equals !== undefined) return { claim: c.claim, equals: c.equals };
  if (c.glob !== undefined) return { claim: c.claim, glob: c.glob };
  return { claim: c.claim, oneOf: [...(c.oneOf ?? [])] };
}

export { auditEntryView } from '../../api/audit.js';

/** How the audit log names the principal a change was made to. */
export function describeTarget(principal: PrincipalRecord): { id: string; name: string; kind: string } {
  return { id: principal.id, name: principal.name, kind: principal.kind };
}
