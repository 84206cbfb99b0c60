/**
 * What the token service needs from the metadata database. Same contract as `store.ts`: injected
 * `now`, validated inputs, one implementation for SQLite and PostgreSQL in `sql/`.
 */
import type { PrincipalKind } from './schema.js';

export type { PrincipalKind };

export interface PrincipalRecord {
  id: string;
  kind: PrincipalKind;
  name: string;
  description: string | undefined;
  disabled: boolean;
  expiresAt: number | undefined;
  createdAt: number;
}

export interface CredentialRecord {
  id: string;
  principalId: string;
  label: string;
  hash: string;
  expiresAt: number | undefined;
  createdAt: number;
}

export interface GrantRecord {
  pattern: string;
  permission: string;
}

export interface PrincipalWithGrants {
  principal: PrincipalRecord;
  grants: GrantRecord[];
}

export interface PrincipalIndex {
  /** Inserts a principal; false if the name is taken. */
  create(principal: PrincipalRecord): Promise<boolean>;
  get(id: string): Promise<PrincipalRecord | undefined>;
  findByName(name: string): Promise<PrincipalRecord | undefined>;
  /** The principal with this id and its grants (ordered as `GrantIndex.list`), in one read: what a token grant needs. */
  getWithGrants(id: string): Promise<PrincipalWithGrants | undefined>;
  /** The same, by name. */
  findByNameWithGrants(name: string): Promise<PrincipalWithGrants | undefined>;
  list(kind?: PrincipalKind): Promise<PrincipalRecord[]>;
  count(): Promise<number>;
  update(id: string, changes: { disabled?: boolean; expiresAt?: number | null; description?: string | null }): Promise<boolean>;
  /** Deletes the principal with its credentials, grants and refresh tokens. */
  delete(id: string): Promise<boolean>;
}

export interface CredentialIndex {
  list(principalId: string): Promise<CredentialRecord[]>;
  /** One credential by id (what a refresh token records), undefined once it is removed or rotated. */
  get(id: string): Promise<CredentialRecord | undefined>;
  /** Replaces the credential with the same label (rotation), returning the replaced one's id. */
  put(credential: CredentialRecord): Promise<string | undefined>;
  /** Removes a credential by label; returns its id if it existed. */
  remove(principalId: string, label: string): Promise<string | undefined>;
}

export interface GrantIndex {
  list(principalId: string): Promise<GrantRecord[]>;
  /** Replaces the principal's grants with exactly these. */
  replace(principalId: string, grants: readonly GrantRecord[]): Promise<void>;
}

/** Which table a refresh token's `credentialId` is in: a secret (`credentials`) or a federated credential. */
export type CredentialKind = 'secret' | 'federated';

export interface RefreshTokenRecord {
  id: string;
  principalId: string;
  credentialId: string | undefined;
  /** Undefined for tokens recorded before it was (either table may hold the credential). */
  credentialKind: CredentialKind | undefined;
  expiresAt: number;
  createdAt: number;
  revokedAt: number | undefined;
}

export interface RefreshTokenIndex {
  add(token: RefreshTokenRecord): Promise<void>;
  get(id: string): Promise<RefreshTokenRecord | undefined>;
  /** Revokes every live refresh token of a principal (disable) or bought with a credential (rotation). */
  revoke(filter: { principalId: string } | { credentialId: string }, now: number): Promise<number>;
  /** Deletes tokens (revoked or not) that expired before `cutoff`; returns how many. */
  prune(cutoff: number): Promise<number>;
}

export interface SigningKeyRecord {
  kid: string;
  alg: string;
  privateJwk: string;
  publicJwk: string;
  createdAt: number;
  retiredAt: number | undefined;
  revokedAt: number | undefined;
}

export interface SigningKeyIndex {
  /** Keys not revoked, and not retired or retired after `retiredAfter` (still needed to verify), newest first. */
  listUsable(retiredAfter: number): Promise<SigningKeyRecord[]>;
  /** Every key, revoked and long retired ones too, newest first (for owners: `berth keys list`). */
  list(): Promise<SigningKeyRecord[]>;
  /** The kids of every revoked key. */
  listRevoked(): Promise<string[]>;
  add(key: SigningKeyRecord): Promise<void>;
  /** Marks every active key except `keep` as retired at `now`. */
  retireAllExcept(keep: string, now: number): Promise<void>;
  /** Revokes (and retires) a key; false if there is no such key or it was revoked already. */
  revoke(kid: string, now: number): Promise<boolean>;
}

