/**
 * The PostgreSQL metadata driver against a real PostgreSQL (test/support/postgres.ts: the private
 * throwaway cluster, or BERTH_TEST_POSTGRES_URL): migrations, several Metadata instances on one
 * database (what replicas are), claims that must go to exactly one of them, the password file and
 * the startup error.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { Config } from '../../src/config/schema.js';
import { openPostgresMetadata } from '../../src/metadata/sql/postgres.js';
import type { Metadata } from '../../src/metadata/store.js';
import { ruleRow, type SyncRule } from '../../src/sync/rule.js';
import { databaseNameFor, postgresAdminUrl, postgresMetadataFor } from '../support/postgres.js';

const now = 1_700_000_000_000;

async function freshSettings(): Promise<Config['metadata']> {
  const { url } = await postgresMetadataFor(join(tmpdir(), `berth-pg-test-${randomUUID()}`));
  return { driver: 'postgres', url: url as string, poolSize: 4 };
}

async function adminQuery<R extends pg.QueryResultRow>(text: string, values: unknown[] = [], url?: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: url ?? (await postgresAdminUrl()) });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

const digestOf = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

function rule(name: string): SyncRule {
  return {
    id: randomUUID(),
    name,
    enabled: true,
    webhookSecret: null,
    createdAt: now,
    updatedAt: now,
    source: { url: 'https://source.example', credentials: { kind: 'anonymous' } },
    repositories: ['**'],
    tags: { include: ['*'], exclude: [] },
    destinationPrefix: '',
    triggers: { webhook: false, pollIntervalMs: null, onDemand: true },
    limits: {},
    includeReferrers: false,
  };
}

/** Claims from every claimer at once, round after round, until a round claims nothing. */
async function drain<T>(claimers: Array<() => Promise<T[]>>): Promise<T[][]> {
  const perClaimer: T[][] = claimers.map(() => []);
  for (;;) {
    const round = await Promise.all(claimers.map((claim) => claim()));
    round.forEach((items, i) => perClaimer[i]!.push(...items));
    if (round.every((items) => items.length === 0)) return perClaimer;
  }
}

function assertEachOnce(perClaimer: string[][], expected: string[]): void {
  const all = perClaimer.flat();
  assert.equal(new Set(all).size, all.length, `claimed twice: ${all.filter((id, i) => all.indexOf(id) !== i).join(', ')}`);
  assert.deepEqual([...all].sort(), [...expected].sort());
}

