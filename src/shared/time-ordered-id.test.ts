import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { timeOrderedId } from './time-ordered-id.js';

const v7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('time-ordered ids (UUIDv7)', () => {
  it('are RFC 9562 version 7 UUIDs carrying their millisecond', () => {
    const at = Date.UTC(2026, 11, 6, 14, 30, 0, 123);
    const id = timeOrderedId(at);
    assert.match(id, v7);
    assert.equal(Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16), at);
    assert.equal(timeOrderedId(0).slice(0, 13), '00000000-0000');
  });

  it('sort by the time they were made, and never repeat within a millisecond', () => {
    const base = Date.UTC(2026, 0, 1);
    const ids = Array.from({ length: 2000 }, (_, i) => timeOrderedId(base + Math.floor(i / 100)));
    assert.equal(new Set(ids).size, ids.length);
    for (let i = 100; i < ids.length; i += 100) assert.ok(ids[i - 1]! < ids[i]!, `${ids[i - 1]} sorts before ${ids[i]}`);
    for (const id of ids) assert.match(id, v7);
  });
});
