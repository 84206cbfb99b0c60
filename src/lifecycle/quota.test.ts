import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, parseDuration, parseSize, quotaInput } from '../api/lifecycle.js';
import { overQuota, quotaState, RateLimiter } from './quota.js';

const quota = quotaInput.parse({ name: 'team-a', repositories: ['team-a/**'], limit: '1GiB', warnAt: 0.5 });

describe('quotas', () => {
  it('parse sizes and durations as people write them', () => {
    assert.equal(parseSize('10GiB'), 10 * 1024 ** 3);
    assert.equal(parseSize('500MB'), 500e6);
    assert.equal(parseSize('1.5 KiB'), 1536);
    assert.equal(parseSize('12'), 12);
    assert.equal(parseSize('10 parsecs'), undefined);
    assert.equal(parseDuration('30d'), 30 * 86_400_000);
    assert.equal(parseDuration('90m'), 90 * 60_000);
    assert.equal(parseDuration('1 day'), undefined);
    assert.equal(formatDuration(3 * 86_400_000), '3d');
    assert.equal(formatDuration(90 * 60_000), '90m');
  });

  it('are ok, warning or exceeded by their usage', () => {
    assert.equal(quotaState(quota, 0), 'ok');
    assert.equal(quotaState(quota, 1024 ** 3 / 2), 'warning');
    assert.equal(quotaState(quota, 1024 ** 3), 'exceeded');
  });

  it('refuse what does not fit, saying the limit and the usage', () => {
    assert.equal(overQuota(quota, 100, 1000, 'this push'), undefined);
    const message = overQuota(quota, 1024 ** 3 - 10, 100, 'this upload');
    assert.match(message ?? '', /quota team-a \(team-a\/\*\*\) is 1\.0 GiB; 1024\.0 MiB is in use and this upload adds 100 B/);
    assert.equal(overQuota(quota, 1024 ** 3 + 5, 0, 'a re-push'), undefined, 'what adds nothing always fits');
  });
});

describe('RateLimiter', () => {
  it('allows an hour’s worth at once, then the hourly rate, and says how long to wait', () => {
    const limiter = new RateLimiter();
    const hour = 3_600_000;
    for (let i = 0; i < 10; i++) assert.equal(limiter.take('k', 1, 10, 0), undefined);
    const wait = limiter.take('k', 1, 10, 0);
    assert.equal(wait, hour / 10);
    assert.equal(limiter.peek('k', 1, 10, hour / 10), undefined);
    assert.equal(limiter.take('other', 1, 10, 0), undefined, 'keys are separate');
    // One request larger than the allowance passes when nothing was spent (else it never could).
    assert.equal(limiter.take('big', 50, 10, 0), undefined);
    assert.notEqual(limiter.take('big', 1, 10, 0), undefined);
  });
});
