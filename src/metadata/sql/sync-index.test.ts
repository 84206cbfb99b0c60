import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { openSqliteMetadata } from './open.js';

describe('sync reconcile claims (SQLite)', () => {
  it('records a claimed run request as served: the start is never before the request, the finish never before the start', async () => {
    const metadata = await openSqliteMetadata(':memory:');
    try {
      const id = randomUUID();
      const spec = JSON.stringify({ source: { url: 'https://source.example', credentials: { kind: 'anonymous' } }, repositories: ['**'] });
      assert.equal(
        await metadata.sync.rules.create({ id, name: 'vendor', spec, enabled: true, webhookSecret: null, createdAt: 1000, updatedAt: 1000 }, null),
        true,
      );
      // The run request lands at 5000 while a claimer whose clock read 4990 is on its way.
      await metadata.sync.rules.requestRun(id, 5000);
      const [claimed] = await metadata.sync.reconciles.claim({ owner: 'worker', now: 4990, until: 60_000, limit: 1 });
      assert.equal(claimed?.id, id, 'the request is claimed');
      assert.equal(claimed?.state.runRequestedAt, null, 'and taken');
      assert.equal(claimed?.state.lastReconcileStartedAt, 5000, 'recorded as started no earlier than the request it serves');
      // It finishes at 4995 by its own clock (earlier than the request's, from another replica).
      const stats = { repositories: 0, tags: 0, queued: 0, errors: 0 };
      await metadata.sync.reconciles.finish(id, 'worker', { at: 4995, error: null, stats, nextReconcileAt: null, backfilled: true, clearsRuleError: true });
      const after = await metadata.sync.rules.get(id);
      assert.equal(after?.state.lastReconcileStartedAt, 5000);
      assert.equal(after?.state.lastReconcileAt, 5000, 'finished no earlier than it started');

      // Without a request, a scheduled claim records the claimer's own time, and the finish its own.
      await metadata.sync.rules.requestRun(id, 7000);
      const [again] = await metadata.sync.reconciles.claim({ owner: 'worker', now: 8000, until: 90_000, limit: 1 });
      assert.equal(again?.state.lastReconcileStartedAt, 8000, 'a request older than the claim leaves the claim time');
      await metadata.sync.reconciles.finish(id, 'worker', { at: 8100, error: null, stats, nextReconcileAt: null, backfilled: true, clearsRuleError: true });
      assert.equal((await metadata.sync.rules.get(id))?.state.lastReconcileAt, 8100);
    } finally {
      await metadata.close();
    }
  });
});
