import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { splitImage } from './credential-provider.js';
import { refreshTime, withoutPullSecret, withPullSecret } from './pull-secret.js';
import { mergeConditions, sameJson } from './status.js';
import type { PullBindingSpec } from './types.js';
import { secretNameFor, serverAllowed, SpecError, validateSpec } from './validation.js';

const spec = (over: Partial<{ server: unknown; scopes: unknown; sa: unknown; target: unknown; clientId: unknown }> = {}): PullBindingSpec =>
  ({
    registry: { server: 'server' in over ? over.server : 'Registry.Example.com:5000', scopes: 'scopes' in over ? over.scopes : ['repository:team/app:pull'] },
    auth: { workloadIdentity: { serviceAccountRef: 'sa' in over ? over.sa : 'puller' }, ...('clientId' in over ? { clientId: over.clientId } : {}) },
    ...('target' in over ? { serviceAccountName: over.target } : {}),
  }) as PullBindingSpec;

describe('validateSpec', () => {
  it('normalises: lower-cased server, sorted unique scopes, default target service account', () => {
    const valid = validateSpec(spec({ scopes: ['repository:team/b:pull', 'repository:team/a:pull', 'repository:team/b:pull'] }));
    assert.equal(valid.server, 'registry.example.com:5000');
    assert.deepEqual(valid.scopes, ['repository:team/a:pull', 'repository:team/b:pull']);
    assert.equal(valid.targetServiceAccount, 'default');
    assert.equal(valid.clientId, undefined);
  });

  const refused: Array<[string, Parameters<typeof spec>[0], RegExp]> = [
    ['a scheme', { server: 'https://registry.example.com' }, /without a scheme/],
    ['a path', { server: 'registry.example.com/team' }, /without a scheme or path/],
    ['a port out of range', { server: 'registry.example.com:70000' }, /host\[:port\]/],
    ['no scopes', { scopes: [] }, /scopes is required/],
    ['a push scope', { scopes: ['repository:team/app:pull,push'] }, /only pull/],
    ['a wildcard', { scopes: ['repository:team/*:pull'] }, /no wildcards/],
    ['a registry scope', { scopes: ['registry:catalog:*'] }, /repository:<name>:pull/],
    ['an upper-case name', { scopes: ['repository:Team/app:pull'] }, /not a repository name/],
    ['too many scopes', { scopes: Array.from({ length: 33 }, (_, i) => `repository:r${i}:pull`) }, /at most 32/],
    ['a bad service account', { sa: 'Puller!' }, /serviceAccountRef/],
    ['a bad target', { target: '' }, /serviceAccountName/],
    ['a client id with spaces', { clientId: 'a b' }, /clientId/],
  ];
  for (const [what, over, message] of refused) {
    it(`refuses ${what}`, () => {
      assert.throws(
        () => validateSpec(spec(over)),
        (err: unknown) => err instanceof SpecError && message.test(err.message),
      );
    });
  }
});

describe('serverAllowed', () => {
  it('matches exact host:port entries and *.domain suffixes, nothing when empty', () => {
    assert.ok(serverAllowed('registry.example.com', ['registry.example.com']));
    assert.ok(!serverAllowed('registry.example.com:5000', ['registry.example.com']));
    assert.ok(serverAllowed('a.registry.example.com:5000', ['*.registry.example.com']));
    assert.ok(!serverAllowed('registry.example.com', ['*.registry.example.com']));
    assert.ok(!serverAllowed('evilregistry.example.com', ['*.registry.example.com']));
    assert.ok(!serverAllowed('registry.example.com', []));
  });
});

describe('pull secret helpers', () => {
  it('names the Secret after the binding, hashing names that would be too long', () => {
    assert.equal(
      secretNameFor({ metadata: { name: 'app' } }, () => 'x'),
      'app-berth-pull',
    );
    const long = secretNameFor({ metadata: { name: 'a'.repeat(250) } }, () => '0123456789abcdef0123');
    assert.ok(long.length <= 253 && long.endsWith('-0123456789abcdef-berth-pull'), long);
  });

  it('adds its entry after the others and removes only its own', () => {
    assert.deepEqual(withPullSecret([{ name: 'theirs' }], 'ours'), [{ name: 'theirs' }, { name: 'ours' }]);
    assert.equal(withPullSecret([{ name: 'ours' }], 'ours'), undefined);
    assert.deepEqual(withoutPullSecret([{ name: 'theirs' }, { name: 'ours' }], 'ours'), [{ name: 'theirs' }]);
    assert.equal(withoutPullSecret([{ name: 'theirs' }], 'ours'), undefined);
  });

  it('refreshes at the configured fraction of the lifetime', () => {
    assert.equal(refreshTime(1000, 3000, 0.5), 2000);
    assert.equal(refreshTime(1000, 11_000, 0.8), 9000);
  });
});

describe('conditions', () => {
  it('moves lastTransitionTime only when the status changes', () => {
    const first = mergeConditions(undefined, [{ type: 'Ready', status: 'True', reason: 'A', message: 'a' }], 1, Date.parse('2026-01-01T00:00:00Z'));
    const same = mergeConditions(first, [{ type: 'Ready', status: 'True', reason: 'B', message: 'b' }], 2, Date.parse('2026-01-02T00:00:00Z'));
    assert.equal(same[0]?.lastTransitionTime, '2026-01-01T00:00:00Z');
    assert.equal(same[0]?.observedGeneration, 2);
    const flipped = mergeConditions(same, [{ type: 'Ready', status: 'False', reason: 'C', message: 'c' }], 2, Date.parse('2026-01-03T00:00:00Z'));
    assert.equal(flipped[0]?.lastTransitionTime, '2026-01-03T00:00:00Z');
  });

  it('compares status objects whatever their key order', () => {
    assert.ok(sameJson({ a: 1, b: [{ c: 2, d: 3 }] }, { b: [{ d: 3, c: 2 }], a: 1 }));
    assert.ok(!sameJson({ a: 1 }, { a: 2 }));
  });
});

describe('splitImage (credential provider)', () => {
  it('finds the registry host and the repository', () => {
    assert.deepEqual(splitImage('registry.example.com:5000/team/app:v1'), { host: 'registry.example.com:5000', repository: 'team/app' });
    assert.deepEqual(splitImage('127.0.0.1:5000/team/app@sha256:abc'), { host: '127.0.0.1:5000', repository: 'team/app' });
    assert.deepEqual(splitImage('localhost/app'), { host: 'localhost', repository: 'app' });
    assert.deepEqual(splitImage('library/nginx:1'), { host: undefined, repository: 'library/nginx' });
  });
});
