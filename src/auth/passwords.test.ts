import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decoyHash, generateSecret, hashSecret, verifySecret } from './passwords.js';

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

  it('makes decoys that no secret matches, with the parameters real hashes have', async () => {
    const real = await hashSecret('secret');
    const decoy = decoyHash();
    const parameters = (encoded: string) => encoded.split('$').slice(0, 4).join('$');
    assert.equal(parameters(decoy), parameters(real));
    assert.equal(decoy.split('$').length, real.split('$').length);
    assert.notEqual(decoyHash(), decoy);
    assert.equal(await verifySecret('secret', decoy), false);
    assert.equal(await verifySecret('', decoy), false);
  });
});
