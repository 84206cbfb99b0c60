import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { retentionInput, type RetentionInput } from '../api/lifecycle.js';
import { planRepository, type RepositorySnapshot, type SnapshotManifest } from './retention.js';

const hour = 3_600_000;
const day = 24 * hour;
const now = 100 * day;

const digest = (n: number | string) => `sha256:${String(n).padStart(64, '0')}`;

function manifest(id: number | string, createdAt: number, extra: Partial<SnapshotManifest> = {}): SnapshotManifest {
  return {
    digest: digest(id),
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: 500,
    createdAt,
    subject: undefined,
    artifactType: undefined,
    children: [],
    lastPulledAt: undefined,
    ...extra,
  };
}

function snapshot(manifests: SnapshotManifest[], tags: Array<[string, number | string, number]>): RepositorySnapshot {
  return { repository: 'ci/app', at: now, manifests, tags: tags.map(([name, id, updatedAt]) => ({ name, digest: digest(id), updatedAt })) };
}

function rule(input: Partial<RetentionInput>) {
  return retentionInput.parse({ name: 'test', repositories: ['ci/**'], conditions: { keepNewest: 1 }, ...input });
}

const plan = (r: ReturnType<typeof rule>, s: RepositorySnapshot, minimumAgeMs = hour) => planRepository(r, s, now, { minimumAgeMs });
const deleted = (p: ReturnType<typeof plan>) => p.actions.filter((a) => a.action === 'delete').map((a) => a.digest);

