/**
 * Tokens Berth has already verified, so a token presented again costs a lookup instead of a
 * verification (~9 µs of CPU by the token's MAC, ~50 by an ES256 signature). One rule for every cache of verified
 * tokens (access tokens on the registry path, refresh tokens at the token endpoint): an entry counts
 * only until its token expires and only while the key that signed it is not revoked, asked on every
 * hit (keys.ts answers from memory, re-reading the revocations every few seconds). Bounded: when
 * full it is emptied, so a flood of distinct tokens costs one check each, as it would without it.
 */
import type { Clock } from '../shared/clock.js';
import { InvalidTokenError } from './invalid-token.js';

export interface VerifiedToken {
  /** When the token expires (ms). */
  expiresAt: number;
  /** The id of the key that signed it. */
  keyId: string | undefined;
}

export class VerifiedTokens<T extends VerifiedToken> {
  private readonly entries = new Map<string, T>();

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
    if (this.entries.size >= this.options.max) this.entries.clear();
    this.entries.set(token, verified);
    return verified;
  }
}
