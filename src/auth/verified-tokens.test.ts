import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidTokenError } from './invalid-token.js';
import { VerifiedTokens, type VerifiedToken } from './verified-tokens.js';

describe('VerifiedTokens', () => {
  const setup = (max = 10) => {
    const clock = { t: 1_000, now: () => clock.t };
    const revoked = new Set<string>();
    const cache = new VerifiedTokens<VerifiedToken & { n: number }>({ max, clock, keyRevoked: async (kid) => kid !== undefined && revoked.has(kid) });
    let checks = 0;
    const check = async (token: string) => ({ expiresAt: 2_000, keyId: token.startsWith('b') ? 'key-b' : 'key-a', n: ++checks });
    return { clock, revoked, cache, check, checks: () => checks };
  };

  it('checks a token once, then answers from memory until it expires', async () => {
    const { clock, cache, check, checks } = setup();
    assert.equal((await cache.verify('a1', check)).n, 1);
    assert.equal((await cache.verify('a1', check)).n, 1);
    assert.equal(checks(), 1);
    clock.t = 2_000;
    assert.equal((await cache.verify('a1', check)).n, 2, 'expired: checked again (and the check decides)');
  });

  it('refuses a remembered token once its key is revoked, and forgets it', async () => {
    const { revoked, cache, check, checks } = setup();
    await cache.verify('a1', check);
    await cache.verify('b1', check);
    revoked.add('key-a');
    await assert.rejects(cache.verify('a1', check), InvalidTokenError);
    assert.equal((await cache.verify('b1', check)).n, 2, 'tokens of other keys still count');
    revoked.delete('key-a');
    assert.equal((await cache.verify('a1', check)).n, 3, 'forgotten: checked afresh');
    assert.equal(checks(), 3);
  });

  it('does not remember a token the check refuses', async () => {
    const { cache } = setup();
    let calls = 0;
    const refuse = async () => {
      calls++;
      throw new InvalidTokenError('bad signature');
    };
    await assert.rejects(cache.verify('x', refuse), InvalidTokenError);
    await assert.rejects(cache.verify('x', refuse), InvalidTokenError);
    assert.equal(calls, 2);
  });

  it('holds at most max tokens', async () => {
    const { cache, check, checks } = setup(3);
    for (const token of ['a1', 'a2', 'a3', 'a4']) await cache.verify(token, check);
    await cache.verify('a1', check);
    assert.equal(checks(), 5, 'full at the fourth: emptied, so a1 was checked again');
  });
});
