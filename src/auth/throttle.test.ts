import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LoginThrottle, type Admission, type LoginAttempt, type ThrottleSettings } from './throttle.js';

const settings: ThrottleSettings = {
  maxFailures: 2,
  addressMaxFailures: 8,
  principalMaxFailures: 6,
  windowMs: 1000,
  slowedIntervalMs: 100,
  knownAddressTtlMs: 10_000,
};

function admitted(admission: Admission): LoginAttempt {
  assert.equal(admission.kind, 'admitted', 'expected the attempt to be admitted');
  return (admission as { attempt: LoginAttempt }).attempt;
}

function refusedFor(admission: Admission): number {
  assert.equal(admission.kind, 'refused', 'expected the attempt to be refused');
  return (admission as { retryAfterMs: number }).retryAfterMs;
}

describe('login throttle', () => {
  it('blocks a name at an address after maxFailures until the window passes, an address after addressMaxFailures', () => {
    const clock = { t: 0, now: () => clock.t };
    const throttle = new LoginThrottle(settings, clock);
    admitted(throttle.admit('a', 'x')).failed();
    admitted(throttle.admit('a', 'x')).failed();
    assert.equal(refusedFor(throttle.admit('a', 'x')), 1000);
    // The same name from elsewhere, and another name from the same address, still get in.
    admitted(throttle.admit('a', 'y')).abandoned();
    for (let i = 0; i < 6; i++) admitted(throttle.admit(`other${i}`, 'x')).failed();
    assert.ok(refusedFor(throttle.admit('fresh', 'x')) > 0);
    clock.t = 1000;
    admitted(throttle.admit('a', 'x')).abandoned();
    admitted(throttle.admit('fresh', 'x')).abandoned();
  });

  it('a success clears the pair but not the address', () => {
    const clock = { t: 0, now: () => clock.t };
    const throttle = new LoginThrottle({ ...settings, addressMaxFailures: 2 }, clock);
    admitted(throttle.admit('a', 'x')).failed();
    admitted(throttle.admit('a', 'x')).succeeded();
    admitted(throttle.admit('a', 'x')).failed();
    assert.ok(refusedFor(throttle.admit('b', 'x')) > 0);
  });

  it('counts attempts in flight: parallel attempts beyond the limit are refused at once, as busy', () => {
    const throttle = new LoginThrottle(settings, { now: () => 0 });
    const attempts = Array.from({ length: 40 }, () => throttle.admit('victim', 'x'));
    assert.equal(attempts.filter((a) => a.kind === 'admitted').length, 2);
    assert.equal(refusedFor(attempts[39] as Admission), 1000);
    assert.equal((attempts[39] as { busy?: true }).busy, true);
  });

  it('admitWhenFree: parallel right passwords all get in, one slot at a time', async () => {
    const throttle = new LoginThrottle(settings, { now: () => 0 });
    let inFlight = 0;
    let most = 0;
    const results = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const admission = await throttle.admitWhenFree('ci', 'nat', 5_000);
        const attempt = admitted(admission);
        most = Math.max(most, ++inFlight);
        await new Promise((resolve) => setImmediate(resolve));
        inFlight--;
        attempt.succeeded();
        return admission.kind;
      }),
    );
    assert.deepEqual(new Set(results), new Set(['admitted']));
    assert.equal(most, settings.maxFailures, 'never more verifications at once than maxFailures');
  });

  it('admitWhenFree: parallel wrong passwords run maxFailures at a time and the rest are refused once they failed', async () => {
    const throttle = new LoginThrottle(settings, { now: () => 0 });
    let verified = 0;
    const results = await Promise.all(
      Array.from({ length: 40 }, async () => {
        const admission = await throttle.admitWhenFree('victim', 'x', 5_000);
        if (admission.kind === 'refused') return admission;
        verified++;
        await new Promise((resolve) => setImmediate(resolve));
        admission.attempt.failed();
        return admission;
      }),
    );
    assert.equal(verified, settings.maxFailures);
    const refused = results.filter((a) => a.kind === 'refused');
    assert.equal(refused.length, 40 - settings.maxFailures);
    assert.ok(
      refused.every((a) => !('busy' in a)),
      'refused for the failures, not for being busy',
    );
  });

  it('admitWhenFree gives up after maxWaitMs while the slots stay taken', async () => {
    const throttle = new LoginThrottle(settings, { now: () => 0 });
    const held = [admitted(throttle.admit('a', 'x')), admitted(throttle.admit('a', 'x'))];
    const admission = await throttle.admitWhenFree('a', 'x', 20);
    assert.equal(admission.kind, 'refused');
    for (const attempt of held) attempt.abandoned();
    admitted(await throttle.admitWhenFree('a', 'x', 20)).abandoned();
  });

  it('slows a name attacked from many addresses instead of locking it, and never slows an address it logged in from', () => {
    const clock = { t: 0, now: () => clock.t };
    const throttle = new LoginThrottle(settings, clock);
    admitted(throttle.admit('victim', 'home')).succeeded();
    for (let i = 0; i < 6; i++) admitted(throttle.admit('victim', `bot${i}`)).failed();
    // Slowed: one attempt per interval, one at a time.
    const first = admitted(throttle.admit('victim', 'bot100'));
    assert.equal(refusedFor(throttle.admit('victim', 'bot101')), 100);
    first.failed();
    clock.t = 50;
    assert.equal(refusedFor(throttle.admit('victim', 'cafe')), 50);
    clock.t = 100;
    // A real user at a new address gets in once the interval has passed: slowed, not locked.
    admitted(throttle.admit('victim', 'cafe')).succeeded();
    // The address it logged in from before is not slowed at all.
    const fromHome = [throttle.admit('victim', 'home'), throttle.admit('victim', 'home')];
    assert.ok(fromHome.every((a) => a.kind === 'admitted'));
  });

  it('names of any length cost one fixed-size key', () => {
    const throttle = new LoginThrottle(settings, { now: () => 0 });
    admitted(throttle.admit('x'.repeat(100_000), 'x')).failed();
    admitted(throttle.admit('x'.repeat(100_000), 'x')).failed();
    assert.ok(refusedFor(throttle.admit('x'.repeat(100_000), 'x')) > 0);
  });
});
