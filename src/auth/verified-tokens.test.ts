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

  /** Presents `token` twice, so it is kept (a token is kept from its second check on). */
  const remember = async (
    cache: VerifiedTokens<VerifiedToken & { n: number }>,
    token: string,
    check: (t: string) => Promise<VerifiedToken & { n: number }>,
  ) => {
    await cache.verify(token, check);
    return cache.verify(token, check);
  };

  it('keeps a token from its second check on, then answers from memory until it expires', async () => {
    const { clock, cache, check, checks } = setup();
    assert.equal((await cache.verify('a1', check)).n, 1);
    assert.equal((await cache.verify('a1', check)).n, 2, 'checked once before: checked again, and now kept');
    assert.equal((await cache.verify('a1', check)).n, 2);
    assert.equal((await cache.verify('a1', check)).n, 2);
    assert.equal(checks(), 2);
    clock.t = 2_000;
    assert.equal((await cache.verify('a1', check)).n, 3, 'expired: checked again (and the check decides)');
  });

  it('does not keep tokens presented once, so a flood of them leaves the tokens in use alone', async () => {
    const { cache, check, checks } = setup(3);
    await remember(cache, 'a-in-use', check);
    for (let i = 0; i < 100; i++) await cache.verify(`flood-${i}`, check);
    const before = checks();
    assert.equal((await cache.verify('a-in-use', check)).n, 2, 'still answered from memory');
    assert.equal(checks(), before);
  });

  it('refuses a remembered token once its key is revoked, and forgets it', async () => {
    const { revoked, cache, check, checks } = setup();
    await remember(cache, 'a1', check);
    await remember(cache, 'b1', check);
    revoked.add('key-a');
    await assert.rejects(cache.verify('a1', check), InvalidTokenError);
    assert.equal((await cache.verify('b1', check)).n, 4, 'tokens of other keys still count');
    revoked.delete('key-a');
    assert.equal((await cache.verify('a1', check)).n, 5, 'forgotten: checked afresh');
    assert.equal(checks(), 5);
  });

  it('does not remember a token the check refuses', async () => {
    const { cache } = setup();
    let calls = 0;
    const refuse = async () => {
      calls++;
      throw new InvalidTokenError('bad signature');
    };
    for (let i = 0; i < 3; i++) await assert.rejects(cache.verify('x', refuse), InvalidTokenError);
    assert.equal(calls, 3);
  });

  it('holds at most max tokens', async () => {
    const { cache, check, checks } = setup(3);
    for (const token of ['a1', 'a2', 'a3', 'a4']) await remember(cache, token, check);
    assert.equal(checks(), 8);
    await cache.verify('a1', check);
    assert.equal(checks(), 9, 'full at the fourth: emptied, so a1 was checked again');
    await cache.verify('a4', check);
    assert.equal(checks(), 9, 'the fourth was kept after emptying');
  });
});
