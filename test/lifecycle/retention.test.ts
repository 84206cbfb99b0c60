/**
 * Retention runs against a real Berth: what a preview lists is what an enforce run deletes; dry runs
 * report and delete nothing; deletions go through the registry's delete path (webhook `delete`
 * events naming the rule, audit entries); last pulls keep images; indexes and referrers go
 * together; a run resumes where an interrupted one stopped; and a run racing pushes and pulls
 * deletes nothing pushed during it and leaves no tag or index pointing at nothing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Receiver } from '../webhooks/helpers.js';
import type { TestServer } from '../support/server.js';
import { Api, ManualClock, RegistryClient, day, finishedRun, startLifecycleServer, waitFor, type Image } from './helpers.js';

describe('retention runs', () => {
  let server: TestServer;
  let api: Api;
  let registry: RegistryClient;
  let receiver: Receiver;
  const clock = new ManualClock();

  before(async () => {
    server = await startLifecycleServer({ clock });
    api = await Api.asOwner(server.url);
    registry = new RegistryClient(server.url, undefined, clock);
    receiver = await Receiver.start();
    const hook = await api.post('/webhooks', { name: 'deletes', url: `${receiver.url}/hook`, events: ['delete'] });
    assert.equal(hook.status, 201, JSON.stringify(hook.body));
  });
  after(async () => {
    await server?.stop();
    await receiver?.close();
  });

  /** Pushes `count` images tagged `<prefix>-<i>`, one a day, ending `endDaysAgo` days ago. */
  async function pushOld(repository: string, prefix: string, count: number, endDaysAgo = 10): Promise<Image[]> {
    const images: Image[] = [];
    clock.shift(-(endDaysAgo + count) * day);
    for (let i = 1; i <= count; i++) {
      clock.shift(day);
      images.push(await registry.image(repository, `${prefix}-${i}`));
    }
    clock.reset();
    return images;
  }

  async function runRule(name: string, body: Record<string, unknown>, dryRun?: boolean) {
    const saved = await api.put(`/lifecycle/retention/${name}`, body);
    assert.ok(saved.status === 200 || saved.status === 201, JSON.stringify(saved.body));
    const started = await api.post(`/lifecycle/retention/${name}/run`, dryRun === undefined ? {} : { dryRun });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    return finishedRun(api, started.body.run.id);
  }

  it('deletes in an enforce run exactly what the preview listed, with delete webhooks and audit entries naming the rule', async () => {
    const images = await pushOld('keep/app', 'ci', 6);
    const rule = { repositories: ['keep/**'], tags: { include: ['ci-*'] }, conditions: { keepNewest: 2 }, mode: 'enforce' };
    assert.equal((await api.put('/lifecycle/retention/keep-two', rule)).status, 201);
    const preview = await api.post('/lifecycle/retention/keep-two/preview', {});
    const planned = preview.body.actions.map((a: any) => `${a.action} ${a.digest} ${a.tags.join(',')}`);
    assert.equal(planned.length, 4);

    const { run, actions } = await runRule('keep-two', rule);
    assert.equal(run.status, 'succeeded', JSON.stringify(run));
    assert.equal(run.dryRun, false);
    assert.deepEqual(
      actions.map((a: any) => `${a.action} ${a.digest} ${a.tags.join(',')}`),
      planned,
    );
    assert.ok(actions.every((a: any) => a.outcome === 'deleted'));
    assert.deepEqual(run.progress, { repositories: 1, candidates: 6, deletedManifests: 4, untaggedTags: 0, skipped: 0, cursor: 'keep/app' });
    assert.deepEqual(await registry.tags('keep/app'), ['ci-5', 'ci-6']);
    for (const image of images.slice(0, 4)) assert.equal((await registry.get('keep/app', image.digest)).status, 404);

    const deliveries = await waitFor('four delete deliveries', () => {
      const found = receiver.received.filter((r) => r.json?.target?.repository === 'keep/app');
      return found.length >= 4 ? found : undefined;
    });
    for (const d of deliveries) {
      assert.equal(d.json.action, 'delete');
      assert.equal(d.json.berth.actor.principalName, 'retention:keep-two');
    }
    assert.deepEqual(
      deliveries.map((d) => d.json.target.digest).sort(),
      images
        .slice(0, 4)
        .map((i) => i.digest)
        .sort(),
    );
    const audit = (await api.get('/audit?limit=100')).body.entries.filter((e: any) => e.event === 'lifecycle.retention.manifest_deleted');
    assert.equal(audit.filter((e: any) => e.detail.repository === 'keep/app').length, 4);
    assert.equal(audit[0].principalName, 'retention:keep-two');
    assert.equal(audit[0].detail.run, run.id);
  });

  it('reports in a dry run and deletes nothing; a scheduled run of a dry-run rule reports too', async () => {
    await pushOld('dry/app', 'ci', 3);
    const rule = { repositories: ['dry/**'], conditions: { olderThan: '5d' }, allowEmpty: true, schedule: { every: '1h' } };
    const { run, actions } = await runRule('dry', rule);
    assert.equal(run.dryRun, true, 'a rule is dry-run unless it says enforce');
    assert.equal(actions.length, 3);
    assert.ok(actions.every((a: any) => a.outcome === 'would-delete'));
    assert.deepEqual(await registry.tags('dry/app'), ['ci-1', 'ci-2', 'ci-3']);

    // The schedule falls due (moved by hand, as an hour passing would): one run starts by itself.
    await server.app.metadata.lifecycle.schedule.set('retention:dry', clock.now());
    const scheduled = await waitFor('the scheduled run', async () => {
      const runs = (await api.get('/lifecycle/runs?policy=dry')).body.runs;
      return runs.find((r: any) => r.trigger === 'schedule');
    });
    const report = await finishedRun(api, scheduled.id);
    assert.equal(report.run.dryRun, true);
    assert.equal(report.actions.length, 3);
    assert.ok((await server.app.metadata.lifecycle.schedule.get('retention:dry'))! > clock.now(), 'the schedule moved on');
    assert.deepEqual(await registry.tags('dry/app'), ['ci-1', 'ci-2', 'ci-3']);
  });

  it('keeps images pulled recently (notPulledFor), counting a pull of a platform manifest for its index', async () => {
    const old = await pushOld('pulls/app', 'ci', 3);
    const platforms = [await registry.image('pulls/app'), await registry.image('pulls/app')];
    clock.shift(-30 * day);
    const index = await registry.index('pulls/app', 'multi', platforms);
    clock.reset();
    assert.equal((await registry.get('pulls/app', 'ci-2')).status, 200);
    assert.equal((await registry.get('pulls/app', platforms[1]!.digest)).status, 200);
    const rule = { repositories: ['pulls/**'], conditions: { notPulledFor: '7d' }, mode: 'enforce', allowEmpty: true };
    assert.equal((await api.put('/lifecycle/retention/unpulled', rule)).status, 201);
    // The pulls reach the database in the next batch: wait until the preview sees them.
    const preview = await waitFor('the pulls to be written', async () => {
      const body = (await api.post('/lifecycle/retention/unpulled/preview', {})).body;
      return body.actions.length === 2 ? body : undefined;
    });
    assert.deepEqual(
      preview.actions.map((a: any) => a.tags),
      [['ci-3'], ['ci-1']],
    );
    const { actions } = await runRule('unpulled', rule);
    assert.equal(actions.length, 2);
    assert.deepEqual(await registry.tags('pulls/app'), ['ci-2', 'multi']);
    assert.equal((await registry.get('pulls/app', index.digest)).status, 200);
    assert.equal((await registry.get('pulls/app', old[0]!.digest)).status, 404);
  });

  it('deletes an index with its platform manifests and a signature with its image, each after what it goes with', async () => {
    clock.shift(-20 * day);
    const platforms = [await registry.image('multi/app'), await registry.image('multi/app')];
    const index = await registry.index('multi/app', 'v1', platforms);
    const signature = await registry.image('multi/app', undefined, {
      subject: { digest: index.digest, size: index.size, mediaType: 'application/vnd.oci.image.index.v1+json' },
      artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
    });
    clock.reset();
    await registry.image('multi/app', 'v2');
    const { actions } = await runRule('multi', { repositories: ['multi/**'], conditions: { keepNewest: 1 }, mode: 'enforce' });
    assert.ok(actions.every((a: any) => a.outcome === 'deleted'));
    assert.equal(actions[0].digest, index.digest, 'the index goes first');
    assert.deepEqual(
      actions
        .slice(1)
        .map((a: any) => a.digest)
        .sort(),
      [platforms[0]!.digest, platforms[1]!.digest, signature.digest].sort(),
    );
    assert.match(
      actions.find((a: any) => a.digest === signature.digest).reason,
      /referrer \(application\/vnd\.dev\.cosign\.artifact\.sig\.v1\+json\) of sha256:/,
    );
    for (const gone of [index, ...platforms, signature]) assert.equal((await registry.get('multi/app', gone.digest)).status, 404);
    assert.deepEqual(await registry.tags('multi/app'), ['v2']);
    const referrers = await registry.call('multi/app', 'GET', `/v2/multi/app/referrers/${index.digest}`);
    assert.deepEqual(referrers.body.manifests, []);
  });

  it('never removes a write-once tag, even when the rule selects everything', async () => {
    const [release] = await pushOld('frozen/app', 'v', 1);
    await pushOld('frozen/app', 'ci', 2);
    assert.equal((await api.put('/lifecycle/immutability/frozen', { repositories: ['frozen/**'], tags: { include: ['v-*'] } })).status, 201);
    const { actions } = await runRule('frozen', { repositories: ['frozen/**'], conditions: { olderThan: '1d' }, mode: 'enforce', allowEmpty: true });
    assert.deepEqual(
      actions
        .map((a: any) => a.tags)
        .flat()
        .sort(),
      ['ci-1', 'ci-2'],
    );
    assert.deepEqual(await registry.tags('frozen/app'), ['v-1']);
    assert.equal((await registry.get('frozen/app', 'v-1')).headers.get('docker-content-digest'), release!.digest);
  });

  it('resumes an interrupted run after the last repository it finished', async () => {
    const store = server.app.metadata.lifecycle.runs;
    // A run that another replica was running when it died: it finished <prefix>/b, then its lease lapsed.
    // This server's runner looks for runs every 100 ms here, and may take the run in the moment between
    // its creation and the dead replica's claim. That run then simply completes here, and the scenario
    // starts again on repositories and a rule of its own.
    for (let attempt = 1; ; attempt++) {
      const prefix = `resume${attempt}`;
      for (const name of ['a', 'b', 'c']) await pushOld(`${prefix}/${name}`, 'ci', 2);
      const rule = { repositories: [`${prefix}/**`], conditions: { keepNewest: 1 }, mode: 'enforce' };
      const saved = await api.put(`/lifecycle/retention/${prefix}`, rule);
      assert.equal(saved.status, 201);
      const now = clock.now();
      const id = `f0e1d2c3-0000-4000-8000-00000000000${attempt}`;
      await store.create(
        {
          id,
          kind: 'retention',
          policyId: undefined,
          policyName: prefix,
          spec: JSON.stringify(saved.body.policy.rule),
          dryRun: false,
          trigger: 'request',
          requestedBy: 'owner',
        },
        now,
      );
      // The dead replica holds the lease while it saves its progress (a lease of a millisecond would let this
      // server's runner claim the run first, on a slow database, and start it from scratch); then the clock
      // moves past the lease, as if the replica had died.
      const lease = 60_000;
      const [claimed] = await store.claim({ owner: 'dead-replica', now, until: now + lease, limit: 1 });
      if (claimed === undefined) {
        assert.ok(attempt < 5, 'this server took the run before the dead replica could, five times over');
        await finishedRun(api, id);
        continue;
      }
      assert.equal(claimed.id, id);
      const progressSaved = await store.saveProgress(
        claimed.id,
        'dead-replica',
        JSON.stringify({ repositories: 2, candidates: 4, deletedManifests: 2, untaggedTags: 0, skipped: 0, cursor: `${prefix}/b` }),
        now,
      );
      assert.equal(progressSaved, true, 'the lease holder saves its progress');
      clock.shift(lease + 1000);
      const { run, actions } = await finishedRun(api, claimed.id).finally(() => clock.reset());
      assert.equal(run.status, 'succeeded');
      assert.deepEqual(
        actions.map((a: any) => a.repository),
        [`${prefix}/c`],
      );
      assert.equal(run.progress.deletedManifests, 3);
      assert.deepEqual(await registry.tags(`${prefix}/a`), ['ci-1', 'ci-2'], 'repositories before the cursor are not visited again');
      assert.deepEqual(await registry.tags(`${prefix}/c`), ['ci-2']);
      return;
    }
  });

  it('races pushes and pulls: deletes nothing pushed during the run and leaves nothing dangling', async () => {
    const repositories = Array.from({ length: 10 }, (_, i) => `race/r${i}`);
    const old = new Map<string, Image[]>();
    for (const repository of repositories) old.set(repository, await pushOld(repository, 'ci', 8));
    // What is pushed during the run is protected twice: by the minimum age when the plan sees it,
    // and by the conditional delete when it lands between the plan and the deletion.
    const rule = { repositories: ['race/**'], tags: { include: ['ci-*'] }, conditions: { keepNewest: 3 }, minimumAge: '1h', mode: 'enforce' };
    assert.equal((await api.put('/lifecycle/retention/race', rule)).status, 201);

    const pushedDuring = new Map<string, string>(); // tag -> digest, for every push while the run went on
    const errors: string[] = [];
    let running = true;
    const racers = repositories.map(async (repository, r) => {
      const images = old.get(repository)!;
      for (let i = 0; running; i++) {
        // Re-tag an old image (a tag that was planned for deletion may be pushed again), push a new
        // image, and pull old ones; none of this may fail with a server error.
        const retag = images[i % images.length]!;
        const retagged = await registry.putManifest(repository, `ci-${(i % images.length) + 1}`, retag.bytes);
        if (retagged.status >= 500) errors.push(`retag: ${retagged.status}`);
        else if (retagged.status === 201) pushedDuring.set(`${repository}:ci-${(i % images.length) + 1}`, retag.digest);
        if (i % 4 === 0) {
          const fresh = await registry.image(repository, `ci-new-${r}-${i}-${randomBytes(2).toString('hex')}`);
          pushedDuring.set(`${repository}:${fresh.digest}`, fresh.digest);
        }
        for (const image of images.slice(0, 2)) {
          const pulled = await registry.get(repository, image.digest);
          if (pulled.status >= 500) errors.push(`pull: ${pulled.status}`);
        }
      }
    });
    // Pushes and pulls are under way before the run starts, and go on until it ends.
    await waitFor('the racers to get going', () => pushedDuring.size >= 2 * repositories.length);
    const started = await api.post('/lifecycle/retention/race/run', {});
    assert.equal(started.status, 202);
    const report = await finishedRun(api, started.body.run.id);
    running = false;
    await Promise.all(racers);
    assert.deepEqual(errors, []);
    assert.equal(report.run.status, 'succeeded', JSON.stringify(report.run));

    // Every tag pushed while the run went on still points at what was pushed (or at what a later
    // push of the same tag set: the racers only re-push a tag's own digest).
    for (const [key, digest] of pushedDuring) {
      const [repository, reference] = key.split(/:(.*)/s) as [string, string];
      const answer = await registry.get(repository, reference);
      assert.equal(answer.status, 200, `${key}, pushed during the run, is gone`);
      if (!reference.startsWith('sha256:')) assert.equal(answer.headers.get('docker-content-digest'), digest);
    }
    // Nothing dangles: every tag resolves, and every manifest's blobs are there.
    for (const repository of repositories) {
      for (const tag of await registry.tags(repository)) {
        const answer = await registry.get(repository, tag);
        assert.equal(answer.status, 200, `${repository}:${tag} points at nothing`);
        for (const blob of [answer.body.config, ...answer.body.layers]) assert.equal((await registry.headBlob(repository, blob.digest)).status, 200);
      }
    }
    // What the run reports as deleted is gone; what it skipped was pushed again.
    for (const action of report.actions) {
      if (action.outcome === 'deleted') {
        const pushedAgain = [...pushedDuring.values()].includes(action.digest);
        if (!pushedAgain) assert.equal((await registry.get(action.repository, action.digest)).status, 404);
      }
    }
  });
});
