/**
 * Token signing keys. Keys live in the metadata store so every replica signs with the same key and
 * verifies every replica's tokens. Rotation adds a new key and retires the old ones, which stay
 * published (and accepted) for `overlapMs`, the longest token lifetime, so no valid token breaks.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import type { SigningKeyIndex } from '../metadata/auth-store.js';
import type { Clock } from '../shared/clock.js';

/** Asymmetric only; HMAC is never accepted, so a public key can never double as a MAC secret. */
export const signingAlgorithm = 'ES256';
export const acceptedAlgorithms = ['ES256', 'EdDSA'];

export interface LoadedKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
  retiredAt: number | undefined;
}

/** A reload on an unknown `kid` (another replica rotated) happens at most this often. */
const reloadIntervalMs = 1000;
/** How stale the signing key may be: a replica picks up another replica's rotation within this. */
const signingReloadMs = 60_000;

export class KeyRing {
  private keys: LoadedKey[] = [];
  private loadedAt = Number.NEGATIVE_INFINITY;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly store: SigningKeyIndex,
    private readonly clock: Clock,
    private readonly overlapMs: number,
  ) {}

  /** The newest active key, creating the first one if the store has none. */
  async signingKey(): Promise<LoadedKey> {
    if (this.keys.length === 0 || this.clock.now() - this.loadedAt > signingReloadMs) await this.reload(true);
    let active = this.keys.find((k) => k.retiredAt === undefined);
    if (!active) {
      await this.rotate();
      active = this.keys.find((k) => k.retiredAt === undefined);
    }
    if (!active) throw new Error('no active signing key after rotation');
    return active;
  }

  /** The public key for a `kid`, reloading from the store (rate limited) if it is not known yet. */
  async verificationKey(kid: string | undefined): Promise<CryptoKey | undefined> {
    if (!kid) return undefined;
    let key = this.keys.find((k) => k.kid === kid);
    if (!key) {
      await this.reload(false);
      key = this.keys.find((k) => k.kid === kid);
    }
    return key?.publicKey;
  }

  async jwks(): Promise<{ keys: JWK[] }> {
    await this.reload(false);
    if (this.keys.length === 0) await this.signingKey();
    return { keys: this.keys.map((k) => k.publicJwk) };
  }

  /** Creates a new signing key and retires the others (still published for the overlap). */
  async rotate(): Promise<string> {
    const { privateKey, publicKey } = await generateKeyPair(signingAlgorithm, { extractable: true });
    const publicJwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(publicJwk);
    const now = this.clock.now();
    await this.store.add({
      kid,
      alg: signingAlgorithm,
      privateJwk: JSON.stringify(await exportJWK(privateKey)),
      publicJwk: JSON.stringify({ ...publicJwk, kid, alg: signingAlgorithm, use: 'sig' }),
      createdAt: now,
      retiredAt: undefined,
    });
    await this.store.retireAllExcept(kid, now);
    await this.reload(true);
    return kid;
  }

  private async reload(force: boolean): Promise<void> {
    if (!force && this.clock.now() - this.loadedAt < reloadIntervalMs) return;
    this.loading ??= (async () => {
      try {
        const records = await this.store.listUsable(this.clock.now() - this.overlapMs);
        this.keys = await Promise.all(
          records.map(async (r) => {
            const publicJwk = JSON.parse(r.publicJwk) as JWK;
            return {
              kid: r.kid,
              alg: r.alg,
              privateKey: (await importJWK(JSON.parse(r.privateJwk) as JWK, r.alg)) as CryptoKey,
              publicKey: (await importJWK(publicJwk, r.alg)) as CryptoKey,
              publicJwk,
              retiredAt: r.retiredAt,
            };
          }),
        );
        this.loadedAt = this.clock.now();
      } finally {
        this.loading = undefined;
      }
    })();
    await this.loading;
  }
}
