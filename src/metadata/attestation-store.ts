/**
 * The keys that sign push attestations, as rows. Same contract as `store.ts`: injected `now`, one
 * implementation for SQLite and PostgreSQL in `sql/`. What a key is used for is decided in
 * `attestations/`.
 */

export interface AttestationKeyRecord {
  /** The key's hint (hex sha256 of its SubjectPublicKeyInfo DER). */
  id: string;
  algorithm: string;
  /** PKCS#8 PEM. */
  privatePem: string;
  /** SubjectPublicKeyInfo PEM. */
  publicPem: string;
  createdAt: number;
  retiredAt: number | undefined;
}

export interface AttestationKeyIndex {
  /** Every key, active and retired, newest first. */
  list(): Promise<AttestationKeyRecord[]>;
  /** Adds `key` and retires every other active key at `now`, in one transaction. */
  addAndRetireOthers(key: AttestationKeyRecord, now: number): Promise<void>;
}
