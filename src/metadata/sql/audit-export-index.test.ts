import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openSqliteMetadata } from './open.js';

describe('the audit export outbox (SQLite)', () => {
  it('queues an entry per sink with the entry, leases batches oldest first, and tells a takeover from a free row', async () => {
    const metadata = await openSqliteMetadata(':memory:');
    try {
      for (let i = 0; i < 5; i++)
        await metadata.auth.audit.append({ at: 1000 + i, event: `test.${i}`, repository: i % 2 ? 'a/b' : undefined }, ['siem', 'syslog']);
      await metadata.auth.audit.append({ at: 2000, event: 'test.unexported' });
      let takeovers = 0;
      const onTakeover = () => takeovers++;
      const first = await metadata.auditExports.claim('siem', { owner: 'dead', now: 3000, until: 3100, limit: 2, onTakeover });
      assert.deepEqual(
        first.map((row) => row.entry.event),
        ['test.0', 'test.1'],
      );
      assert.equal(first[1]?.entry.repository, 'a/b');
      assert.equal(takeovers, 0, 'free rows are not takeovers');
      // The first owner's lease lapses: the rows go to the next claimer, as takeovers.
      const second = await metadata.auditExports.claim('siem', { owner: 'alive', now: 3200, until: 9000, limit: 10, onTakeover });
      assert.deepEqual(
        second.map((row) => row.entry.event),
        ['test.0', 'test.1', 'test.2', 'test.3', 'test.4'],
      );
      assert.equal(takeovers, 2);
      assert.equal(
        await metadata.auditExports.renew('siem', [second[0]!.entry.id], { owner: 'dead', now: 3300, until: 9999 }),
        false,
        'the old owner lost them',
      );
      await metadata.auditExports.complete('siem', [second[0]!.entry.id, second[1]!.entry.id], 'alive');
      await metadata.auditExports.release('siem', [second[2]!.entry.id], 'alive', 5000, 'receiver down');
      const backlog = await metadata.operations.auditExportBacklog();
      assert.deepEqual(backlog, [
        { sink: 'siem', pending: 3, oldestAt: 1002 },
        { sink: 'syslog', pending: 5, oldestAt: 1000 },
      ]);
      const retried = await metadata.auditExports.claim('siem', { owner: 'alive', now: 6000, until: 9000, limit: 10 });
      assert.equal(retried.find((row) => row.entry.event === 'test.2')?.attempts, 1, 'a failure counts an attempt');
      assert.equal(await metadata.auditExports.dropOtherSinks(['siem']), 5);
      assert.deepEqual(await metadata.auditExports.claim('syslog', { owner: 'x', now: 9999, until: 10_000, limit: 10 }), []);
    } finally {
      await metadata.close();
    }
  });

  it('appends concurrent entries by group commit: every one recorded, in the order appended, each caller answered after its row', async () => {
    const metadata = await openSqliteMetadata(':memory:');
    try {
      const appended = await Promise.all(
        Array.from({ length: 250 }, async (_, i) => {
          await metadata.auth.audit.append({ at: 5000 + i, event: `group.${i}`, principalName: i % 3 ? 'u' : undefined });
          // When a caller's append resolves, its own row is there.
          const listed = await metadata.auth.audit.list({ limit: 1, event: `group.${i}` });
          return listed[0]?.at;
        }),
      );
      assert.deepEqual(
        appended,
        Array.from({ length: 250 }, (_, i) => 5000 + i),
      );
      const all = await metadata.auth.audit.list({ limit: 500 });
      assert.equal(all.length, 250);
      assert.deepEqual(
        all.map((e) => e.event).reverse(),
        Array.from({ length: 250 }, (_, i) => `group.${i}`),
        'ids follow the order of the appends',
      );
    } finally {
      await metadata.close();
    }
  });

  it('a row the database refuses fails only its own append, not the others of its group', async () => {
    const metadata = await openSqliteMetadata(':memory:');
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          // Entry 4 breaks the NOT NULL on event, as a bug in a caller might.
          metadata.auth.audit.append({ at: 7000 + i, event: (i === 4 ? null : `one.${i}`) as unknown as string }),
        ),
      );
      assert.deepEqual(
        results.map((r) => r.status),
        Array.from({ length: 10 }, (_, i) => (i === 4 ? 'rejected' : 'fulfilled')),
      );
      assert.equal((await metadata.auth.audit.list({ limit: 50 })).length, 9);
    } finally {
      await metadata.close();
    }
  });

  it('lists audit entries by repository, event, event prefix, time range and id cursor', async () => {
    const metadata = await openSqliteMetadata(':memory:');
    try {
      const events = ['admin.principal.created', 'admin.secret.created', 'admins.odd', 'registry.push', 'login.failed'];
      for (const [i, event] of events.entries())
        await metadata.auth.audit.append({ at: 100 * (i + 1), event, repository: event === 'registry.push' ? 'team/app' : undefined });
      const list = async (query: Record<string, unknown>) => (await metadata.auth.audit.list({ limit: 100, ...query })).map((e) => e.event);
      assert.deepEqual(await list({ event: 'admin.' }), ['admin.secret.created', 'admin.principal.created'], 'a prefix ends at its dot');
      assert.deepEqual(await list({ event: 'admins.odd' }), ['admins.odd']);
      assert.deepEqual(await list({ repository: 'team/app' }), ['registry.push']);
      assert.deepEqual(await list({ since: 200, until: 400 }), ['admins.odd', 'admin.secret.created']);
      const all = await metadata.auth.audit.list({ limit: 2 });
      assert.deepEqual(await list({ before: all[1]!.id }), ['admins.odd', 'admin.secret.created', 'admin.principal.created']);
    } finally {
      await metadata.close();
    }
  });
});
