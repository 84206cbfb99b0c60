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
