import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cacheRuleInput, cacheRuleUpdate } from '../api/cache.js';
import { servableStale, tagDecision } from './freshness.js';
import { applyUpdate, conflict, effectiveRule, ruleForMirror, ruleForRepository, specFromInput, upstreamAllowed, type CacheRule } from './rule.js';

const defaults = { tagFreshnessMs: 600_000, staleIfErrorMs: 3_600_000, requestsPerSecond: 50, concurrency: 16 };
const meta = { managedBy: 'api' as const, id: 'x', createdAt: 0, updatedAt: 0 };

function rule(input: Record<string, unknown>): CacheRule {
  const parsed = cacheRuleInput.parse(input);
  return effectiveRule(parsed.name, specFromInput(parsed), meta, defaults);
}

describe('cache rules', () => {
  const hub = rule({ name: 'hub', prefix: 'hub/', upstream: { url: 'https://registry-1.docker.io/' }, repositories: ['library/*', 'bitnami/**'] });
  const ghcr = rule({ name: 'ghcr', prefix: 'mirrors/ghcr', upstream: { url: 'https://ghcr.io' }, tagFreshnessMs: 0 });

  it('normalises prefixes and upstream URLs, and derives mirror hosts (docker.io for Docker Hub)', () => {
    assert.equal(hub.prefix, 'hub');
    assert.equal(hub.upstreamUrl, 'https://registry-1.docker.io');
    assert.deepEqual(hub.mirrorOf, ['registry-1.docker.io', 'docker.io']);
    assert.deepEqual(ghcr.mirrorOf, ['ghcr.io']);
    assert.equal(ghcr.tagFreshnessMs, 0);
    assert.equal(hub.tagFreshnessMs, defaults.tagFreshnessMs);
    assert.deepEqual(rule({ name: 'none', prefix: 'none', upstream: { url: 'https://ghcr.io' }, mirrorOf: [] }).mirrorOf, []);
  });

  it('refuses upstream URLs with paths, credentials or other schemes, and prefixes that are not repository paths', () => {
    for (const url of ['https://ghcr.io/v2', 'https://user:pw@ghcr.io', 'ftp://ghcr.io', 'https://ghcr.io?x=1']) {
      assert.equal(cacheRuleInput.safeParse({ name: 'x', prefix: 'x', upstream: { url } }).success, false, url);
    }
    for (const prefix of ['', 'Hub', '/hub', 'a//b']) {
      assert.equal(cacheRuleInput.safeParse({ name: 'x', prefix, upstream: { url: 'https://ghcr.io' } }).success, false, prefix);
    }
    assert.equal(
      cacheRuleInput.safeParse({ name: 'x', prefix: 'x', upstream: { url: 'https://ghcr.io', credentials: { kind: 'basic', username: 'u' } } }).success,
      false,
      'basic credentials need one password source',
    );
  });

  it('routes repositories by prefix and mirror requests by host', () => {
    const rules = [hub, ghcr];
    assert.deepEqual(ruleForRepository(rules, 'hub/library/alpine'), { rule: hub, upstream: 'library/alpine' });
    assert.deepEqual(ruleForRepository(rules, 'mirrors/ghcr/org/app'), { rule: ghcr, upstream: 'org/app' });
    assert.equal(ruleForRepository(rules, 'hub'), undefined);
    assert.equal(ruleForRepository(rules, 'hubble/app'), undefined);
    assert.equal(ruleForMirror(rules, 'DOCKER.IO'), hub);
    assert.equal(ruleForMirror(rules, 'quay.io'), undefined);
  });

  it('checks the allow-list with the repository glob grammar', () => {
    assert.equal(upstreamAllowed(hub, 'library/alpine'), true);
    assert.equal(upstreamAllowed(hub, 'library/alpine/extra'), false);
    assert.equal(upstreamAllowed(hub, 'bitnami/charts/redis'), true);
    assert.equal(upstreamAllowed(hub, 'someone/app'), false);
  });

  it('finds conflicting names, overlapping prefixes and shared mirror hosts', () => {
    assert.equal(conflict([hub, ghcr]), undefined);
    assert.match(conflict([hub, rule({ name: 'hub2', prefix: 'hub/library', upstream: { url: 'https://quay.io' } })]) ?? '', /overlap/);
    assert.match(conflict([hub, rule({ name: 'hub', prefix: 'other', upstream: { url: 'https://quay.io' } })]) ?? '', /named hub/);
    assert.match(conflict([hub, rule({ name: 'hub2', prefix: 'hub2', upstream: { url: 'https://registry-1.docker.io' } })]) ?? '', /both mirrors of/);
    assert.equal(conflict([hub, rule({ name: 'hub2', prefix: 'hub2', upstream: { url: 'https://registry-1.docker.io' }, mirrorOf: [] })]), undefined);
  });

  it('applies updates: lists replaced, limits merged, null back to the default', () => {
    const updated = applyUpdate(
      ghcr.spec,
      cacheRuleUpdate.parse({ repositories: ['org/*'], tagFreshnessMs: null, limits: { concurrency: 2 }, evictAfterMs: 86_400_000 }),
    );
    assert.deepEqual(updated.repositories, ['org/*']);
    assert.equal(updated.tagFreshnessMs, undefined);
    assert.deepEqual(updated.limits, { concurrency: 2 });
    assert.equal(updated.evictAfterMs, 86_400_000);
    assert.equal(applyUpdate(updated, cacheRuleUpdate.parse({ evictAfterMs: null })).evictAfterMs, null);
  });
});

describe('tag freshness', () => {
  const r = { tagFreshnessMs: 1000, staleIfErrorMs: 5000 };
  const cached = { repository: 'hub/a', tag: 't', rule: 'hub', digest: 'sha256:a', checkedAt: 10_000, expired: false };

  it('serves a tag within its window, and asks the upstream after it, on a refresh, or when the local tag moved', () => {
    assert.equal(tagDecision(r, cached, 'sha256:a', 10_999), 'fresh');
    assert.equal(tagDecision(r, cached, 'sha256:a', 11_000), 'check');
    assert.equal(tagDecision(r, { ...cached, expired: true }, 'sha256:a', 10_001), 'check');
    assert.equal(tagDecision(r, cached, 'sha256:b', 10_001), 'check');
    assert.equal(tagDecision(r, undefined, 'sha256:a', 10_001), 'check');
  });

  it('serves a stale tag while the upstream fails, until the stale limit', () => {
    assert.equal(servableStale(r, cached, 'sha256:a', 16_000), true);
    assert.equal(servableStale(r, cached, 'sha256:a', 16_001), false);
    assert.equal(servableStale(r, cached, undefined, 12_000), false);
    assert.equal(servableStale({ ...r, staleIfErrorMs: 0 }, cached, 'sha256:a', 11_001), false);
  });
});
