import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { loadConfig } from '../config/load.js';
import type { Metadata } from '../metadata/store.js';
import { openSqliteMetadata } from '../metadata/sql/open.js';
import { IssuerKeys } from './issuers.js';
import { TokenTester } from './token-test.js';
import { FederationVerifier } from './verifier.js';

const issuer = 'https://ci.example.com';

describe('the federated token test', () => {
  let metadata: Metadata;
  let tester: TokenTester;
  let key: CryptoKey;
  let stranger: CryptoKey;
  const mint = (claims: Record<string, unknown>, options: { expiresIn?: number; with?: CryptoKey } = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(issuer)
      .setIssuedAt(now - 10)
      .setExpirationTime(now + (options.expiresIn ?? 300))
      .sign(options.with ?? key);
  };

  before(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    key = pair.privateKey;
    stranger = (await generateKeyPair('ES256')).privateKey;
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const config = loadConfig({ env: {}, overrides: { federation: { issuers: [{ issuer, jwks: { keys: [jwk as Record<string, unknown>] } }] } } });
    metadata = await openSqliteMetadata(':memory:');
    const store = metadata.auth;
    for (const [id, name, subject] of [
      ['p1', 'deployer', 'repo:acme/app:*'],
      ['p2', 'other', 'repo:acme/other:*'],
    ] as const) {
      await store.principals.create({ id, kind: 'service', name, description: undefined, disabled: false, expiresAt: undefined, createdAt: Date.now() });
      await store.federatedCredentials.put({
        id: `c-${id}`,
        principalId: id,
        name: 'ci',
        issuer,
        audiences: ['berth'],
        subject,
        conditions: [{ claim: 'owner_id', equals: '1234' }],
        createdAt: Date.now(),
      });
    }
    const keys = new IssuerKeys(config.federation.issuers, 1000, 0);
    tester = new TokenTester(new FederationVerifier(store, keys, config.federation, { now: () => Date.now() }, async () => 'urn:berth:test-instance'));
  });
  after(() => metadata.close());

  it('accepts a token a credential trusts, naming the principal and the credential', async () => {
    const result = await tester.test({ token: await mint({ sub: 'repo:acme/app:ref:refs/heads/main', aud: 'berth', owner_id: '1234' }) });
    assert.equal(result.decision.accepted, true);
    assert.deepEqual(result.decision.principal, { id: 'p1', name: 'deployer' });
    assert.equal(result.decision.credential, 'ci');
    assert.deepEqual(
      result.candidates.map((c) => [c.principal.name, c.accepted]),
      [
        ['deployer', true],
        ['other', false],
      ],
    );
  });

  it('says which check fails, and shows every check of every candidate', async () => {
    const result = await tester.test({ token: await mint({ sub: 'repo:acme/app:ref:refs/heads/main', aud: 'berth', owner_id: '999' }) });
    assert.equal(result.decision.accepted, false);
    assert.equal(result.decision.check, 'condition');
    assert.match(result.decision.message, /^Refused \(condition\): claim owner_id \("999"\) does not meet its condition in credential ci/);
    const deployer = result.candidates.find((c) => c.principal.name === 'deployer');
    assert.deepEqual(
      deployer?.checks.map((c) => [c.check, c.ok]),
      [
        ['audience', true],
        ['subject', true],
        ['condition', false],
      ],
    );
    assert.equal(deployer?.checks[2]?.detail, 'owner_id is "999"; must equal "1234"');
  });

  it('checks the signature and expiry of a token, not of claims given instead', async () => {
    const forged = await tester.test({ token: await mint({ sub: 'repo:acme/app:x', aud: 'berth', owner_id: '1234' }, { with: stranger }) });
    assert.equal(forged.decision.check, 'signature');
    const expired = await tester.test({ token: await mint({ sub: 'repo:acme/app:x', aud: 'berth', owner_id: '1234' }, { expiresIn: -120 }) });
    assert.equal(expired.decision.check, 'expired');
    const claims = await tester.test({ claims: { iss: issuer, sub: 'repo:acme/app:x', aud: ['berth'], owner_id: '1234' } });
    assert.equal(claims.decision.accepted, true);
    assert.deepEqual(claims.skipped, ['signature', 'expiry', 'token age']);
  });

  it('refuses an untrusted issuer, a malformed token, a wrong audience, and narrows to one client id', async () => {
    assert.equal((await tester.test({ claims: { iss: 'https://nobody.example', sub: 'x', aud: 'berth' } })).decision.check, 'issuer');
    assert.equal((await tester.test({ token: 'not-a-jwt' })).decision.check, 'malformed');
    assert.equal((await tester.test({ claims: { iss: issuer, sub: 'repo:acme/app:x', aud: 'other', owner_id: '1234' } })).decision.check, 'audience');
    const narrowed = await tester.test({ claims: { iss: issuer, sub: 'repo:acme/app:x', aud: 'berth', owner_id: '1234' }, clientId: 'other' });
    assert.equal(narrowed.decision.check, 'subject');
    assert.deepEqual(
      narrowed.candidates.map((c) => c.principal.name),
      ['other'],
    );
  });
});
