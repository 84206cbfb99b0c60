/**
 * Token signing keys. Keys live in the metadata store so every replica signs with the same key and
 * verifies every replica's tokens. Rotation adds a new key and retires the old ones, which stay
 * published (and accepted) for `overlapMs`, the longest token lifetime, so no valid token breaks.
 *
 * Revocation (`berth keys revoke KID`, after a leak) is immediate where it happens: that replica
 * drops the key at once. Every other replica re-reads the list of revoked kids at most
 * `revocationCheckMs` after its last look, on the first verification after that, so a token
 * signed with a revoked key is refused everywhere within `revocationCheckMs` (0: a query per
 * verification, refused at once everywhere). The verified-token cache of the authorizer asks
 * `isRevoked` on every hit, so it keeps nothing alive either.
 */
import { createHash, createPrivateKey, createPublicKey, createSecretKey, generateKeyPairSync, hkdfSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { SigningKeyIndex, SigningKeyRecord } from '../metadata/auth-store.js';
import type { Clock } from '../shared/clock.js';

/**
 * Asymmetric only: HMAC is never accepted as a token's `alg`, so a public key can never double as a
 * MAC secret. (The MAC in Berth's own tokens is keyed from the private key, `macKeyOf`.)
 */
export const signingAlgorithm = 'ES256';
export const acceptedAlgorithms = ['ES256', 'EdDSA'];

/** A JSON Web Key as stored and published (RFC 7517). */
export type JWK = JsonWebKey & { kid?: string; alg?: string; use?: string };

/** Keys are node:crypto KeyObjects: tokens are signed and verified with node:crypto (shared/jwt.ts). */
export interface LoadedKey {
  kid: string;
  alg: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: JWK;
  /** The key of the MAC Berth's tokens carry besides the signature (`claimsMac` in shared/jwt.ts). */
  macKey: KeyObject;
  retiredAt: number | undefined;
}

/**
 * The MAC key of a signing key: HKDF-SHA256 of its private scalar, bound to its `kid`. Derived, not
 * stored, so it is exactly as secret as the private key (whoever can sign can MAC, nobody else),
 * every replica computes the same one, and rotating or revoking the signing key does the same to it.
 */
export function macKeyOf(privateJwk: JsonWebKey, kid: string): KeyObject {
  if (typeof privateJwk.d !== 'string') throw new Error(`signing key ${kid} has no private part`);
  return createSecretKey(Buffer.from(hkdfSync('sha256', Buffer.from(privateJwk.d, 'base64url'), '', `berth token mac v1 ${kid}`, 32)));
}

/** RFC 7638 thumbprint of a public key: SHA-256 over its required members in lexicographic order. */
export function jwkThumbprint(jwk: JWK): string {
  const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

/** A reload on an unknown `kid` (another replica rotated) happens at most this often. */
const reloadIntervalMs = 1000;
/** How stale the signing key may be: a replica picks up another replica's rotation within this. */
const signingReloadMs = 60_000;

export class KeyRing {
  private keys: LoadedKey[] = [];
  private loadedAt = Number.NEGATIVE_INFINITY;
  private loading: Promise<void> | undefined;
  private revoked = new Set<string>();
  private revokedAt = Number.NEGATIVE_INFINITY;
  private revokedLoading: Promise<void> | undefined;

  constructor(
    private readonly store: SigningKeyIndex,
    private readonly clock: Clock,
    private readonly overlapMs: number,
    /** How old this replica's knowledge of revoked keys may be (see the module comment). */
    private readonly revocationCheckMs = 2000,
  ) {}

  /** The newest active key, creating the first one if the store has none. */
  async signingKey(): Promise<LoadedKey> {
    if (this.keys.length === 0 || this.clock.now() - this.loadedAt > signingReloadMs) await this.reload(true);
    let active = this.keys.find((k) => k.retiredAt === undefined);
    // Another replica revoked the key this one signs with: never sign another token with it.
    if (active && (await this.isRevoked(active.kid))) {
      await this.reload(true);
      active = this.keys.find((k) => k.retiredAt === undefined);
    }
    if (!active) {
      await this.rotate();
      active = this.keys.find((k) => k.retiredAt === undefined);
    }
    if (!active) throw new Error('no active signing key after rotation');
    return active;
  }

  /** The public key for a `kid`, reloading from the store (rate limited) if it is not known yet; never a revoked one. */
  async verificationKey(kid: string | undefined): Promise<KeyObject | undefined> {
    if (!kid || (await this.isRevoked(kid))) return undefined;
    let key = this.keys.find((k) => k.kid === kid);
    if (!key) {
      await this.reload(false);
      key = this.keys.find((k) => k.kid === kid);
    }
    return key?.publicKey;
  }

  /**
   * The MAC key of `kid`, if this replica has it loaded. Ask only after `verificationKey` returned
   * the key (that call refuses revoked keys and reloads on an unknown `kid`).
   */
  macKey(kid: string | undefined): KeyObject | undefined {
    return kid === undefined ? undefined : this.keys.find((k) => k.kid === kid)?.macKey;
  }

  /** True if `kid` was revoked, as far as this replica knew at most `revocationCheckMs` ago. */
  async isRevoked(kid: string): Promise<boolean> {
    if (this.clock.now() - this.revokedAt >= this.revocationCheckMs) {
      this.revokedLoading ??= (async () => {
        try {
          const kids = await this.store.listRevoked();
          this.revoked = new Set(kids);
          this.revokedAt = this.clock.now();
          if (this.keys.some((k) => this.revoked.has(k.kid))) this.keys = this.keys.filter((k) => !this.revoked.has(k.kid));
        } finally {
          this.revokedLoading = undefined;
        }
      })();
      await this.revokedLoading;
    }
    return this.revoked.has(kid);
  }

  async jwks(): Promise<{ keys: JWK[] }> {
    await this.reload(false);
    if (this.keys.length === 0) await this.signingKey();
    return { keys: this.keys.map((k) => k.publicJwk) };
  }

  /** Every key with its state, newest first (revoked and long-retired ones too). */
  async list(): Promise<SigningKeyRecord[]> {
    return this.store.list();
  }

  /** Creates a new signing key and retires the others (still published for the overlap). */
  async rotate(): Promise<string> {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const publicJwk = publicKey.export({ format: 'jwk' }) as JWK;
    const kid = jwkThumbprint(publicJwk);
    const now = this.clock.now();
    await this.store.add({
      kid,
      alg: signingAlgorithm,
      privateJwk: JSON.stringify(privateKey.export({ format: 'jwk' })),
      publicJwk: JSON.stringify(Object.assign({}, publicJwk, { kid, alg: signingAlgorithm, use: 'sig' })),
      createdAt: now,
      retiredAt: undefined,
      revokedAt: undefined,
    });
    await this.store.retireAllExcept(kid, now);
    await this.reload(true);
    return kid;
  }

  /**
   * Revokes a key: from now on this replica neither verifies nor signs with it (a new key is made
   * when it was the one signing). False if there is no such key or it was revoked already.
   */
  async revoke(kid: string): Promise<boolean> {
    const revoked = await this.store.revoke(kid, this.clock.now());
    this.revoked.add(kid);
    this.keys = this.keys.filter((k) => k.kid !== kid);
    return revoked;
  }

  private async reload(force: boolean): Promise<void> {
    if (!force && this.clock.now() - this.loadedAt < reloadIntervalMs) return;
    this.loading ??= (async () => {
      try {
        const records = await this.store.listUsable(this.clock.now() - this.overlapMs);
        this.keys = records.map((r) => {
          const publicJwk = JSON.parse(r.publicJwk) as JWK;
          const privateJwk = JSON.parse(r.privateJwk) as JsonWebKey;
          return {
            kid: r.kid,
            alg: r.alg,
            privateKey: createPrivateKey({ key: privateJwk, format: 'jwk' }),
            publicKey: createPublicKey({ key: publicJwk, format: 'jwk' }),
            publicJwk,
            macKey: macKeyOf(privateJwk, r.kid),
            retiredAt: r.retiredAt,
          };
        });
        this.loadedAt = this.clock.now();
      } finally {
        this.loading = undefined;
      }
    })();
    await this.loading;
  }
}
