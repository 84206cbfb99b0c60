/**
 * /api/v1/lifecycle: policies as data (create, replace, read, delete, every refusal), audited, and
 * the retention preview of a saved and of an unsaved rule.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestServer } from '../support/server.js';
import { assertError } from '../admin/helpers.js';
import { Api, ManualClock, RegistryClient, day, startLifecycleServer } from './helpers.js';

describe('/api/v1/lifecycle', () => {
  let server: TestServer;
  let api: Api;
  const clock = new ManualClock();

  before(async () => {
    server = await startLifecycleServer({ clock });
    api = await Api.asOwner(server.url);
  });
  after(async () => server?.stop());

  describe('policies', () => {
    it('creates a retention rule in canonical form (durations in ms, defaults filled), then replaces it', async () => {
      const created = await api.put('/lifecycle/retention/ci-builds', {
        repositories: ['ci/**'],
        tags: { include: ['ci-*'], exclude: ['ci-keep-*'] },
        conditions: { keepNewest: 5, notPulledFor: '14d' },
        match: 'all',
        schedule: { every: '1d' },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal(created.body.created, true);
      const rule = created.body.policy.rule;
      assert.deepEqual(rule.conditions, { keepNewest: 5, notPulledFor: 14 * day });
      assert.equal(rule.mode, 'dry-run', 'a new rule reports before it deletes');
      assert.equal(rule.allowEmpty, false);
      assert.equal(rule.untagged, false);
      assert.ok(created.body.policy.nextRunAt, 'a scheduled rule says when it runs next');

      const replaced = await api.put('/lifecycle/retention/ci-builds', { ...rule, mode: 'enforce' });
      assert.equal(replaced.status, 200);
      assert.equal(replaced.body.created, false);
      assert.equal(replaced.body.policy.rule.mode, 'enforce');
      assert.equal((await api.get('/lifecycle/retention/ci-builds')).body.rule.mode, 'enforce');
    });

    it('creates immutability rules (exclusions unbounded) and quotas, and lists every kind', async () => {
      const exclude = Array.from({ length: 500 }, (_, i) => `v0.${i}.*`);
      assert.equal(
        (
          await api.put('/lifecycle/immutability/releases', {
            repositories: ['acme/**'],
            tags: { include: ['v*', 'semver:>=1.0.0'], exclude },
            writers: [{ conditions: [{ claim: 'ref', glob: 'refs/tags/*' }] }],
          })
        ).status,
        201,
      );
      assert.equal(
        (await api.put('/lifecycle/quotas/team-a', { repositories: ['team-a/**'], limit: '1GiB', perPrincipal: { pushesPerHour: 100 } })).status,
        201,
      );
      const all = await api.get('/lifecycle/policies');
      assert.equal(all.status, 200);
      assert.deepEqual(
        all.body.retention.map((p: any) => p.name),
        ['ci-builds'],
      );
      assert.equal(all.body.immutability[0].rule.tags.exclude.length, 500);
      assert.equal(all.body.quotas[0].rule.limit, 1024 ** 3);
    });

    it('refuses invalid rules, naming each problem', async () => {
      assertError(await api.put('/lifecycle/retention/bad', { repositories: ['ci/**'], conditions: {} }), 400, 'UNSUPPORTED', /at least one condition/);
      assertError(
        await api.put('/lifecycle/retention/bad', { repositories: ['ci/**'], conditions: { keepNewest: 1, olderThan: '1d' } }),
        400,
        'UNSUPPORTED',
        /match: all or match: any/,
      );
      assertError(await api.put('/lifecycle/retention/bad', { repositories: ['CI'], conditions: { keepNewest: 1 } }), 400, 'UNSUPPORTED', /repository glob/);
      assertError(
        await api.put('/lifecycle/retention/bad', { repositories: ['ci/**'], tags: { include: ['regex:(unclosed'] }, conditions: { keepNewest: 1 } }),
        400,
        'UNSUPPORTED',
        /tags\.include\.0: invalid regular expression/,
      );
      assertError(await api.put('/lifecycle/retention/bad', { repositories: ['ci/**'], conditions: { olderThan: 'a while' } }), 400, 'UNSUPPORTED', /duration/);
      assertError(await api.put('/lifecycle/quotas/bad', { repositories: ['x/**'] }), 400, 'UNSUPPORTED', /sets a limit, a rate limit, or both/);
      assertError(await api.put('/lifecycle/quotas/bad', { repositories: ['x/**'], limit: 'lots' }), 400, 'UNSUPPORTED', /size/);
      assertError(await api.put('/lifecycle/immutability/bad', { repositories: ['x/**'], immutable: false }), 400, 'UNSUPPORTED', /must name writers/);
      assertError(await api.put('/lifecycle/retention/Bad_Name', { repositories: ['x/**'], conditions: { keepNewest: 1 } }), 400, 'UNSUPPORTED', /policy name/);
      assertError(await api.put('/lifecycle/retention/x', { name: 'y', repositories: ['x/**'], conditions: { keepNewest: 1 } }), 400, 'UNSUPPORTED', /names/);
      assertError(await api.put('/lifecycle/retention/x', '{not json'), 400, 'UNSUPPORTED', /JSON/);
      assertError(await api.get('/lifecycle/retention/missing'), 404, 'NAME_UNKNOWN');
      assertError(await api.get('/lifecycle/others/x'), 404, 'UNSUPPORTED');
      assert.equal((await api.get('/lifecycle/policies')).body.retention.length, 1, 'nothing was stored');
    });

    it('is for owners only', async () => {
      const res = await fetch(`${server.url}/api/v1/lifecycle/policies`);
      assert.equal(res.status, 401);
    });

    it('deletes a policy, and audits every change with its actor', async () => {
      assert.equal((await api.delete('/lifecycle/quotas/team-a')).status, 204);
      assertError(await api.delete('/lifecycle/quotas/team-a'), 404, 'NAME_UNKNOWN');
      const audit = await api.get('/audit?limit=50');
      const events = audit.body.entries.map((e: any) => `${e.event} ${e.detail?.kind}/${e.detail?.name} by ${e.principalName}`);
      for (const line of [
        'admin.lifecycle_policy.created retention/ci-builds by owner',
        'admin.lifecycle_policy.updated retention/ci-builds by owner',
        'admin.lifecycle_policy.created quotas/team-a by owner',
        'admin.lifecycle_policy.deleted quotas/team-a by owner',
      ]) {
        assert.ok(events.includes(line), `${line} in ${JSON.stringify(events)}`);
      }
    });
  });

  describe('preview', () => {
    it('lists what a saved rule, and an unsaved one, would delete and why, deleting nothing', async () => {
      const registry = new RegistryClient(server.url, undefined, clock);
      clock.shift(-40 * day);
      for (let i = 1; i <= 4; i++) {
        await registry.image('ci/web', `ci-${i}`);
        clock.shift(day);
      }
      clock.reset();
      await registry.image('ci/web', 'ci-5');
      const saved = await api.post('/lifecycle/retention/ci-builds/preview', {});
      assert.equal(saved.status, 200, JSON.stringify(saved.body));
      // keepNewest 5 and notPulledFor 14d (all): nothing is beyond the newest five.
      assert.deepEqual(saved.body.actions, []);
      assert.equal(saved.body.candidates, 5);

      const unsaved = await api.post('/lifecycle/retention/preview', { rule: { repositories: ['ci/**'], conditions: { keepNewest: 2 } } });
      assert.equal(unsaved.status, 200, JSON.stringify(unsaved.body));
      assert.deepEqual(
        unsaved.body.actions.map((a: any) => [a.repository, a.action, a.tags]),
        [
          ['ci/web', 'delete', ['ci-3']],
          ['ci/web', 'delete', ['ci-2']],
          ['ci/web', 'delete', ['ci-1']],
        ],
      );
      assert.match(unsaved.body.actions[0].reason, /not among the newest 2/);
      assert.deepEqual(await registry.tags('ci/web'), ['ci-1', 'ci-2', 'ci-3', 'ci-4', 'ci-5'], 'a preview deletes nothing');

      const limited = await api.post('/lifecycle/retention/preview', {
        rule: { repositories: ['ci/**'], conditions: { keepNewest: 2 } },
        repository: 'other/repo',
      });
      assert.deepEqual(limited.body.actions, []);
      assertError(await api.post('/lifecycle/retention/preview', {}), 400, 'UNSUPPORTED', /give the rule/);
      assertError(await api.post('/lifecycle/retention/ci-builds/preview', { rule: {} }), 400, 'UNSUPPORTED', /as saved/);
    });
  });
});
