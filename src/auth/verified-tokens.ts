/**
 * Tokens Berth has already verified, so a token presented again costs a lookup instead of a
 * verification (~9 µs of CPU by the token's MAC, ~50 by an ES256 signature). One rule for every cache of verified
 * tokens (access tokens on the registry path, refresh tokens at the token endpoint): an entry counts
 * only until its token expires and only while the key that signed it is not revoked, asked on every
 * hit (keys.ts answers from memory, re-reading the revocations every few seconds). Bounded: when
 * full it is emptied.
 *
 * A token is kept from its second check on, not its first (the "doorkeeper" of TinyLFU admission):
 * a client presents its token for every request of a pull, so the second check comes at once,
 * while a token that is presented once (a CI job's single request, a flood of distinct tokens)
 * would only take a place, promote its ~1.5 KB to V8's old generation and push out tokens in use.
 * Which tokens were checked is remembered as fingerprints in a fixed table (32 KiB, no objects):
 * a fingerprint that collides only keeps a token one check early or forgets one, never decides
 * whether a token is valid.
 */
import type { Clock } from '../shared/clock.js';
import { InvalidTokenError } from './invalid-token.js';

export interface VerifiedToken {
  /** When the token expires (ms). */
  expiresAt: number;
  /** The id of the key that signed it. */
  keyId: string | undefined;
}

/** Slots of the table of fingerprints of tokens checked once (a power of two). */
const seenSlots = 8192;
/** The fingerprint reads this many characters from the end: of a JWT, its signature's. */
const fingerprintChars = 32;

export class VerifiedTokens<T extends VerifiedToken> {
  private readonly entries = new Map<string, T>();
  private readonly seen = new Int32Array(seenSlots);

  constructor(
    private readonly options: {
      max: number;
      clock: Clock;
      keyRevoked: (kid: string | undefined) => Promise<boolean>;
    },
  ) {}

  /** What `check` says of `token` (it verifies the signature, or throws), or what it said before. */
  async verify(token: string, check: (token: string) => Promise<T>): Promise<T> {
    const hit = this.entries.get(token);
    if (hit) {
      if (await this.options.keyRevoked(hit.keyId)) {
        this.entries.delete(token);
        throw new InvalidTokenError('the key that signed this token was revoked');
      }
      if (hit.expiresAt > this.options.clock.now()) return hit;
      this.entries.delete(token);
    }
    const verified = await check(token);
    if (!this.checkedBefore(token)) return verified;
    if (this.entries.size >= this.options.max) this.entries.clear();
    this.entries.set(token, verified);
    return verified;
  }

  /** True if `token` (by its fingerprint) was checked before; otherwise records that it now was. */
  private checkedBefore(token: string): boolean {
    // FNV-1a over the token's last characters; never 0, so an empty slot matches nothing.
    let hash = 0x811c9dc5;
    for (let i = Math.max(0, token.length - fingerprintChars); i < token.length; i++) hash = Math.imul(hash ^ token.charCodeAt(i), 0x01000193);
    hash |= 1;
    const slot = hash & (seenSlots - 1);
    if (this.seen[slot] === hash) return true;
    this.seen[slot] = hash;
    return false;
  }
}
