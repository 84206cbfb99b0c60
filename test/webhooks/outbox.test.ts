import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NewEvent } from '../../src/metadata/event-store.js';
import { openSqliteMetadata } from '../../src/metadata/sql/open.js';
import type { ChangeOutbox, ManifestChange, Metadata } from '../../src/metadata/store.js';
import { testBackend } from '../support/backends.js';
import { postgresMetadataFor } from '../support/postgres.js';

/** SQLite in memory, or a fresh PostgreSQL database under BERTH_TEST_BACKEND=postgres. */
async function openMetadata(): Promise<Metadata> {
  if (!testBackend().postgres) return openSqliteMetadata(':memory:');
  const { openPostgresMetadata } = await import('../../src/metadata/sql/postgres.js');
  const { url } = await postgresMetadataFor(join(tmpdir(), `berth-outbox-${randomUUID()}`));
  return openPostgresMetadata({ driver: 'postgres', url: url as string, poolSize: 4 });
}

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
    metadata = await openMetadata();
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

/**
 * The outbox rows of a manifest change are data the caller builds: the metadata store hands the
 * builder what the transaction found and writes the rows in that transaction, or none of it.
 */
describe('webhook outbox rows of manifest changes', () => {
  let metadata: Metadata;
  const now = 1_700_000_000_000;
  const digestOf = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;
  const config = digestOf('config');
  /** An outbox that records what it was given and returns one opaque row per call. */
  const recording = () => {
    const seen: ManifestChange[] = [];
    const rows: NewEvent[] = [];
    const outbox: ChangeOutbox = (change) => {
      seen.push(change);
      const row = {
        id: randomUUID(),
        action: change.action,
        repository: change.repository,
        tags: ['t'],
        digest: change.digest,
        payload: `opaque ${seen.length}`,
      };
      rows.push(row);
      return [row];
    };
    return { seen, rows, outbox };
  };
  const manifest = (repository: string, tag: string | undefined, text: string) => ({
    repository,
    digest: digestOf(text),
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    content: Buffer.from(text),
    blobs: [config],
    manifests: [],
    tag,
  });
  const pending = async () => (await metadata.events.events.pendingFanOut(100)).map((e) => ({ id: e.id, payload: e.payload }));

  before(async () => {
    metadata = await openMetadata();
    await metadata.blobs.link('box/app', { digest: config, size: 6 }, now);
  });
  after(() => metadata.close());

  it('a push writes the rows the outbox built from the change, stored as given', async () => {
    const { seen, rows, outbox } = recording();
    const before = await pending();
    const pushed = manifest('box/app', 'v1', '{"push":1}');
    assert.deepEqual(await metadata.manifests.put(pushed, now, outbox), { missing: [] });
    assert.deepEqual(seen, [
      { action: 'push', repository: 'box/app', digest: pushed.digest, mediaType: pushed.mediaType, size: pushed.content.length, tag: 'v1' },
    ]);
    assert.deepEqual(await metadata.events.events.get(rows[0]!.id), { ...rows[0], subscriptionId: undefined, createdAt: now, fannedOutAt: undefined });
    assert.equal((await pending()).length, before.length + 1);
  });

  it('a refused push (missing references) neither calls the outbox nor writes a row', async () => {
    const { seen, outbox } = recording();
    const before = await pending();
    const result = await metadata.manifests.put({ ...manifest('box/app', 'v2', '{"missing":1}'), blobs: [digestOf('absent')] }, now, outbox);
    assert.deepEqual(result, { missing: [digestOf('absent')] });
    assert.deepEqual(seen, []);
    assert.deepEqual(await pending(), before);
  });

  it('an outbox that throws rolls the change back', async () => {
    const before = await pending();
    const failing = manifest('box/app', 'v3', '{"fails":1}');
    await assert.rejects(
      metadata.manifests.put(failing, now, () => {
        throw new Error('outbox refused');
      }),
      /outbox refused/,
    );
    assert.equal(await metadata.manifests.getByDigest('box/app', failing.digest), undefined);
    assert.equal(await metadata.manifests.getByTag('box/app', 'v3'), undefined);
    assert.deepEqual(await pending(), before);
  });

  it('deletes hand the outbox what the transaction found: the media type, size and removed tags', async () => {
    const doomed = manifest('box/app', 'd1', '{"doomed":1}');
    await metadata.manifests.put(doomed, now);
    await metadata.manifests.put({ ...doomed, tag: 'd0' }, now);
    const tagDelete = recording();
    assert.equal(await metadata.manifests.deleteTag('box/app', 'd0', now, tagDelete.outbox), true);
    assert.deepEqual(tagDelete.seen, [
      { action: 'delete', repository: 'box/app', digest: doomed.digest, mediaType: doomed.mediaType, size: doomed.content.length, tag: 'd0' },
    ]);
    await metadata.manifests.put({ ...doomed, tag: 'd2' }, now);
    const digestDelete = recording();
    assert.equal(await metadata.manifests.delete('box/app', doomed.digest, now, digestDelete.outbox), true);
    assert.deepEqual(digestDelete.seen, [
      {
        action: 'delete',
        repository: 'box/app',
        digest: doomed.digest,
        mediaType: doomed.mediaType,
        size: doomed.content.length,
        tag: undefined,
        removedTags: ['d1', 'd2'],
      },
    ]);
    assert.ok(await metadata.events.events.get(digestDelete.rows[0]!.id));
    // Nothing to delete: no call, no row.
    const again = recording();
    assert.equal(await metadata.manifests.delete('box/app', doomed.digest, now, again.outbox), false);
    assert.equal(await metadata.manifests.deleteTag('box/app', 'd0', now, again.outbox), false);
    assert.deepEqual(again.seen, []);
  });

  it('without an outbox a change writes no event', async () => {
    const before = await pending();
    await metadata.manifests.put(manifest('box/app', 'quiet', '{"quiet":1}'), now);
    assert.deepEqual(await pending(), before);
  });
});
