import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { signDelivery } from '../shared/webhook-signature.js';
import { MalformedNotification, authenticateDelivery, parseNotifications } from './notifications.js';

const digest = `sha256:${'a'.repeat(64)}`;
const now = 1_700_000_000_000;

describe('parseNotifications', () => {
  test('an ACR/Berth event is one notification; the header id stands in for a missing body id', () => {
    const body = Buffer.from(JSON.stringify({ action: 'push', target: { repository: 'tripinsights/api', tag: 'v1', digest, mediaType: 'x', size: 1 } }));
    assert.deepEqual(parseNotifications(body, 'hdr-1'), {
      envelope: false,
      notifications: [{ id: 'hdr-1', action: 'push', repository: 'tripinsights/api', tag: 'v1', digest }],
    });
    const withId = Buffer.from(JSON.stringify({ id: 'e1', action: 'Push', target: { repository: 'a/b', digest } }));
    assert.deepEqual(parseNotifications(withId, 'hdr').notifications, [{ id: 'e1', action: 'push', repository: 'a/b', tag: undefined, digest }]);
  });

  test('a Distribution envelope is one notification per event', () => {
    const body = Buffer.from(
      JSON.stringify({
        events: [
          { id: 'd1', action: 'push', target: { repository: 'a/b', tag: 'v1', digest, mediaType: 'application/vnd.oci.image.manifest.v1+json' } },
          { id: 'd2', action: 'pull', target: { repository: 'a/c', digest } },
        ],
      }),
    );
    const parsed = parseNotifications(body, undefined);
    assert.equal(parsed.envelope, true);
    assert.deepEqual(
      parsed.notifications.map((n) => [n.id, n.action, n.repository, n.tag]),
      [
        ['d1', 'push', 'a/b', 'v1'],
        ['d2', 'pull', 'a/c', undefined],
      ],
    );
  });

  test('a CloudEvent carries the ACR event in data', () => {
    const body = Buffer.from(
      JSON.stringify({
        specversion: '1.0',
        id: 'ce-1',
        source: '/v2/a/b',
        type: 'dev.berth.image.pushed',
        data: { id: 'ce-1', action: 'push', target: { repository: 'a/b', tag: 'v2', digest } },
      }),
    );
    assert.deepEqual(parseNotifications(body, undefined), {
      envelope: false,
      notifications: [{ id: 'ce-1', action: 'push', repository: 'a/b', tag: 'v2', digest }],
    });
    assert.throws(() => parseNotifications(Buffer.from('{"specversion":"1.0","id":"x"}'), undefined), /carry the event in data/);
  });

  test('an unreadable event of an envelope is marked, not fatal to the batch', () => {
    const body = Buffer.from(
      JSON.stringify({
        events: [
          { action: 'push', target: { repository: 7 } },
          { id: 'ok', action: 'push', target: { repository: 'a/b', tag: 'v1' } },
        ],
      }),
    );
    const parsed = parseNotifications(body, undefined).notifications;
    assert.equal(parsed[0]?.action, 'malformed');
    assert.match(parsed[0]?.problem ?? '', /events\.0\.target\.repository/);
    assert.equal(parsed[1]?.repository, 'a/b');
  });

  test('a ping needs no target', () => {
    assert.deepEqual(parseNotifications(Buffer.from('{"id":"p","action":"ping"}'), undefined).notifications[0]?.action, 'ping');
  });

  test('malformed bodies are refused with a reason', () => {
    const cases: Array<[string, RegExp]> = [
      ['not json', /not valid JSON/],
      ['[1,2]', /JSON object/],
      ['{"events": {}}', /events must be an array/],
      ['{"target": {}}', /action/],
      ['{"action": "push"}', /target must be an object/],
      ['{"action": "push", "target": {"repository": "Bad Name"}}', /valid repository name/],
      [`{"action": "push", "target": {"repository": "a/b", "tag": "bad tag!"}}`, /not a valid tag/],
      [`{"action": "push", "target": {"repository": "a/b", "digest": "sha256:xyz"}}`, /not a valid digest/],
    ];
    for (const [text, reason] of cases) {
      assert.throws(
        () => parseNotifications(Buffer.from(text), undefined),
        (err: unknown) => err instanceof MalformedNotification && reason.test(err.message),
        text,
      );
    }
  });
});

describe('authenticateDelivery', () => {
  const body = Buffer.from('{"action":"push"}');
  const secret = 'a-shared-secret-of-some-length';

  test('a Berth-Signature made with the secret passes', () => {
    const headers = { 'berth-signature': signDelivery([secret], body, now) };
    assert.deepEqual(authenticateDelivery(secret, headers, body, now, 300), { ok: true, method: 'signature' });
  });

  test('a bearer secret passes (for senders that cannot sign)', () => {
    assert.deepEqual(authenticateDelivery(secret, { authorization: `Bearer ${secret}` }, body, now, 300), { ok: true, method: 'bearer' });
  });

  test('wrong, stale or missing credentials fail with a reason', () => {
    const signed = signDelivery(['other-secret-entirely'], body, now);
    assert.deepEqual(authenticateDelivery(secret, { 'berth-signature': signed }, body, now, 300), {
      ok: false,
      reason: 'Berth-Signature does not match the body',
    });
    const stale = signDelivery([secret], body, now - 600_000);
    assert.match(String((authenticateDelivery(secret, { 'berth-signature': stale }, body, now, 300) as { reason: string }).reason), /more than 300s/);
    assert.deepEqual(authenticateDelivery(secret, { authorization: 'Bearer nope' }, body, now, 300), { ok: false, reason: 'the bearer secret does not match' });
    assert.match(String((authenticateDelivery(secret, { authorization: `Basic ${secret}` }, body, now, 300) as { reason: string }).reason), /not "Bearer/);
    assert.match(String((authenticateDelivery(secret, {}, body, now, 300) as { reason: string }).reason), /missing/);
  });

  test('a signed delivery is judged by its signature, not by a bearer header beside it', () => {
    const headers = { 'berth-signature': signDelivery(['wrong-secret-xxxxxxxx'], body, now), authorization: `Bearer ${secret}` };
    assert.equal(authenticateDelivery(secret, headers, body, now, 300).ok, false);
  });
});
