/** The management API's wire contract for the audit log and registry-wide settings (`/api/v1/audit`, `/settings`, `/keys`). */

export interface AuditEntryView {
  id: number;
  at: string;
  event: string;
  principalId: string | null;
  principalName: string | null;
  clientAddress: string | null;
  detail: unknown;
}

/** GET/PUT /api/v1/settings/anonymous-pull: the repository patterns anyone may pull without a token. */
export interface AnonymousPullView {
  patterns: string[];
}

/** POST /api/v1/keys/rotate: the new signing key's id. */
export interface RotatedKeyView {
  kid: string;
}
