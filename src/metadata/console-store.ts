/**
 * What the web console keeps in the metadata database: its sessions and the single-sign-on
 * identities linked to principals. Rows in, rows out: what a session may do is decided by the
 * console domain (`src/console/`) and the authorizer. Same contract as `store.ts` (injected `now`,
 * validated inputs, one implementation for SQLite and PostgreSQL in `sql/`).
 */

export interface ConsoleSessionRecord {
  /** SHA-256 of the cookie's opaque id (base64url); the id itself is never stored. */
  idHash: string;
  principalId: string;
  method: 'password' | 'sso';
  provider: string | undefined;
  createdAt: number;
  expiresAt: number;
  lastSeenAt: number;
}

export interface ConsoleSessionIndex {
  add(session: ConsoleSessionRecord): Promise<void>;
  get(idHash: string): Promise<ConsoleSessionRecord | undefined>;
  /** Records activity (the idle timeout counts from the last one). */
  touch(idHash: string, now: number): Promise<void>;
  /** Ends one session; true if it existed. */
  delete(idHash: string): Promise<boolean>;
  /** Ends every session of a principal (returns how many). */
  deleteForPrincipal(principalId: string): Promise<number>;
  /** Deletes sessions that ended (expired, or idle since before `idleCutoff`) by `now`; returns how many. */
  prune(now: number, idleCutoff: number): Promise<number>;
}

export interface SsoIdentityRecord {
  issuer: string;
  subject: string;
  provider: string;
  principalId: string;
  createdAt: number;
  lastSignInAt: number;
}

export interface SsoIdentityIndex {
  get(issuer: string, subject: string): Promise<SsoIdentityRecord | undefined>;
  /** The identities linked to a principal (a principal made by SSO has one). */
  listForPrincipal(principalId: string): Promise<SsoIdentityRecord[]>;
  /** Links an identity to a principal; false if the identity is already linked (to any principal). */
  link(identity: SsoIdentityRecord): Promise<boolean>;
  touch(issuer: string, subject: string, now: number): Promise<void>;
}

export interface ConsoleMetadata {
  readonly sessions: ConsoleSessionIndex;
  readonly identities: SsoIdentityIndex;
}
