import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateSecret, hashSecret, verifySecret } from './passwords.js';

describe('secret hashing', () => {
  it('verifies the right secret and refuses others', async () => {
    const secret = generateSecret();
    const hash = await hashSecret(secret);
    assert.doesNotMatch(hash, new RegExp(secret));
    assert.equal(await verifySecret(secret, hash), true);
    assert.equal(await verifySecret(`${secret}x`, hash), false);
    assert.equal(await verifySecret(secret, 'plain$text'), false);
  });

  it('salts every hash', async () => {
    assert.notEqual(await hashSecret('same'), await hashSecret('same'));
  });
});
