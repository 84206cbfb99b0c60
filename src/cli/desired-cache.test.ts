import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CacheRuleView } from '../api/cache.js';
import { parseDesiredState, DesiredStateError } from './desired-state.js';
import { formatCacheChange, planCache } from './desired-cache.js';

const file = `
cache:
  rules:
    - name: hub
      prefix: hub
      upstream:
        url: https://registry-1.docker.io
        credentials: { kind: basic, username: acme, passwordFile: /run/secrets/hub }
      repositories: ["library/*"]
      tagFreshnessMs: 3600000
`;

function view(overrides: Partial<CacheRuleView> = {}): CacheRuleView {
  return {
    name: 'hub',
    managedBy: 'api',
    prefix: 'hub',
    upstream: {
      url: 'https://registry-1.docker.io',
      credentials: { kind: 'basic', username: 'acme', passwordSource: 'file', passwordFile: '/run/secrets/hub', passwordEnv: null },
    },
    mirrorOf: ['registry-1.docker.io', 'docker.io'],
    repositories: ['library/*'],
    tagFreshnessMs: 3_600_000,
    staleIfErrorMs: 604_800_000,
    evictAfterMs: null,
    limits: { requestsPerSecond: 50, concurrency: 16 },
    createdAt: null,
    updatedAt: null,
    state: { upstreamBlockedUntil: null, lastUpstreamError: null, lastUpstreamErrorAt: null },
    ...overrides,
  };
}

describe("berth apply's cache section", () => {
  const desired = parseDesiredState(file, 'berth.yaml', 'urn:berth:test').cacheRules ?? [];

  it('creates what is missing, and then has nothing to do', () => {
    const created = planCache(desired, [], false);
    assert.deepEqual(created.changes.map(formatCacheChange), ['+ create cache rule hub: hub/ <- https://registry-1.docker.io (library/*)']);
    assert.deepEqual(planCache(desired, [view()], false).changes, []);
  });

  it('updates what differs, only the fields the file sets', () => {
    const { changes } = planCache(desired, [view({ repositories: ['library/*', 'bitnami/*'], tagFreshnessMs: 60_000, staleIfErrorMs: 1 })], false);
    assert.equal(changes.length, 1);
    const change = changes[0];
    assert.ok(change?.op === 'cache-update');
    assert.deepEqual(change.body, { repositories: ['library/*'], tagFreshnessMs: 3_600_000 });
    assert.match(formatCacheChange(change), /repositories \[library\/\*, bitnami\/\*\] -> \[library\/\*\], tagFreshnessMs 60000 -> 3600000/);
  });

  it('prunes API rules only, and refuses to manage configuration rules', () => {
    const pruned = planCache(desired, [view(), view({ name: 'old', prefix: 'old' }), view({ name: 'conf', prefix: 'conf', managedBy: 'config' })], true);
    assert.deepEqual(pruned.changes.map(formatCacheChange), ['- delete cache rule old (what it cached stays)']);
    assert.deepEqual(pruned.notes, ["kept cache rule conf: the server's configuration file manages it"]);
    assert.match(planCache(desired, [view({ managedBy: 'config' })], false).problems[0] ?? '', /configuration file/);
  });

  it('refuses a password in the file', () => {
    assert.throws(
      () => parseDesiredState(file.replace('passwordFile: /run/secrets/hub', 'password: hunter2'), 'berth.yaml', 'urn:berth:test'),
      (err: unknown) => err instanceof DesiredStateError && /never holds secrets/.test(err.message),
    );
  });
});
