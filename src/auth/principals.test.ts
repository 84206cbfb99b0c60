import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import { after, before, describe, it, mock } from 'node:test';
import { pino } from 'pino';
import { openSqliteMetadata } from '../metadata/sql/open.js';
import type { Metadata } from '../metadata/store.js';
import { AuthenticationError, failedLoginKdfRuns, PrincipalService } from './principals.js';

/**
 * A failed login costs the same scrypt work whether the name exists or not. Counted, not timed:
 * `crypto.scrypt` is wrapped for the duration of each call (the builtin's named export follows
 * the wrapper through syncBuiltinESMExports).
 */
describe('PrincipalService.authenticate: the cost of a failed login', () => {
  let metadata: Metadata;
  let principals: PrincipalService;
  const clock = { now: () => 1_700_000_000_000 };

  before(async () => {
    metadata = await openSqliteMetadata(':memory:');
    principals = new PrincipalService(metadata.auth, clock, { adminUser: { enabled: false, username: 'admin' }, bootstrap: {} }, pino({ level: 'silent' }));
    await principals.createPrincipal('user', 'alice', {});
    const { principal: token } = await principals.createPrincipal('token', 'ci-token', {});
    await principals.setSecret(token.id, 'password2');
  });
  after(() => metadata.close());

  async function scryptRuns(name: string, secret: string): Promise<number> {
    const original = crypto.scrypt;
    let runs = 0;
    mock.method(crypto, 'scrypt', (...args: Parameters<typeof crypto.scrypt>) => {
      runs++;
      return (original as (...a: unknown[]) => void)(...args);
    });
    syncBuiltinESMExports();
    try {
      await assert.rejects(principals.authenticate(name, secret), AuthenticationError);
    } finally {
      mock.restoreAll();
      syncBuiltinESMExports();
    }
    return runs;
  }

  it('runs the same number of key derivations for an unknown name, a user and a token', async () => {
    const unknown = await scryptRuns('nobody', 'wrong-password');
    assert.equal(unknown, failedLoginKdfRuns);
    assert.equal(await scryptRuns('alice', 'wrong-password'), unknown);
    assert.equal(await scryptRuns('ci-token', 'wrong-password'), unknown);
    assert.equal(await scryptRuns('x'.repeat(10_000), 'wrong-password'), unknown);
  });
});