describe('PostgreSQL metadata', () => {
  before(async () => {
    await postgresAdminUrl();
  });

  it('applies the migrations to an empty database, and reopening is a no-op', async () => {
    const settings = await freshSettings();
    const first = await openPostgresMetadata(settings);
    const applied = await adminQuery<{ name: string }>('select name from kysely_migration order by name', [], settings.url);
    assert.ok(applied.length >= 6, `migrations recorded: ${applied.map((r) => r.name).join(', ')}`);
    await first.blobs.link('team/app', { digest: digestOf('layer'), size: 5 }, now);
    await first.close();

    const second = await openPostgresMetadata(settings);
    try {
      const again = await adminQuery<{ name: string }>('select name from kysely_migration order by name', [], settings.url);
      assert.deepEqual(again, applied);
      assert.deepEqual(await second.blobs.getInRepository('team/app', digestOf('layer')), { digest: digestOf('layer'), size: 5, pushedAt: now });
    } finally {
      await second.close();
    }
  });

  describe('two Metadata instances on one database (two replicas)', () => {
    let a: Metadata;
    let b: Metadata;
    let url = '';

    before(async () => {
      const settings = await freshSettings();
      url = settings.url as string;
      // Opened at once, as replicas starting together: the migrator's lock serialises them.
      [a, b] = await Promise.all([openPostgresMetadata(settings), openPostgresMetadata(settings)]);
    });
    after(async () => {
      await a?.close();
      await b?.close();
    });

    it('sees the other instance’s writes, with numbers as numbers and bytes as bytes', async () => {
      const config = digestOf('config');
      const content = Buffer.from(JSON.stringify({ schemaVersion: 2, config, note: 'é\u0000x' }));
      const manifest = digestOf(content.toString('latin1'));
      await a.blobs.link('shared/app', { digest: config, size: 2 ** 40 }, now);
      assert.deepEqual(
        await a.manifests.put(
          {
            repository: 'shared/app',
            digest: manifest,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            content,
            blobs: [config],
            manifests: [],
            tag: 'v1',
          },
          now,
        ),
        { missing: [] },
      );

      const record = await b.manifests.getByTag('shared/app', 'v1');
      assert.ok(record);
      assert.equal(record.digest, manifest);
      assert.equal(record.size, content.length);
      assert.ok(Buffer.isBuffer(record.content));
      assert.ok(record.content.equals(content));
      const blob = await b.blobs.get(config);
      assert.deepEqual(blob, { digest: config, size: 2 ** 40, pushedAt: now });
      assert.equal(await b.repositories.exists('shared/app'), true);
      assert.deepEqual(await b.repositories.list({}), ['shared/app']);
      const history = await b.manifests.history('shared/app', { limit: 10 });
      assert.equal(history.length, 1);
      assert.equal(typeof history[0]!.at, 'number');
    });

    it('reads a principal with its grants, and with its credentials for one issuer, in one statement, numbers as numbers', async () => {
      const id = randomUUID();
      const name = `ci-${id}`;
      await a.auth.principals.create({ id, kind: 'service', name, description: undefined, disabled: false, expiresAt: now + 1, createdAt: now });
      await a.auth.grants.replace(id, [
        { pattern: 'team/**', permission: 'pull' },
        { pattern: 'apps/"quoted"\\', permission: 'push' },
        { pattern: 'Apps/upper', permission: 'pull' },
      ]);
      const issuer = 'https://token.actions.githubusercontent.com';
      const stored = (credentialName: string, credentialIssuer: string) => ({
        id: randomUUID(),
        principalId: id,
        name: credentialName,
        issuer: credentialIssuer,
        audiences: ['berth'],
        subject: 'repo:acme/app:*',
        conditions: [{ claim: 'ref', equals: 'refs/heads/main' }],
        createdAt: now,
      });
      const [zeta, alpha, other] = [stored('zeta', issuer), stored('alpha', issuer), stored('gitlab', 'https://gitlab.example')];
      for (const c of [zeta, alpha, other]) await a.auth.federatedCredentials.put(c);

      const principal = { id, kind: 'service', name, description: undefined, disabled: false, expiresAt: now + 1, createdAt: now };
      // In the order grants.list gives (bytes: upper case first, as on SQLite).
      const grants = await b.auth.grants.list(id);
      assert.deepEqual(
        grants.map((g) => g.pattern),
        ['Apps/upper', 'apps/"quoted"\\', 'team/**'],
      );
      assert.deepEqual(await b.auth.principals.getWithGrants(id), { principal, grants });
      assert.deepEqual(await b.auth.principals.findByNameWithGrants(name), { principal, grants });
      const found = await b.auth.federatedCredentials.ofPrincipalNamed(name, issuer);
      assert.deepEqual(found, { principal, grants, credentials: [alpha, zeta] });
      assert.deepEqual(await b.auth.federatedCredentials.ofPrincipalNamed(name, 'https://unknown.example'), { principal, grants, credentials: [] });
      assert.equal(await b.auth.federatedCredentials.ofPrincipalNamed(`nobody-${id}`, issuer), undefined);
      await a.auth.grants.replace(id, []);
      assert.deepEqual(await b.auth.principals.getWithGrants(id), { principal, grants: [] }, 'no grants: an empty list');
    });

    it('records every audit entry appended at once on both instances (group commit), each before its caller is answered', async () => {
      const tag = randomUUID();
      const answered = await Promise.all(
        Array.from({ length: 120 }, async (_, i) => {
          const on = i % 2 ? a : b;
          await on.auth.audit.append({ at: now + i, event: `group.${tag}.${i}` });
          return (await (i % 2 ? b : a).auth.audit.list({ limit: 1, event: `group.${tag}.${i}` })).length;
        }),
      );
      assert.deepEqual(new Set(answered), new Set([1]), 'each row is committed, and seen by the other instance, when its append resolves');
      const all = await a.auth.audit.list({ limit: 500, event: `group.${tag}.` });
      assert.equal(all.length, 120);
    });

    it('claims each sync queue item once', async () => {
      const r = rule(`rule-${randomUUID()}`);
      assert.equal(await a.sync.rules.create(ruleRow(r), null), true);
      assert.equal(await b.sync.rules.create(ruleRow({ ...r, id: randomUUID() }), null), false, 'the name is unique across instances');
      const keys: string[] = [];
      for (let i = 0; i < 30; i++) {
        const tag = `t${i}`;
        keys.push(tag);
        const instance = i % 2 === 0 ? a : b;
        assert.equal(await instance.sync.queue.enqueue({ ruleId: r.id, repository: 'src/app', tag, digest: null, reason: 'reconcile' }, now), 'queued');
      }
      const claimer = (m: Metadata, owner: string) => async () =>
        (await m.sync.queue.claim({ owner, now: now + 1, until: now + 60_000, limit: 4 })).map((item) => item.tag);
      assertEachOnce(await drain([claimer(a, 'a'), claimer(b, 'b'), claimer(a, 'a2'), claimer(b, 'b2')]), keys);
    });

    it('accepts a notification id once when both instances receive it at once', async () => {
      const r = rule(`rule-${randomUUID()}`);
      await a.sync.rules.create(ruleRow(r), null);
      const item = { ruleId: r.id, repository: 'src/app', tag: 'latest', digest: digestOf('x'), reason: 'webhook' as const };
      const results = await Promise.all([a.sync.receipts.accept('event-1', item, now), b.sync.receipts.accept('event-1', item, now)]);
      assert.deepEqual([...results].sort(), ['duplicate', 'queued']);
    });

    it('claims each import job once', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) {
        const id = randomUUID();
        ids.push(id);
        await (i % 2 === 0 ? a : b).imports.create(
          {
            id,
            spec: {
              source: { registry: 'source.example', url: 'https://source.example', repository: 'app', reference: `v${i}` },
              targets: [{ repository: 'app', tags: [`v${i}`] }],
              force: false,
              includeReferrers: false,
            },
            requestedBy: undefined,
            credentials: undefined,
          },
          now,
        );
      }
      const claimer = (m: Metadata, worker: string) => async () =>
        (await m.imports.claim({ owner: worker, now: now + 1, until: now + 1 + 60_000, limit: 4 })).map((job) => job.id);
      assertEachOnce(await drain([claimer(a, 'a'), claimer(b, 'b'), claimer(a, 'a2'), claimer(b, 'b2')]), ids);
    });

    it('fans out idempotently from both instances and claims each delivery once', async () => {
      const hookId = randomUUID();
      await a.events.webhooks.create({
        id: hookId,
        name: `hook-${hookId}`,
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
      });
      const pending = await a.events.events.pendingFanOut(1000);
      for (let i = 0; i < 30; i++) {
        await (i % 2 === 0 ? a : b).events.events.append(
          { id: randomUUID(), action: 'push', repository: 'hooked/app', tags: [`v${i}`], digest: digestOf(`e${i}`), payload: '{}' },
          now,
        );
      }
      const events = (await a.events.events.pendingFanOut(1000)).filter((e) => !pending.some((p) => p.id === e.id));
      assert.equal(events.length, 30);
      const plan = events.map((e) => ({ eventId: e.id, subscriptionIds: [hookId] }));
      const created = await Promise.all([a.events.events.fanOut(plan, now), b.events.events.fanOut([...plan].reverse(), now)]);
      assert.equal(created[0] + created[1], 30);

      const deliveryIds = (await a.events.deliveries.list(hookId, { limit: 100 })).map((d) => d.id);
      assert.equal(deliveryIds.length, 30);
      const claimer = (m: Metadata, owner: string) => async () =>
        (await m.events.deliveries.claimDue({ owner, now: now + 1, until: now + 60_000, limit: 4 })).map((c) => c.delivery.id);
      assertEachOnce(await drain([claimer(a, 'a'), claimer(b, 'b'), claimer(a, 'a2'), claimer(b, 'b2')]), deliveryIds);
    });

    it('stores a webhook receiver’s response with NUL bytes (PostgreSQL text cannot hold U+0000)', async () => {
      const hookId = randomUUID();
      await a.events.webhooks.create({
        id: hookId,
        name: `nul-${hookId}`,
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
      });
      const eventId = randomUUID();
      await a.events.events.append({ id: eventId, action: 'push', repository: 'nul/app', tags: [], digest: digestOf('nul'), payload: '{}' }, now);
      await a.events.events.fanOut([{ eventId, subscriptionIds: [hookId] }], now);
      const [delivery] = (await a.events.deliveries.list(hookId, { limit: 10 })).map((d) => d.id);
      assert.ok(delivery);
      let claimed: string[] = [];
      while (!claimed.includes(delivery)) {
        claimed = (await b.events.deliveries.claimDue({ owner: 'nul-worker', now: now + 1, until: now + 60_000, limit: 100 })).map((c) => c.delivery.id);
        assert.ok(claimed.length > 0, 'the delivery was claimable');
      }
      const attempt = { cycle: 0, attempt: 1, at: now, statusCode: 500, error: 'bad\u0000reply', latencyMs: 3, responseSnippet: 'a\u0000b', ok: false };
      assert.equal(await b.events.deliveries.complete(delivery, 'nul-worker', attempt, { status: 'failed', nextAttemptAt: now }, now), true);
      const [stored] = await a.events.deliveries.attempts(delivery);
      assert.equal(stored?.responseSnippet, 'a\ufffdb');
      assert.equal(stored?.error, 'bad\ufffdreply');
    });

    it('serialises concurrent secret rotations, grant and anonymous-pull replacements', async () => {
      const principalId = randomUUID();
      assert.equal(
        await a.auth.principals.create({
          id: principalId,
          kind: 'user',
          name: `user-${principalId}`,
          description: 'x\u0000y',
          disabled: false,
          expiresAt: undefined,
          createdAt: now,
        }),
        true,
      );
      assert.equal((await b.auth.principals.get(principalId))?.description, 'x\ufffdy');
      for (let round = 0; round < 5; round++) {
        const ids: string[] = [randomUUID(), randomUUID()];
        const credential = (id: string) => ({ id, principalId, label: 'password', hash: `hash-${id}`, expiresAt: undefined, createdAt: now });
        await Promise.all([a.auth.credentials.put(credential(ids[0]!)), b.auth.credentials.put(credential(ids[1]!))]);
        const stored = await a.auth.credentials.list(principalId);
        assert.equal(stored.length, 1);
        assert.ok(ids.includes(stored[0]!.id));
        await Promise.all([
          a.auth.grants.replace(principalId, [{ pattern: 'team/*', permission: 'pull' }]),
          b.auth.grants.replace(principalId, [
            { pattern: 'team/*', permission: 'pull' },
            { pattern: 'other/*', permission: 'push' },
          ]),
        ]);
        assert.ok([1, 2].includes((await a.auth.grants.list(principalId)).length));
        await Promise.all([a.auth.anonymousPull.replace(['public/*'], now), b.auth.anonymousPull.replace(['public/*', 'docs/*'], now)]);
        const patterns = await b.auth.anonymousPull.list();
        assert.ok(patterns.length === 1 || patterns.length === 2, patterns.join(','));
      }
      const removed = await Promise.all([a.auth.credentials.remove(principalId, 'password'), b.auth.credentials.remove(principalId, 'password')]);
      assert.equal(removed.filter((id) => id !== undefined).length, 1);
    });

    it('a manifest put by tag racing a delete of the same digest never leaves the tag pointing at nothing', async () => {
      // A third connection holds an uncommitted row for the tag, so the put stops just before its
      // tag upsert (after writing the manifest row) until that connection rolls back. The delete
      // runs meanwhile: it either waits for the put (the manifest row is held) or, as before the
      // fix, deletes the manifest the put is about to tag.
      const layer = digestOf(`race-layer-${randomUUID()}`);
      await a.blobs.link('race/app', { digest: layer, size: 3 }, now);
      const content = Buffer.from(JSON.stringify({ schemaVersion: 2, layers: [layer] }));
      const manifest = { repository: 'race/app', digest: digestOf(content.toString()), mediaType: 'application/json', content, blobs: [layer], manifests: [] };
      assert.deepEqual(await a.manifests.put(manifest, now), { missing: [] });
      const database = new URL(url).pathname.slice(1);
      const waiting = async () =>
        Number(
          (await adminQuery<{ n: string }>("select count(*) as n from pg_stat_activity where datname = $1 and wait_event_type = 'Lock'", [database]))[0]?.n,
        );
      const until = async (done: () => Promise<boolean>) => {
        for (let i = 0; i < 500 && !(await done()); i++) await new Promise((resolve) => setTimeout(resolve, 20));
      };
      const holder = new pg.Client({ connectionString: url });
      await holder.connect();
      try {
        await holder.query('begin');
        const [repository] = (await holder.query<{ id: string }>('select id from repositories where name = $1', ['race/app'])).rows;
        await holder.query('insert into tags (repository_id, name, digest, updated_at) values ($1, $2, $3, $4)', [
          repository?.id,
          'latest',
          manifest.digest,
          now,
        ]);
        const put = a.manifests.put({ ...manifest, tag: 'latest' }, now + 1);
        await until(async () => (await waiting()) >= 1);
        let deleteDone = false;
        const del = b.manifests.delete('race/app', manifest.digest, now + 2).finally(() => (deleteDone = true));
        await until(async () => deleteDone || (await waiting()) >= 2);
        await holder.query('rollback');
        const [stored, deleted] = await Promise.all([put, del]);
        assert.deepEqual(stored, { missing: [] });
        assert.equal(deleted, true);
      } finally {
        await holder.end();
      }
      const tags = (await a.manifests.listTags('race/app', {})) ?? [];
      const tagged = await a.manifests.getByTag('race/app', 'latest');
      if (tags.includes('latest')) assert.ok(tagged, 'the tag is listed, but its manifest was deleted');
      // The delete took the row only after the put committed: it removed the manifest with the tag.
      assert.deepEqual(tags, []);
      assert.equal(await a.manifests.getByDigest('race/app', manifest.digest), undefined);
    });

    it('forgets a blob in GC only while no manifest references it', async () => {
      const layer = digestOf(`gc-layer-${randomUUID()}`);
      await a.blobs.link('gc/app', { digest: layer, size: 3 }, now - 10_000);
      const content = Buffer.from(`{"layer":"${layer}"}`);
      const put = b.manifests.put(
        { repository: 'gc/app', digest: digestOf(content.toString()), mediaType: 'application/json', content, blobs: [layer], manifests: [], tag: 'gc' },
        now,
      );
      const forget = a.gc.collectBlob(layer, now, async () => true);
      const [stored, forgotten] = await Promise.all([put, forget]);
      // Either order is fine; a stored manifest whose blob was forgotten is not.
      if (stored.missing.length === 0) {
        assert.equal(forgotten, false);
        assert.ok(await a.blobs.getInRepository('gc/app', layer));
      } else {
        assert.equal(forgotten, true);
        assert.equal(await a.manifests.getByTag('gc/app', 'gc'), undefined);
      }
    });
  });

  it('sorts text by bytes, as SQLite does, whatever the database’s collation (tag-list and catalog pagination)', async (t) => {
    // A database whose default collation is a natural-language one (ICU en-US: a < A < b < B),
    // as a production database created with en_US.UTF-8 would be.
    const name = `berth_icu_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    try {
      await adminQuery(`create database ${name} template template0 locale_provider icu icu_locale 'en-US' locale 'C.UTF-8'`);
    } catch (err) {
      return t.skip(`no ICU collation on this cluster: ${(err as Error).message}`);
    }
    const url = new URL(await postgresAdminUrl());
    url.pathname = `/${name}`;
    const metadata = await openPostgresMetadata({ driver: 'postgres', url: url.toString(), poolSize: 2 });
    try {
      const config = digestOf('sort-config');
      const tags = ['b', 'B', 'a', 'A', '_x', 'Z9', 'z', '1.0', '1.0-rc'];
      const repositories = ['b/app', 'B/app', 'a/app', 'A/app', '_x/app', 'a-b/app', 'a_b/app'];
      for (const repository of repositories) {
        await metadata.blobs.link(repository, { digest: config, size: 1 }, now);
        for (const tag of tags) {
          const content = Buffer.from(`{"tag":"${tag}"}`);
          await metadata.manifests.put(
            { repository, digest: digestOf(content.toString()), mediaType: 'application/json', content, blobs: [config], manifests: [], tag },
            now,
          );
        }
      }
      const bytewise = (values: string[]) => [...values].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      const sortedTags = bytewise(tags);
      assert.deepEqual(await metadata.manifests.listTags('a/app', {}), sortedTags);
      assert.deepEqual(
        await metadata.manifests.listTags('a/app', { last: 'Z9', n: 3 }),
        sortedTags.slice(sortedTags.indexOf('Z9') + 1, sortedTags.indexOf('Z9') + 4),
      );
      const sortedRepositories = bytewise(repositories);
      assert.deepEqual(await metadata.repositories.list({}), sortedRepositories);
      assert.deepEqual(
        await metadata.repositories.list({ last: 'B/app', n: 2 }),
        sortedRepositories.slice(sortedRepositories.indexOf('B/app') + 1, sortedRepositories.indexOf('B/app') + 3),
      );
    } finally {
      await metadata.close();
    }
  });

  it('reads the password from passwordFile (trailing newline trimmed)', async (t) => {
    const role = `berth_pw_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    const password = `pw ${randomUUID()}`;
    const settings = await freshSettings();
    const database = new URL(settings.url as string).pathname.slice(1);
    // Members of berth_password_login must authenticate with a password (scripts/postgres/start.sh).
    await adminQuery(`do $$ begin create role berth_password_login nologin; exception when duplicate_object then null; end $$`);
    await adminQuery(`create role ${role} login password '${password}' in role berth_password_login`);
    await adminQuery(`alter database ${database} owner to ${role}`);
    const dir = await mkdtemp(join(tmpdir(), 'berth-pg-password-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const url = new URL(settings.url as string);
    url.username = role;
    url.password = '';

    const good = join(dir, 'good');
    await writeFile(good, `${password}\n`);
    const metadata = await openPostgresMetadata({ ...settings, url: url.toString(), passwordFile: good });
    try {
      await metadata.blobs.link('pw/app', { digest: digestOf('pw'), size: 1 }, now);
      assert.ok(await metadata.blobs.get(digestOf('pw')));
    } finally {
      await metadata.close();
    }

    const probe = new pg.Client({ connectionString: url.toString().replace(`${role}@`, `${role}:wrong@`) });
    const enforced = await probe.connect().then(
      () => false,
      () => true,
    );
    await probe.end().catch(() => {});
    if (!enforced) return t.skip('this cluster does not ask berth_password_login members for a password');
    const bad = join(dir, 'bad');
    await writeFile(bad, 'not-the-password\n');
    await assert.rejects(openPostgresMetadata({ ...settings, url: url.toString(), passwordFile: bad }), (err: Error) => {
      assert.doesNotMatch(err.message, /\n/);
      assert.doesNotMatch(err.message, /not-the-password/);
      assert.match(err.message, new RegExp(`"${database}"`));
      assert.match(err.message, /password/);
      return true;
    });
  });

  it('fails startup with one line naming host, port and database when the server is unreachable', async () => {
    const port = await closedPort();
    const url = `postgres://berth:hunter2-secret@127.0.0.1:${port}/berthmeta`;
    await assert.rejects(openPostgresMetadata({ driver: 'postgres', url, poolSize: 2 }), (err: Error) => {
      assert.doesNotMatch(err.message, /\n/);
      assert.doesNotMatch(err.message, /hunter2/);
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      assert.match(err.message, /"berthmeta"/);
      assert.match(err.message, /"berth"/);
      assert.match(err.message, /check/);
      assert.equal(err.cause, undefined, 'no underlying error (with the connection settings) to print');
      return true;
    });
  });

  it('names the same database for the same key', () => {
    assert.equal(databaseNameFor('/tmp/x/data'), databaseNameFor('/tmp/x/data'));
    assert.notEqual(databaseNameFor('/tmp/x/data'), databaseNameFor('/tmp/y/data'));
  });
});

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
