import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FederatedCredentialRecord } from '../auth-store.js';
import { openSqliteMetadata } from './open.js';

const credential = (id: string, principalId: string, name: string, issuer: string): FederatedCredentialRecord => ({
  id,
  principalId,
  name,
  issuer,
  audiences: ['berth', `aud-${name}`],
  subject: `repo:acme/${name}:*`,
  conditions: [{ claim: 'ref', equals: 'refs/heads/main' }],
  createdAt: 1000 + id.length,
});

describe('federated credentials of a principal named by a client id (SQLite)', () => {
  it('reads the principal and its credentials for one issuer, by name; a principal without any is found with none', async () => {
    const metadata = await openSqliteMetadata(':memory:');
    try {
      const principal = { id: 'p-ci', kind: 'service' as const, name: 'ci', description: 'builds', disabled: false, expiresAt: 9_000_000, createdAt: 500 };
      await metadata.auth.principals.create(principal);
      await metadata.auth.principals.create({
        id: 'p-other',
        kind: 'service',
        name: 'other',
        description: undefined,
        disabled: true,
        expiresAt: undefined,
        createdAt: 600,
      });
      const github = 'https://token.actions.githubusercontent.com';
      // Stored out of name order, with one for another issuer and one of another principal for the same issuer.
      await metadata.auth.federatedCredentials.put(credential('c-2', 'p-ci', 'zeta', github));
      await metadata.auth.federatedCredentials.put(credential('c-1', 'p-ci', 'alpha', github));
      await metadata.auth.federatedCredentials.put(credential('c-3', 'p-ci', 'gitlab', 'https://gitlab.example'));
      await metadata.auth.federatedCredentials.put(credential('c-4', 'p-other', 'beta', github));

      const found = await metadata.auth.federatedCredentials.ofPrincipalNamed('ci', github);
      assert.deepEqual(found?.principal, await metadata.auth.principals.findByName('ci'));
      assert.deepEqual(found?.principal, principal);
      assert.deepEqual(found?.credentials, [credential('c-1', 'p-ci', 'alpha', github), credential('c-2', 'p-ci', 'zeta', github)]);
      assert.deepEqual(
        found?.credentials,
        (await metadata.auth.federatedCredentials.list('p-ci')).filter((c) => c.issuer === github),
        'the same as listing all and keeping the issuer’s',
      );

      const none = await metadata.auth.federatedCredentials.ofPrincipalNamed('ci', 'https://unknown.example');
      assert.deepEqual(none, { principal, credentials: [] }, 'a principal with no credential for the issuer is still found');
      const disabled = await metadata.auth.federatedCredentials.ofPrincipalNamed('other', github);
      assert.equal(disabled?.principal.disabled, true, 'found as stored; the token service refuses it');
      assert.equal(await metadata.auth.federatedCredentials.ofPrincipalNamed('nobody', github), undefined);
      assert.equal(await metadata.auth.federatedCredentials.ofPrincipalNamed('p-ci', github), undefined, 'by name, not by id');
    } finally {
      await metadata.close();
    }
  });
});