/** Values that identify this installation, written once and shared by every replica. */
export interface InstanceSettingsIndex {
  /** The value stored under `name`, storing `value` first if there is none (the first writer wins a race). */
  getOrCreate(name: string, value: string, now: number): Promise<string>;
}

export interface AuditEntry {
  at: number;
  event: string;
  principalId?: string | undefined;
  principalName?: string | undefined;
  clientAddress?: string | undefined;
  detail?: unknown;
  /** The repository the entry is about, when it is about one (filterable). */
  repository?: string | undefined;
}

/** Which entries `AuditIndex.list` returns: every given filter holds. */
export interface AuditQuery {
  limit: number;
  principalId?: string | undefined;
  repository?: string | undefined;
  /** An event name, or a prefix ending in `.` (`admin.`: every admin change). */
  event?: string | undefined;
  /** Recorded at or after (ms). */
  since?: number | undefined;
  /** Recorded before (ms). */
  until?: number | undefined;
  /** Only entries with a smaller id: the next page of a newest-first listing. */
  before?: number | undefined;
}

export interface AuditIndex {
  /**
   * Appends an entry. With `exportTo`, the entry is also queued for each of those export sinks
   * (`AuditExportIndex`), in the same transaction: an entry is never recorded without its exports.
   */
  append(entry: AuditEntry, exportTo?: readonly string[]): Promise<void>;
  /** Newest first. */
  list(options: AuditQuery): Promise<Array<AuditEntry & { id: number }>>;
  /** Deletes entries recorded before `cutoff` (in bounded batches); returns how many. */
  prune(cutoff: number): Promise<number>;
}

export interface AnonymousPullIndex {
  list(): Promise<string[]>;
  replace(patterns: readonly string[], now: number): Promise<void>;
}

/** One condition on a token claim; exactly one of `equals`, `glob`, `oneOf` is set. */
export interface ClaimCondition {
  claim: string;
  equals?: string | undefined;
  glob?: string | undefined;
  oneOf?: string[] | undefined;
}

export interface FederatedCredentialRecord {
  id: string;
  principalId: string;
  name: string;
  issuer: string;
  audiences: string[];
  /** Exact `sub`, or a glob: `*` any run of characters, `?` one (`shared/glob.ts`, wildcard grammar). */
  subject: string;
  conditions: ClaimCondition[];
  createdAt: number;
}

export interface FederatedCredentialIndex {
  list(principalId: string): Promise<FederatedCredentialRecord[]>;
  /** One credential by id (what a refresh token records), undefined once it is removed or replaced. */
  get(id: string): Promise<FederatedCredentialRecord | undefined>;
  /** Every credential trusting `issuer`, across principals (for exchanges without a client id). */
  listByIssuer(issuer: string): Promise<FederatedCredentialRecord[]>;
  /**
   * The principal named `name`, its grants and its credentials trusting `issuer` (by name), in one
   * read: what every federated grant naming its client reads. Undefined when no principal has that name.
   */
  ofPrincipalNamed(name: string, issuer: string): Promise<(PrincipalWithGrants & { credentials: FederatedCredentialRecord[] }) | undefined>;
  /** Inserts or replaces (by principal and name); returns the replaced credential's id. */
  put(credential: FederatedCredentialRecord): Promise<string | undefined>;
  /** Removes by name; returns its id if it existed. */
  remove(principalId: string, name: string): Promise<string | undefined>;
}

export interface AuthMetadata {
  readonly principals: PrincipalIndex;
  readonly credentials: CredentialIndex;
  readonly grants: GrantIndex;
  readonly refreshTokens: RefreshTokenIndex;
  readonly signingKeys: SigningKeyIndex;
  readonly audit: AuditIndex;
  readonly anonymousPull: AnonymousPullIndex;
  readonly federatedCredentials: FederatedCredentialIndex;
  readonly instance: InstanceSettingsIndex;
}
