import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { digestOf, parseDigest, tryParseDigest } from './digest.js';
import { RegistryError } from './errors.js';

const empty256 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

describe('digests', () => {
  it('parses sha256 and sha512 digests', () => {
    assert.equal(parseDigest(empty256).algorithm, 'sha256');
    const d512 = digestOf(Buffer.alloc(0), 'sha512');
    assert.equal(parseDigest(d512).encoded.length, 128);
  });

  for (const bad of [
    '',
    'sha256',
    'sha256:',
    'sha256:abc',
    `sha256:${'A'.repeat(64)}`,
    `sha256:${'a'.repeat(63)}/`,
    '../etc/passwd',
    `sha512:${'a'.repeat(64)}`,
  ]) {
    it(`rejects ${JSON.stringify(bad)} with DIGEST_INVALID`, () => {
      assert.throws(
        () => parseDigest(bad),
        (err: unknown) => err instanceof RegistryError && err.code === 'DIGEST_INVALID',
      );
    });
  }

  it('names the algorithm when a well-formed digest uses an unsupported one', () => {
    assert.throws(
      () => parseDigest('md5:d41d8cd98f00b204e9800998ecf8427e'),
      (err: unknown) => err instanceof RegistryError && err.code === 'DIGEST_INVALID' && /md5/.test(err.message),
    );
  });

  it('never yields a value with path characters', () => {
    assert.equal(tryParseDigest('sha256:../../x'), undefined);
  });
});
