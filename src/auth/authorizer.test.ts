import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { openSqliteMetadata } from '../metadata/sql/open.js';
import type { Metadata } from '../metadata/store.js';
import type { Access } from './access.js';
import { Authorizer } from './authorizer.js';
import { KeyRing } from './keys.js';
import { PrincipalService } from './principals.js';
import { TokenService, type Identity } from './tokens.js';

/** The decision table over a real token service and a real (in-memory SQLite) store. */
describe('Authorizer.decide', () => {
  let metadata: Metadata;
  let tokens: TokenService;
  let principals: PrincipalService;
  let authorizer: Authorizer;
  const clock = { now: () => 1_700_000_000_000 };
  let reader: Identity;
  const pullApp: Access[] = [{ type: 'repository', name: 'team/app', actions: ['pull'] }];
  const pushApp: Access[] = [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }];

  before(async () => {
    metadata = await openSqliteMetadata(':memory:');
    const keys = new KeyRing(metadata.auth.signingKeys, clock, 3_600_000);
    tokens = new TokenService(keys, metadata.auth.refreshTokens, clock, { issuer: 'berth', service: 'berth' });
    principals = new PrincipalService(metadata.auth, clock, { adminUser: { enabled: false, username: 'admin' }, bootstrap: {} }, pino({ level: 'silent' }));
    const { principal } = await principals.createPrincipal('user', 'reader', { grants: [{ pattern: 'team/*', permission: 'pull' }] });
    reader = { subject: principal.id, name: principal.name, kind: principal.kind };
    await metadata.auth.anonymousPull.replace(['public/*'], clock.now());
    authorizer = new Authorizer({
      enabled: true,
      verifyAccess: (token) => tokens.verifyAccess(token),
      keyRevoked: (kid) => tokens.keyRevoked(kid),
      grantsOf: (id) => principals.grantsOf(id),
      anonymousPull: metadata.auth.anonymousPull,
      clock,
    });
  });
  after(() => metadata.close());

  const token = async (identity: Identity, access: Access[]) => (await tokens.issueAccess(identity, access, 60_000)).token;

  it('lets a token-less pull through on the anonymous-pull patterns only', async () => {
    assert.deepEqual(await authorizer.decide(undefined, [{ type: 'repository', name: 'public/app', actions: ['pull'] }]), {
      kind: 'allowed',
      identity: undefined,
    });
    assert.deepEqual(await authorizer.decide(undefined, [{ type: 'repository', name: 'public/app', actions: ['pull', 'push'] }]), {
      kind: 'challenge',
      reason: 'missing',
    });
    assert.deepEqual(await authorizer.decide(undefined, pullApp), { kind: 'challenge', reason: 'missing' });
    assert.deepEqual(await authorizer.decide(undefined, []), { kind: 'challenge', reason: 'missing' }, 'a token route needs a token');
    const catalog: Access[] = [{ type: 'registry', name: 'catalog', actions: ['metadata_read'] }];
    assert.deepEqual(await authorizer.decide(undefined, catalog), { kind: 'challenge', reason: 'missing' }, 'the catalog needs a token');
  });

  it('allows a token that holds the access, with its identity', async () => {
    const decision = await authorizer.decide(await token(reader, pullApp), pullApp);
    assert.equal(decision.kind, 'allowed');
    assert.equal(decision.kind === 'allowed' && decision.identity?.name, 'reader');
  });

  it('challenges a bad token as invalid_token', async () => {
    assert.deepEqual(await authorizer.decide('not-a-jwt', pullApp), { kind: 'challenge', reason: 'invalid_token' });
  });

  it('asks for a better token when the principal holds the access (insufficient_scope)', async () => {
    assert.deepEqual(await authorizer.decide(await token(reader, []), pullApp), { kind: 'challenge', reason: 'insufficient_scope' });
  });

  it('denies what the principal itself lacks, naming it', async () => {
    assert.deepEqual(await authorizer.decide(await token(reader, pullApp), pushApp), {
      kind: 'denied',
      missing: [{ type: 'repository', name: 'team/app', actions: ['push'] }],
    });
  });

  it('never denies an anonymous token: it can always log in', async () => {
    const anonymous: Identity = { subject: 'anonymous', name: 'anonymous', kind: 'anonymous' };
    assert.deepEqual(await authorizer.decide(await token(anonymous, []), pushApp), { kind: 'challenge', reason: 'insufficient_scope' });
  });

  it('filters the catalog by the grants unless the token reads the whole registry', async () => {
    const scoped = await authorizer.decide(await token(reader, [{ type: 'registry', name: 'catalog', actions: ['metadata_read'] }]), []);
    assert.ok(scoped.kind === 'allowed' && scoped.identity);
    const visible = await authorizer.catalogFilter(scoped.identity);
    assert.ok(visible);
    assert.equal(visible('team/app'), true);
    assert.equal(visible('other/app'), false);
    const wide = await authorizer.decide(await token(reader, [{ type: 'registry', name: 'catalog', actions: ['*'] }]), []);
    assert.ok(wide.kind === 'allowed');
    assert.equal(await authorizer.catalogFilter(wide.identity), undefined);
    assert.equal(await authorizer.catalogFilter(undefined), undefined, 'no identity: auth is off');
  });

  it('tells which repositories a caller may pull (a mount without `from`)', async () => {
    const claims = async (identity: Identity, access: Access[]) => {
      const decision = await authorizer.decide(await token(identity, access), []);
      assert.ok(decision.kind === 'allowed' && decision.identity);
      return decision.identity;
    };
    // The principal's grants count even when the token names only the push target.
    const pushing = await authorizer.pullFilter(await claims(reader, [{ type: 'repository', name: 'mine/app', actions: ['pull', 'push'] }]));
    assert.equal(pushing('team/lib'), true, 'granted by team/*');
    assert.equal(pushing('mine/app'), true, 'granted by the token itself');
    assert.equal(pushing('other/app'), false);
    assert.equal(pushing('public/app'), false, 'the anonymous-pull policy is for token-less callers');
    // A login bound to named scopes cannot reach beyond them, whatever the principal's grants.
    const bounded: Identity = { ...reader, scopeCeiling: [{ type: 'repository', name: 'team/app', actions: ['pull'] }] };
    const narrow = await authorizer.pullFilter(await claims(bounded, []));
    assert.equal(narrow('team/app'), true);
    assert.equal(narrow('team/lib'), false);
    // Anonymous: the anonymous-pull policy only.
    for (const identity of [undefined, await claims({ subject: 'anonymous', name: 'anonymous', kind: 'anonymous' }, [])]) {
      const anonymous = await authorizer.pullFilter(identity);
      assert.equal(anonymous('public/app'), true);
      assert.equal(anonymous('team/app'), false);
    }
  });

  it('allows everything anonymously with the token service off', async () => {
    const off = new Authorizer({
      enabled: false,
      verifyAccess: () => Promise.reject(new Error('never called')),
      keyRevoked: () => Promise.reject(new Error('never called')),
      grantsOf: () => Promise.reject(new Error('never called')),
      anonymousPull: metadata.auth.anonymousPull,
      clock,
    });
    assert.deepEqual(await off.decide(undefined, pushApp), { kind: 'allowed', identity: undefined });
    assert.equal((await off.pullFilter(undefined))('any/repository'), true, 'with auth off any holder counts');
  });
});
