/**
 * What the management API sends: the JSON shapes of principals, secrets, federated credentials,
 * audit entries and push history. Times
 * are ISO 8601 strings, absent values are `null`. Secret hashes never leave the server; a secret's
 * value appears only in the one response that created it.
 *
 * These types are the wire contract shared with the CLI (`src/cli/admin-client.ts`) and with
 * `berth apply` (which diffs against `PrincipalView`).
 */
import type { Auth } from '../../../auth/index.js';
import type { AuditEntry, ClaimCondition, FederatedCredentialRecord, PrincipalRecord } from '../../../metadata/auth-store.js';
import type { PushRecord } from '../../../metadata/store.js';
import type { AuditEntryView } from '../../../api/audit.js';
import type { ClaimConditionView, FederatedCredentialView, PrincipalView } from '../../../api/principals.js';
import type { PushView } from '../../../api/repositories.js';

const iso = (ms: number): string => new Date(ms).toISOString();

export async function principalView(auth: Auth, principal: PrincipalRecord): Promise<PrincipalView> {
  const [grants, credentials, federated] = await Promise.all([
    auth.principals.grantsFor(principal),
    auth.store.credentials.list(principal.id),
    auth.store.federatedCredentials.list(principal.id),
  ]);
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

export function pushView(push: PushRecord): PushView {
  return {
    digest: push.digest,
    tag: push.tag ?? null,
    at: iso(push.at),
    principal: push.principalId !== undefined ? { id: push.principalId, name: push.principalName ?? push.principalId } : null,
    provenance: push.provenance ?? null,
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