describe('planRepository (retention)', () => {
  it('keeps the newest N selected images by push time and deletes the rest, saying why', () => {
    const s = snapshot(
      [1, 2, 3, 4].map((i) => manifest(i, i * day)),
      [1, 2, 3, 4].map((i) => [`ci-${i}`, i, i * day] as [string, number, number]),
    );
    const p = plan(rule({ tags: { include: ['ci-*'] }, conditions: { keepNewest: 2 } }), s);
    assert.deepEqual(deleted(p), [digest(2), digest(1)]);
    assert.equal(p.candidates, 4);
    assert.match(p.actions[0]?.reason ?? '', /not among the newest 2 \(number 3\)/);
    assert.deepEqual(p.actions[0]?.tags, ['ci-2']);
  });

  it('leaves tags the filters do not select, and only removes the selected tags of an image that has others', () => {
    const s = snapshot(
      [manifest(1, day), manifest(2, 2 * day), manifest(3, 3 * day)],
      [
        ['ci-1', 1, day],
        ['v1.0.0', 1, day],
        ['ci-2', 2, 2 * day],
        ['release', 3, 3 * day],
      ],
    );
    const p = plan(rule({ tags: { include: ['ci-*'] }, conditions: { olderThan: 0 }, allowEmpty: true }), s);
    assert.deepEqual(
      p.actions.map((a) => [a.action, a.digest, a.tags]),
      [
        ['untag', digest(1), ['ci-1']],
        ['delete', digest(2), ['ci-2']],
      ],
    );
  });

  it('never deletes what was pushed within the minimum age, and says so', () => {
    const s = snapshot(
      [manifest(1, now - 10 * 60_000), manifest(2, day)],
      [
        ['ci-1', 1, now - 10 * 60_000],
        ['ci-2', 2, day],
      ],
    );
    const p = plan(rule({ conditions: { olderThan: 0 }, allowEmpty: true }), s);
    assert.deepEqual(deleted(p), [digest(2)]);
    assert.equal(p.protected.length, 1);
    assert.match(p.protected[0]?.reason ?? '', /pushed 10m ago \(minimum age 1h\)/);
  });

  it('keeps a repository’s last image unless the rule allows emptying it', () => {
    const s = snapshot(
      [manifest(1, day), manifest(2, 2 * day)],
      [
        ['a', 1, day],
        ['b', 2, 2 * day],
      ],
    );
    const kept = plan(rule({ conditions: { olderThan: 0 } }), s);
    assert.deepEqual(deleted(kept), [digest(1)]);
    assert.match(kept.protected[0]?.reason ?? '', /last image of the repository/);
    assert.deepEqual(deleted(plan(rule({ conditions: { olderThan: 0 }, allowEmpty: true }), s)), [digest(2), digest(1)]);
  });

  it('combines conditions with match: all and match: any', () => {
    // 1: old and pulled recently; 2: old, never pulled; 3: new, never pulled.
    const s = snapshot(
      [manifest(1, 10 * day, { lastPulledAt: now - hour * 2 }), manifest(2, 20 * day), manifest(3, now - 2 * day)],
      [
        ['one', 1, 10 * day],
        ['two', 2, 20 * day],
        ['three', 3, now - 2 * day],
      ],
    );
    const conditions = { olderThan: '30d', notPulledFor: '7d' };
    assert.deepEqual(deleted(plan(rule({ conditions, match: 'all', allowEmpty: true }), s)), [digest(2)]);
    assert.deepEqual(deleted(plan(rule({ conditions, match: 'any', allowEmpty: true }), s)), [digest(2), digest(1)]);
    assert.throws(() => rule({ conditions }), /match: all or match: any/);
  });

  it('counts a pull of a platform manifest as a pull of its index', () => {
    const index = manifest('i', 10 * day, { mediaType: 'application/vnd.oci.image.index.v1+json', children: [digest('a'), digest('b')] });
    const s = snapshot(
      [index, manifest('a', 10 * day), manifest('b', 10 * day, { lastPulledAt: now - hour * 3 }), manifest(9, 11 * day)],
      [
        ['multi', 'i', 10 * day],
        ['other', 9, 11 * day],
      ],
    );
    assert.deepEqual(deleted(plan(rule({ conditions: { notPulledFor: '1d' }, allowEmpty: true }), s)), [digest(9)]);
  });

  it('deletes an index before its platform manifests, and keeps a platform manifest another index still lists', () => {
    const old = manifest('i1', day, { children: [digest('a'), digest('s')] });
    const kept = manifest('i2', 50 * day, { children: [digest('s')] });
    const s = snapshot(
      [old, kept, manifest('a', day), manifest('s', day)],
      [
        ['old', 'i1', day],
        ['new', 'i2', 50 * day],
      ],
    );
    const p = plan(rule({ conditions: { keepNewest: 1 } }), s);
    assert.deepEqual(deleted(p), [digest('i1'), digest('a')]);
    assert.deepEqual(p.actions[1]?.dependsOn, [digest('i1')]);
  });

  it('deletes referrers and fallback-tagged signatures after the image they describe, never alone', () => {
    const image = manifest(1, day);
    const sbom = manifest('r', 2 * day, { subject: digest(1), artifactType: 'application/spdx+json' });
    const signatureOfSbom = manifest('rs', 2 * day, { subject: digest('r') });
    const cosign = manifest('c', 2 * day);
    const newer = manifest(2, 50 * day);
    const s = snapshot(
      [image, sbom, signatureOfSbom, cosign, newer],
      [
        ['v1', 1, day],
        [`sha256-${'1'.padStart(64, '0')}.sig`, 'c', 2 * day],
        ['v2', 2, 50 * day],
      ],
    );
    const p = plan(rule({ conditions: { keepNewest: 1 } }), s);
    assert.deepEqual(deleted(p), [digest(1), digest('r'), digest('c'), digest('rs')]);
    assert.match(p.actions[1]?.reason ?? '', /referrer \(application\/spdx\+json\) of sha256:0000/);
    assert.match(p.actions[2]?.reason ?? '', /artifact tagged sha256-0+1\.sig/);
    // The newer image keeps everything; nothing describing it is a candidate of its own.
    assert.equal(p.candidates, 2);
  });

  it('protects an image whose signature was pushed within the minimum age', () => {
    const s = snapshot(
      [manifest(1, day), manifest('r', now - 60_000, { subject: digest(1) }), manifest(2, 50 * day)],
      [
        ['v1', 1, day],
        ['v2', 2, 50 * day],
      ],
    );
    const p = plan(rule({ conditions: { keepNewest: 1 } }), s);
    assert.deepEqual(p.actions, []);
    assert.equal(p.protected[0]?.digest, digest(1));
  });

  it('selects fallback tags only through a filter that names them, and untagged images only with untagged: true', () => {
    const sig = `sha256-${'f'.padStart(64, '0')}.sig`;
    const s = snapshot(
      [manifest('s', day), manifest('u', day), manifest(2, now - 2 * hour)],
      [
        [sig, 's', day],
        ['v2', 2, now - 2 * hour],
      ],
    );
    assert.deepEqual(deleted(plan(rule({ conditions: { olderThan: '1d' } }), s)), []);
    assert.deepEqual(deleted(plan(rule({ conditions: { olderThan: '1d' }, untagged: true }), s)), [digest('u')]);
    assert.deepEqual(deleted(plan(rule({ tags: { include: ['sha256-*.sig'] }, conditions: { olderThan: '1d' } }), s)), [digest('s')]);
  });

  it('never removes a write-once tag: the image it names keeps its manifest', () => {
    const s = snapshot(
      [manifest(1, day), manifest(2, day), manifest(3, 2 * day)],
      [
        ['v1.0.0', 1, day],
        ['ci-9', 1, day],
        ['v0.9.0', 2, day],
        ['ci-10', 3, 2 * day],
      ],
    );
    const p = planRepository(rule({ conditions: { olderThan: 0 }, allowEmpty: true }), s, now, {
      minimumAgeMs: hour,
      isProtectedTag: (t) => t.startsWith('v'),
    });
    assert.deepEqual(
      p.actions.map((a) => [a.action, a.digest, a.tags]),
      [
        ['delete', digest(3), ['ci-10']],
        ['untag', digest(1), ['ci-9']],
      ].sort((a, b) => (a[0] === 'untag' ? -1 : b[0] === 'untag' ? 1 : 0)),
    );
  });

  it('is the same plan for the same snapshot, whatever order the rows come in', () => {
    const manifests = [1, 2, 3, 4, 5].map((i) => manifest(i, day));
    const tags = [1, 2, 3, 4, 5].map((i) => [`t${i}`, i, day] as [string, number, number]);
    const r = rule({ conditions: { keepNewest: 2 } });
    const a = plan(r, snapshot(manifests, tags));
    const b = plan(r, snapshot([...manifests].reverse(), [...tags].reverse()));
    assert.deepEqual(a, b);
  });
});
