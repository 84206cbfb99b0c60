import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FederatedCredentialRecord, PrincipalRecord } from '../auth-store.js';
import type { Metadata } from '../store.js';
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

const github = 'https://token.actions.githubusercontent.com';
const ci: PrincipalRecord = { id: 'p-ci', kind: 'service', name: 'ci', description: 'builds', disabled: false, expiresAt: 9_000_000, createdAt: 500 };
const other: PrincipalRecord = { id: 'p-other', kind: 'service', name: 'other', description: undefined, disabled: true, expiresAt: undefined, createdAt: 600 };

/** Two principals: `ci` with three grants (stored out of order) and three credentials, `other` with none and one. */
async function seeded(): Promise<Metadata> {
  const metadata = await openSqliteMetadata(':memory:');
  await metadata.auth.principals.create(ci);
  await metadata.auth.principals.create(other);
  await metadata.auth.grants.replace('p-ci', [
    { pattern: 'team/**', permission: 'pull' },
    { pattern: 'apps/"quoted"\\', permission: 'push' },
    { pattern: 'apps/"quoted"\\', permission: 'delete' },
  ]);
  // Stored out of name order, with one for another issuer and one of another principal for the same issuer.
  await metadata.auth.federatedCredentials.put(credential('c-2', 'p-ci', 'zeta', github));
  await metadata.auth.federatedCredentials.put(credential('c-1', 'p-ci', 'alpha', github));
  await metadata.auth.federatedCredentials.put(credential('c-3', 'p-ci', 'gitlab', 'https://gitlab.example'));
  await metadata.auth.federatedCredentials.put(credential('c-4', 'p-other', 'beta', github));
  return metadata;
}

describe('a principal read with its grants in one statement (SQLite)', () => {
  it('by id and by name: the same record and the same grants, in the same order, as reading them apart', async () => {
    const metadata = await seeded();
    try {
      const grants = await metadata.auth.grants.list('p-ci');
      assert.equal(grants.length, 3);
      assert.deepEqual(await metadata.auth.principals.getWithGrants('p-ci'), { principal: ci, grants });
      assert.deepEqual(await metadata.auth.principals.findByNameWithGrants('ci'), { principal: ci, grants });
      assert.deepEqual(await metadata.auth.principals.getWithGrants('p-other'), { principal: other, grants: [] }, 'no grants: an empty list');
      assert.equal(await metadata.auth.principals.getWithGrants('p-nobody'), undefined);
      assert.equal(await metadata.auth.principals.findByNameWithGrants('p-ci'), undefined, 'by name, not by id');
    } finally {
      await metadata.close();
    }
  });
});

describe('federated credentials of a principal named by a client id (SQLite)', () => {
  it('reads the principal, its grants and its credentials for one issuer, by name; a principal without any is found with none', async () => {
    const metadata = await seeded();
    try {
      const grants = await metadata.auth.grants.list('p-ci');
      const found = await metadata.auth.federatedCredentials.ofPrincipalNamed('ci', github);
      assert.deepEqual(found?.principal, ci);
      assert.deepEqual(found?.grants, grants, 'every grant once, whatever the number of credentials');
      assert.deepEqual(found?.credentials, [credential('c-1', 'p-ci', 'alpha', github), credential('c-2', 'p-ci', 'zeta', github)]);
      assert.deepEqual(
        found?.credentials,
        (await metadata.auth.federatedCredentials.list('p-ci')).filter((c) => c.issuer === github),
        'the same as listing all and keeping the issuer’s',
      );

      const none = await metadata.auth.federatedCredentials.ofPrincipalNamed('ci', 'https://unknown.example');
      assert.deepEqual(none, { principal: ci, grants, credentials: [] }, 'a principal with no credential for the issuer is still found');
      const disabled = await metadata.auth.federatedCredentials.ofPrincipalNamed('other', github);
      assert.deepEqual(disabled, { principal: other, grants: [], credentials: [credential('c-4', 'p-other', 'beta', github)] }, 'found as stored');
      assert.equal(await metadata.auth.federatedCredentials.ofPrincipalNamed('nobody', github), undefined);
      assert.equal(await metadata.auth.federatedCredentials.ofPrincipalNamed('p-ci', github), undefined, 'by name, not by id');
    } finally {
      await metadata.close();
    }
  });
});
