import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RegistryError } from './errors.js';
import { isValidRepositoryName, parseReference, parseReferenceForRead } from './names.js';

describe('repository names', () => {
  for (const good of ['a', 'library/ubuntu', 'a/b/c/d', 'my-app', 'my__app', 'my.app', 'team-a/svc_1', '0/1']) {
    it(`accepts ${good}`, () => assert.equal(isValidRepositoryName(good), true));
  }
  for (const bad of ['', 'A', 'a/', '/a', 'a//b', 'a/../b', '..', '.', 'a/./b', 'a b', 'a\\b', '-a', 'a-', 'a___b', 'a%2f..', 'x'.repeat(256)]) {
    it(`refuses ${JSON.stringify(bad.slice(0, 40))}`, () => assert.equal(isValidRepositoryName(bad), false));
  }
});

describe('references', () => {
  it('parses tags and digests', () => {
    assert.deepEqual(parseReference('v1.0_rc-1'), { kind: 'tag', tag: 'v1.0_rc-1' });
    assert.equal(parseReference(`sha256:${'a'.repeat(64)}`).kind, 'digest');
  });
  for (const bad of ['.hidden', '-x', 'a'.repeat(129), '..', 'a/b']) {
    it(`refuses tag ${JSON.stringify(bad.slice(0, 20))} with MANIFEST_INVALID`, () => {
      assert.throws(
        () => parseReference(bad),
        (err: unknown) => err instanceof RegistryError && err.code === 'MANIFEST_INVALID',
      );
    });
  }
  it('refuses a malformed digest reference with DIGEST_INVALID', () => {
    assert.throws(
      () => parseReference('sha256:xyz'),
      (err: unknown) => err instanceof RegistryError && err.code === 'DIGEST_INVALID',
    );
  });
});

describe('references as a read takes them', () => {
  const isUnknown = (err: unknown) => err instanceof RegistryError && err.code === 'MANIFEST_UNKNOWN' && err.status === 404;
  it('reads tags and digests as parseReference does', () => {
    assert.deepEqual(parseReferenceForRead('latest'), { kind: 'tag', tag: 'latest' });
    assert.equal(parseReferenceForRead(`sha512:${'a'.repeat(128)}`).kind, 'digest');
  });
  // The conformance suite's `.INVALID_MANIFEST_NAME`, and others outside the tag grammar.
  for (const bad of ['.INVALID_MANIFEST_NAME', '-x', 'a'.repeat(129), '..', 'a/b', '']) {
    it(`answers ${JSON.stringify(bad.slice(0, 24))} with 404 MANIFEST_UNKNOWN`, () => {
      assert.throws(() => parseReferenceForRead(bad), isUnknown);
    });
  }
  it('answers a well-formed digest of an algorithm Berth does not store with 404 MANIFEST_UNKNOWN', () => {
    assert.throws(() => parseReferenceForRead(`sha384:${'a'.repeat(96)}`), isUnknown);
    assert.throws(() => parseReferenceForRead(`md5:${'0'.repeat(32)}`), isUnknown);
  });
  it('keeps a malformed digest DIGEST_INVALID (400)', () => {
    for (const bad of ['sha256:abc', 'sha256:baddigeststring', `sha512:${'a'.repeat(64)}`, `SHA256:${'a'.repeat(64)}`]) {
      assert.throws(
        () => parseReferenceForRead(bad),
        (err: unknown) => err instanceof RegistryError && err.code === 'DIGEST_INVALID' && err.status === 400,
        bad,
      );
    }
  });
});
