/**
 * `berth apply` with a `lifecycle:` section and `berth lifecycle …` as real processes against a real
 * Berth: policies from a file (idempotent, pruned only when asked), the preview of a rule in a file,
 * a run followed to its end, reports, and usage.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { failsWith, ok, runCli } from '../admin/helpers.js';
import { ownerName, ownerPassword, type TestServer } from '../support/server.js';
import { Api, ManualClock, RegistryClient, day, startLifecycleServer } from './helpers.js';

describe('berth apply (lifecycle) and berth lifecycle', () => {
  let server: TestServer;
  let api: Api;
  let dir = '';
  let env: NodeJS.ProcessEnv;
  const clock = new ManualClock();

  /** The CLI as the owner, password on standard input. */
  const berth = (args: string[]) => runCli([...args, '--username', ownerName, '--password-stdin'], { env, stdin: `${ownerPassword}\n` });
  const file = async (name: string, text: string) => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };

  before(async () => {
    server = await startLifecycleServer({ clock });
    api = await Api.asOwner(server.url);
    dir = await mkdtemp(join(tmpdir(), 'berth-lifecycle-cli-'));
    env = { DOCKER_CONFIG: join(dir, 'docker'), BERTH_REGISTRY: new URL(server.url).host };
    const registry = new RegistryClient(server.url, undefined, clock);
    clock.shift(-30 * day);
    for (let i = 1; i <= 4; i++) {
      clock.shift(day);
      await registry.image('ci/web', `ci-${i}`);
    }
    clock.reset();
  });
  after(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const policies = `
lifecycle:
  retention:
    - name: ci-builds
      repositories: ['ci/**']
      tags: { include: ['ci-*'] }
      conditions: { keepNewest: 2 }
      mode: enforce
  immutability:
    - name: releases
      repositories: ['**']
      tags: { include: ['v*'] }
      writers:
        - conditions: [{ claim: ref, glob: 'refs/tags/*' }]
  quotas:
    - name: team-a
      repositories: ['team-a/**']
      limit: 10GiB
      perPrincipal: { pushesPerHour: 500 }
`;

  it('creates the policies a file lists, and a second apply changes nothing', async () => {
    const path = await file('berth.yaml', policies);
    const dry = ok(await berth(['apply', '-f', path, '--dry-run']));
    assert.match(dry.stdout, /\+ create retention policy ci-builds/);
    assert.match(dry.stdout, /\+ create immutability policy releases/);
    assert.match(dry.stdout, /\+ create quotas policy team-a/);
    assert.equal((await api.get('/lifecycle/policies')).body.retention.length, 0, 'a dry run applies nothing');
    const applied = ok(await berth(['apply', '-f', path]));
    assert.match(applied.stdout, /applied 3 change\(s\)/);
    assert.equal((await api.get('/lifecycle/quotas/team-a')).body.rule.limit, 10 * 1024 ** 3);
    assert.match(ok(await berth(['apply', '-f', path])).stdout, /no changes/);
  });

  it('replaces a changed rule, keeps unlisted ones without prune and deletes them with it', async () => {
    const changed = policies.replace('keepNewest: 2', 'keepNewest: 3').replace(/ {2}quotas:[\s\S]*$/, '');
    const replaced = ok(await berth(['apply', '-f', await file('changed.yaml', changed)]));
    assert.match(replaced.stdout, /~ replace retention policy ci-builds/);
    assert.doesNotMatch(replaced.stdout, /team-a/, 'quotas are not listed: left alone');
    assert.equal((await api.get('/lifecycle/retention/ci-builds')).body.rule.conditions.keepNewest, 3);
    const without = `lifecycle:\n  quotas: []\n`;
    assert.match(ok(await berth(['apply', '-f', await file('empty.yaml', without)])).stdout, /kept quotas policy team-a: not in the file/);
    assert.match(ok(await berth(['apply', '-f', await file('prune.yaml', `prune: true\n${without}`)])).stdout, /- delete quotas policy team-a/);
    assert.equal((await api.get('/lifecycle/quotas/team-a')).status, 404);
  });

  it('refuses a file with an invalid rule, naming where', async () => {
    failsWith(
      await berth([
        'apply',
        '-f',
        await file('bad.yaml', 'lifecycle:\n  retention:\n    - name: x\n      repositories: [a/**]\n      conditions: { olderThan: soon }\n'),
      ]),
      /lifecycle\.retention\.0\.conditions\.olderThan: expected a duration/,
    );
    failsWith(await berth(['apply', '-f', await file('kind.yaml', 'lifecycle:\n  cleanup: []\n')]), /lifecycle\.cleanup: unknown kind/);
  });

  it('lists and shows policies', async () => {
    const listed = ok(await berth(['lifecycle', 'list'])).stdout;
    assert.match(listed, /retention\s+ci-builds\s+ci\/\*\* tags ci-\*: delete images beyond the newest 3; enforce, on request/);
    assert.match(listed, /immutability\s+releases\s+\*\* tags v\*: write-once, written only by 1 writer/);
    const shown = JSON.parse(ok(await berth(['lifecycle', 'show', 'retention', 'ci-builds', '--json'])).stdout);
    assert.equal(shown.rule.mode, 'enforce');
    failsWith(await berth(['lifecycle', 'show', 'retention', 'nope']), /no retention policy named nope/);
  });

  it('previews a rule in a file, then runs the saved rule and follows it', async () => {
    const rule = await file('rule.yaml', "repositories: ['ci/**']\nconditions: { keepNewest: 1 }\n");
    const preview = ok(await berth(['lifecycle', 'preview', '-f', rule])).stdout;
    assert.match(preview, /4 candidate\(s\) in 1 repository/);
    assert.match(preview, /would delete 3 manifest\(s\)/);
    assert.match(preview, /nothing was deleted/);

    const run = ok(await berth(['lifecycle', 'run', 'ci-builds'])).stdout;
    assert.match(run, /done delete ci\/web@sha256:.* \[ci-1\] \(not among the newest 3/);
    assert.match(run, /succeeded: 1 repository, 4 candidate\(s\); deleted 1 manifest\(s\)/);
    const runs = ok(await berth(['lifecycle', 'runs', '--policy', 'ci-builds'])).stdout;
    const id = /^([0-9a-f-]{36})\s+ci-builds/m.exec(runs)?.[1];
    assert.ok(id, runs);
    assert.match(ok(await berth(['lifecycle', 'report', id])).stdout, /done delete ci\/web/);
  });

  it('shows usage after a refresh', async () => {
    const shown = ok(await berth(['lifecycle', 'usage', 'ci/**', '--refresh'])).stdout;
    assert.match(shown, /ci\/web\s+\d+(\.\d)? (B|KiB)\s+\d+(\.\d)? (B|KiB)\s+3\s+/);
    assert.match(shown, /ci\/\*\*: 1 repository/);
  });
});
