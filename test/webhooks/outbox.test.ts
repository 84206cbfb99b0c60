import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { openSqliteMetadata } from '../../src/metadata/sql/open.js';
import type { Metadata } from '../../src/metadata/store.js';

/** The outbox at the metadata level: what fan-out keeps and what it drops. */
describe('webhook outbox fan-out', () => {
  let metadata: Metadata;
  const now = 1_700_000_000_000;
  const event = (repository: string) => ({
    id: randomUUID(),
    action: 'push' as const,
    repository,
    tags: ['v1'],
    digest: `sha256:${'a'.repeat(64)}`,
    payload: '{}',
  });

  before(async () => {
    metadata = await openSqliteMetadata(':memory:');
  });
  after(() => metadata.close());

  it('drops an event no subscription wants, and keeps one with deliveries', async () => {
    const { events, webhooks } = metadata.events;
    const hookId = randomUUID();
    assert.equal(
      await webhooks.create({
        id: hookId,
        name: 'watcher',
        url: 'https://receiver.example/hook',
        events: ['push'],
        filters: [],
        headers: {},
        secret: 's'.repeat(32),
        previousSecret: undefined,
        previousSecretUntil: undefined,
        format: 'acr',
        enabled: true,
        createdAt: now,
        updatedAt: now,
      }),
      true,
    );
    const unwatched = event('team/unwatched');
    const watched = event('team/watched');
    await events.append(unwatched, now);
    await events.append(watched, now);
    const created = await events.fanOut(
      [
        { eventId: unwatched.id, subscriptionIds: [] },
        { eventId: watched.id, subscriptionIds: [hookId] },
      ],
      now,
    );
    assert.equal(created, 1);
    assert.equal(await events.get(unwatched.id), undefined);
    assert.equal((await events.get(watched.id))?.fannedOutAt, now);
    assert.deepEqual(await events.pendingFanOut(10), []);
  });
});
