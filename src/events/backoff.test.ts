import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffCeiling, backoffDelay } from './backoff.js';

describe('webhook retry backoff', () => {
  const policy = { baseMs: 1000, maxMs: 60_000 };

  it('doubles the ceiling after each failure up to the maximum', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffCeiling(policy, n)),
      [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000],
    );
    assert.equal(backoffCeiling(policy, 500), 60_000);
  });

  it('waits a uniformly random time between 0 and the ceiling (full jitter)', () => {
    assert.equal(
      backoffDelay(policy, 3, () => 0),
      0,
    );
    assert.equal(
      backoffDelay(policy, 3, () => 0.5),
      2000,
    );
    assert.equal(
      backoffDelay(policy, 3, () => 0.999999),
      3999,
    );
    for (let i = 0; i < 200; i++) {
      const delay = backoffDelay(policy, 5);
      assert.ok(delay >= 0 && delay < 16_000, String(delay));
    }
  });
});
