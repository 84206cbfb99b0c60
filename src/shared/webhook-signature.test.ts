import assert from 'node:assert/strict';
import { test } from 'node:test';
import { signDelivery, verifyDelivery } from './webhook-signature.js';

const now = 1_700_000_000_000;
const body = Buffer.from('{"id":"e1","action":"push"}');

test('a delivery signed with the secret verifies', () => {
  const header = signDelivery(['s3cret'], body, now);
  assert.match(header, /^t=1700000000,v1=[0-9a-f]{64}$/);
  assert.deepEqual(verifyDelivery(['s3cret'], header, body, now + 10_000), { ok: true, timestamp: 1_700_000_000 });
});

test('any of several secrets verifies (rotation on either side)', () => {
  const header = signDelivery(['old', 'new'], body, now);
  assert.equal(verifyDelivery(['new'], header, body, now).ok, true);
  assert.equal(verifyDelivery(['other', 'old'], signDelivery(['old'], body, now), body, now).ok, true);
});

test('refusals name the failing check', () => {
  const header = signDelivery(['s3cret'], body, now);
  const cases: Array<[string | undefined, Buffer, number, string[], RegExp]> = [
    [undefined, body, now, ['s3cret'], /missing/],
    ['v1=' + 'a'.repeat(64), body, now, ['s3cret'], /timestamp/],
    ['t=1700000000', body, now, ['s3cret'], /no v1/],
    [header, body, now + 301_000, ['s3cret'], /more than 300s/],
    [header, body, now - 301_000, ['s3cret'], /more than 300s/],
    [header, Buffer.from('{"id":"e1","action":"delete"}'), now, ['s3cret'], /does not match/],
    [header, body, now, ['wrong'], /does not match/],
    [header.replace(/t=\d+/, 't=1700000001'), body, now, ['s3cret'], /does not match/],
  ];
  for (const [h, b, at, secrets, reason] of cases) {
    const result = verifyDelivery(secrets, h, b, at);
    assert.equal(result.ok, false, String(h));
    if (!result.ok) assert.match(result.reason, reason);
  }
});
