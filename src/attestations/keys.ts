/**
 * The keys Berth signs push attestations with. They live in the metadata store (like the token
 * keys), so every replica signs with the same key; a key older than `rotationMs` is replaced on the
 * next signature, and `rotate()` replaces it by hand. Retired keys are never deleted: their public
 * halves are published (`publicKeys()`, `/api/v1/attestations/keys`) because the attestations they
 * signed stay valid for as long as the image exists.
 *
 * ECDSA P-256 with SHA-256: what cosign generates (`cosign generate-key-pair`) and what every
 * verifier of key-based Sigstore bundles accepts. A key's hint (the bundle's
 * `verificationMaterial.publicKey.hint`) is the hex sha256 of its SubjectPublicKeyInfo DER.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { AttestationKeyIndex, AttestationKeyRecord } from '../metadata/attestation-store.js';
import type { Clock } from '../shared/clock.js';

export const attestationKeyAlgorithm = 'ecdsa-p256-sha256';

/** A replica picks up another replica's rotation within this. */
const reloadMs = 60_000;

export interface PublicAttestationKey {
  hint: string;
  algorithm: string;
  /** SubjectPublicKeyInfo PEM: give it to `cosign verify-attestation --key`, Kyverno or policy-controller. */
  publicKeyPem: string;
  createdAt: number;
  retiredAt: number | undefined;
}

export interface SigningKey {
  hint: string;
  privateKey: KeyObject;
}

/** The hint of a public key: hex sha256 of its SubjectPublicKeyInfo DER. */
export function keyHint(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

export class AttestationKeys {
  private records: AttestationKeyRecord[] = [];
  private loadedAt = Number.NEGATIVE_INFINITY;
  private active: SigningKey | undefined;

  constructor(
    private readonly store: AttestationKeyIndex,
    private readonly clock: Clock,
    private readonly rotationMs: number,
  ) {}

  /** The active key; creates the first one, or a new one when the active key is older than the rotation period. */
  async signingKey(): Promise<SigningKey> {
    if (this.clock.now() - this.loadedAt > reloadMs) await this.reload();
    const current = this.records.find((r) => r.retiredAt === undefined);
    const stale = current !== undefined && this.rotationMs > 0 && this.clock.now() - current.createdAt >= this.rotationMs;
    if (!current || stale) {
      await this.rotate();
      return this.signingKey();
    }
    if (this.active?.hint !== current.id) this.active = { hint: current.id, privateKey: createPrivateKey(current.privatePem) };
    return this.active;
  }

  /** Every key ever used, newest first, the active one (if any) without `retiredAt`. */
  async publicKeys(): Promise<PublicAttestationKey[]> {
    if (this.clock.now() - this.loadedAt > 1000) await this.reload();
    return this.records.map((r) => ({ hint: r.id, algorithm: r.algorithm, publicKeyPem: r.publicPem, createdAt: r.createdAt, retiredAt: r.retiredAt }));
  }

  /** Creates a new key and retires the active one (still published, still verifying). Returns the new key's hint. */
  async rotate(): Promise<string> {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const id = keyHint(publicKey);
    const now = this.clock.now();
    await this.store.addAndRetireOthers(
      {
        id,
        algorithm: attestationKeyAlgorithm,
        privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        createdAt: now,
        retiredAt: undefined,
      },
      now,
    );
    await this.reload();
    return id;
  }

  private async reload(): Promise<void> {
    this.records = await this.store.list();
    this.loadedAt = this.clock.now();
  }
}

/** A PEM public key as a verifier's trusted key, with its hint. Throws on a malformed key. */
export function trustedKey(pem: string): { hint: string; publicKeyPem: string } {
  const key = createPublicKey(pem);
  return { hint: keyHint(key), publicKeyPem: key.export({ type: 'spki', format: 'pem' }).toString() };
}
