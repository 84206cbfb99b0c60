import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ServerProcess } from '../support/berth-process.js';
import { startReferenceRegistry } from '../support/reference-registry.js';
import type { TestServer } from '../support/server.js';
import { Api, buildMultiArchImage, headDigest, imageStatus, pullToken, pushImage, startBerth, waitFor, type BuiltImage } from './helpers.js';

/**
 * Berth <- any OCI registry, by polling: Debian's docker-registry (CNCF Distribution) is the
 * source, with no webhook at all. The rule selects repositories by glob and tags by include and
 * exclude filters (a semver range among them); the first reconcile backfills, later ones copy only
 * what changed, after a HEAD of each tag.
 */
describe('sync by polling from CNCF Distribution', () => {
  let distribution: ServerProcess;
  let customer: TestServer;
  let api: Api;
  let first: BuiltImage;
  let second: BuiltImage;

  const upload = (repository: string, tag: string, image: BuiltImage) => pushImage(distribution.url, undefined, repository, tag, image.dir, image.index.index);

  before(async () => {
    [distribution, customer] = await Promise.all([startReferenceRegistry(), startBerth()]);
    api = await Api.asOwner(customer.url);
    [first, second] = await Promise.all([buildMultiArchImage('poll-first'), buildMultiArchImage('poll-second')]);
    for (const tag of ['1.0.0', '1.2.0', '2.0.0', '1.3.0-rc.1', 'latest', 'v1.5.0']) await upload('team/app', tag, first);
    await upload('team/tool', '1.1.0', first);
    await upload('other/thing', '1.2.0', first);
  });

  after(async () => {
    await Promise.all([distribution?.stop(), customer?.stop()]);
    await Promise.all([first?.dispose(), second?.dispose()]);
  });

  const wanted = ['team/app:1.2.0', 'team/app:v1.5.0', 'team/tool:1.1.0'];

  it('backfills exactly the selected images on the first run', async () => {
    const created = await api.post('/sync/rules', {
      name: 'mirror',
      source: { url: distribution.url },
      repositories: ['team/*'],
      tags: { include: ['semver:>=1.0.0 <2'], exclude: ['1.0.*'] },
      destinationPrefix: 'mirror',
      triggers: { pollIntervalMs: 300 },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.webhook, null);

    const rule = await waitFor('the backfill', async () => {
      const status = (await api.get('/sync/rules/mirror/status')).body;
      const copied = status.images.filter((i: any) => i.copies > 0).length;
      return status.rule.state.backfilledAt !== null && status.queue.pending === 0 && copied === wanted.length ? status : undefined;
    });
    assert.equal(rule.rule.state.lastReconcileError, null);
    assert.deepEqual(
      rule.images.map((i: any) => `${i.repository}:${i.tag}`),
      wanted,
      'status rows only for the selected images: 1.0.0 excluded, 2.0.0 out of range, the prerelease and latest are not in the range, other/* not selected',
    );

    const token = await pullToken(customer.url, 'mirror/team/app');
    for (const image of wanted) {
      const [repository, tag] = image.split(':') as [string, string];
      assert.equal(
        await headDigest(customer.url, await pullToken(customer.url, `mirror/${repository}`), `mirror/${repository}`, tag),
        first.index.index.digest,
        image,
      );
    }
    for (const tag of ['1.0.0', '2.0.0', '1.3.0-rc.1', 'latest']) assert.equal(await headDigest(customer.url, token, 'mirror/team/app', tag), undefined, tag);
    assert.equal(await headDigest(customer.url, await pullToken(customer.url, 'mirror/other/thing'), 'mirror/other/thing', '1.2.0'), undefined);
  });

  it('later polls copy only what changed: a moved tag and a new tag; unchanged tags are only HEADed', async () => {
    const before = await imageStatus(api, 'mirror');
    const checkedBefore = before.get('team/tool:1.1.0').lastCheckedAt as string;

    await upload('team/app', '1.2.0', second); // moved
    await upload('team/app', '1.4.0', second); // new, in range
    await upload('team/app', '1.0.5', second); // new, excluded

    const token = await pullToken(customer.url, 'mirror/team/app');
    await waitFor('the moved and the new tag', async () =>
      (await headDigest(customer.url, token, 'mirror/team/app', '1.2.0')) === second.index.index.digest &&
      (await headDigest(customer.url, token, 'mirror/team/app', '1.4.0')) === second.index.index.digest
        ? true
        : undefined,
    );
    const after = await waitFor('another poll after the copies', async () => {
      const rows = await imageStatus(api, 'mirror');
      return (rows.get('team/tool:1.1.0').lastCheckedAt as string) > checkedBefore ? rows : undefined;
    });
    assert.equal(after.get('team/app:1.2.0').copies, 2);
    assert.equal(after.get('team/app:1.4.0').copies, 1);
    // Unchanged since the backfill: checked again (HEAD), never copied again.
    assert.equal(after.get('team/tool:1.1.0').copies, 1);
    assert.equal(after.get('team/app:v1.5.0').copies, 1);
    assert.equal(after.has('team/app:1.0.5'), false);
    assert.equal(await headDigest(customer.url, token, 'mirror/team/app', '1.0.5'), undefined);
    const history = await fetch(`${customer.url}/api/v1/repositories/mirror/team/tool/history?tag=1.1.0`, {
      headers: { Authorization: `Bearer ${await pullToken(customer.url, 'mirror/team/tool')}` },
    });
    assert.equal(((await history.json()) as { pushes: unknown[] }).pushes.length, 1, 'team/tool:1.1.0 was tagged once');
  });

  it('reports per-rule status: backfill time, the last reconcile and its counts', async () => {
    const rule = await waitFor('a moment between reconciles', async () => {
      const body = (await api.get('/sync/rules/mirror')).body;
      return body.state.reconciling ? undefined : body;
    });
    assert.ok(rule.state.backfilledAt);
    assert.ok(rule.state.lastReconcileAt >= rule.state.backfilledAt);
    assert.ok(rule.state.lastSyncAt);
    assert.equal(rule.state.lastError, null);
    assert.ok(rule.state.nextReconcileAt);
    assert.equal(rule.state.lastReconcileStats.repositories, 2, 'team/app and team/tool');
    assert.equal(rule.state.lastReconcileStats.errors, 0);
  });
});
