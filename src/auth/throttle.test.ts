import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LoginThrottle } from './throttle.js';

describe('login throttle', () => {
  it('blocks a name after maxFailures until the window passes, an address after 4x', () => {
    const clock = { t: 0, now: () => clock.t };
    const throttle = new LoginThrottle(2, 1000, clock);
    throttle.fail(['name:a', 'address:x']);
    assert.equal(throttle.retryAfter(['name:a']), 0);
    throttle.fail(['name:a', 'address:x']);
    assert.equal(throttle.retryAfter(['name:a']), 1000);
    assert.equal(throttle.retryAfter(['address:x']), 0);
    for (let i = 0; i < 6; i++) throttle.fail(['address:x']);
    assert.ok(throttle.retryAfter(['address:x']) > 0);
    clock.t = 1000;
    assert.equal(throttle.retryAfter(['name:a', 'address:x']), 0);
  });

  it('a success clears the name but not the address', () => {
    const throttle = new LoginThrottle(1, 1000, { now: () => 0 });
    throttle.fail(['name:a', 'address:x']);
    throttle.succeed('name:a');
    assert.equal(throttle.retryAfter(['name:a']), 0);
  });
});
