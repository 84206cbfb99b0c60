import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changeTags, cloudEvent, imageChangeEvents, imagePayload, pingPayload } from './payload.js';

const at = Date.parse('2026-11-22T10:00:00.000Z');
const request = { id: 'r1', host: 'registry.example.com', method: 'PUT', useragent: 'docker/27' };
const actor = { principalId: 'p1', principalName: 'ci', provenance: { repository: 'acme/app', sha: 'abc' } };

describe('webhook payloads', () => {
  it('a push is the ACR shape with the pusher and provenance in the berth extension', () => {
    const payload = imagePayload('e1', at, {
      action: 'push',
      repository: 'tripinsights/web',
      digest: 'sha256:aa',
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      size: 524,
      tag: 'v1',
      actor,
      request,
    });
    assert.deepEqual(payload, {
      id: 'e1',
      timestamp: '2026-11-22T10:00:00.000Z',
      action: 'push',
      target: {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: 524,
        digest: 'sha256:aa',
        length: 524,
        repository: 'tripinsights/web',
        tag: 'v1',
      },
      request,
      berth: { actor: { principalId: 'p1', principalName: 'ci', provenance: { repository: 'acme/app', sha: 'abc' } } },
    });
    assert.deepEqual(Object.keys(payload.target ?? {}), ['mediaType', 'size', 'digest', 'length', 'repository', 'tag']);
  });

  it('a digest delete lists the removed tags; without auth or a request those parts are null or absent', () => {
    const payload = imagePayload('e2', at, {
      action: 'delete',
      repository: 'app',
      digest: 'sha256:bb',
      mediaType: undefined,
      size: undefined,
      tag: undefined,
      removedTags: ['a', 'b'],
      actor: undefined,
      request: undefined,
    });
    assert.deepEqual(payload.target, { digest: 'sha256:bb', repository: 'app' });
    assert.equal(payload.request, undefined);
    assert.deepEqual(payload.berth, { actor: null, removedTags: ['a', 'b'] });
    assert.deepEqual(changeTags({ tag: undefined, removedTags: ['a', 'b'] }), ['a', 'b']);
    assert.deepEqual(changeTags({ tag: 'x', removedTags: undefined }), ['x']);
  });

  it('CloudEvents 1.0 structured mode wraps the ACR payload as data', () => {
    const acr = imagePayload('e3', at, {
      action: 'push',
      repository: 'team/app',
      digest: 'sha256:cc',
      mediaType: 'm',
      size: 1,
      tag: undefined,
      actor: undefined,
      request,
    });
    assert.deepEqual(cloudEvent(acr), {
      specversion: '1.0',
      id: 'e3',
      source: '/v2/team/app',
      type: 'dev.berth.image.pushed',
      time: '2026-11-22T10:00:00.000Z',
      subject: 'team/app@sha256:cc',
      datacontenttype: 'application/json',
      data: acr,
    });
    const ping = cloudEvent(pingPayload('e4', at, 'my hook', undefined, undefined));
    assert.equal(ping.type, 'dev.berth.webhook.ping');
    assert.equal(ping.source, '/api/v1/webhooks/my%20hook');
    assert.equal(ping.subject, undefined);
  });

  it('a change becomes one outbox row: a fresh id, the tags filters see, the payload serialised once', () => {
    const change = {
      action: 'delete' as const,
      repository: 'team/app',
      digest: 'sha256:dd',
      mediaType: 'm',
      size: 7,
      tag: undefined,
      removedTags: ['v1', 'v2'],
      actor,
      request,
    };
    const [row, ...more] = imageChangeEvents(change, at);
    assert.ok(row);
    assert.equal(more.length, 0);
    assert.match(row.id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      { ...row, id: 'x', payload: 'x' },
      { id: 'x', action: 'delete', repository: 'team/app', tags: ['v1', 'v2'], digest: 'sha256:dd', payload: 'x' },
    );
    assert.equal(row.payload, JSON.stringify(imagePayload(row.id, at, change)));
    assert.notEqual(imageChangeEvents(change, at)[0]?.id, row.id);
  });
});
