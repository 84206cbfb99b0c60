import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openSqliteMetadata } from '../metadata/sql/open.js';
import type { Metadata } from '../metadata/store.js';
import type { Access } from './access.js';
import { KeyRing } from './keys.js';
import { InvalidTokenError, TokenService, type Identity } from './tokens.js';

/** Two token services on one store: two replicas sharing their signing keys. */
describe('access tokens a replica signed itself', () => {
  let metadata: Metadata;
  const clock = { t: 1_700_000_000_000, now: () => clock.t };
  const replica = () => {
    const keys = new KeyRing(metadata.auth.signingKeys, clock, 3_600_000);
    let checks = 0;
    const lookUp = keys.verificationKey.bind(keys);
    // Every signature check asks for the key first: counting the lookups counts the checks.
    keys.verificationKey = (kid) => {
      checks++;
      return lookUp(kid);
    };
    return { keys, tokens: new TokenService(keys, metadata.auth.refreshTokens, clock, { issuer: 'berth', service: 'berth' }), checks: () => checks };
  };
  const identity: Identity = {
    subject: 'p-1',
    name: 'ci',
    kind: 'service',
    credentialId: 'c-1',
    credentialKind: 'federated',
    provenance: { iss: 'https://issuer.example', sub: 'repo:team/app:ref:refs/heads/main' },
    sessionExpiresAt: clock.t + 600_000,
    scopeCeiling: [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }],
  };
  const access: Access[] = [{ type: 'repository', name: 'team/app', actions: ['pull'] }];

  before(async () => {
    metadata = await openSqliteMetadata(':memory:');
  });
  after(() => metadata.close());

  it('are known where they were signed without a signature check, with the claims a check elsewhere finds', async () => {
    const [a, b] = [replica(), replica()];
    const { token } = await a.tokens.issueAccess(identity, access, 300_000);
    const here = await a.tokens.verifyAccess(token);
    assert.equal(a.checks(), 0, 'the signing replica checks no signature');
    const there = await b.tokens.verifyAccess(token);
    assert.equal(b.checks(), 1, 'another replica checks it once');
    assert.deepEqual(here, there);
    assert.equal(here.expiresAt, clock.t + 300_000);
    assert.deepEqual(here.access, access);
  });

  it('still expire, and die with their key when it is revoked', async () => {
    const a = replica();
    const first = await a.tokens.issueAccess(identity, access, 60_000);
    const kid = (await a.keys.signingKey()).kid;
    clock.t += 61_000 + 30_000; // past expiry and the clock tolerance
    await assert.rejects(a.tokens.verifyAccess(first.token), InvalidTokenError);
    assert.equal(a.checks(), 1, 'an expired entry is checked afresh, and the check refuses it');
    const second = await a.tokens.issueAccess(identity, access, 60_000);
    await a.keys.revoke(kid);
    await assert.rejects(a.tokens.verifyAccess(second.token), InvalidTokenError);
  });
});
