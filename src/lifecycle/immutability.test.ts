import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { immutabilityInput, type ImmutabilityInput } from '../api/lifecycle.js';
import { decideTag, describePusher } from './immutability.js';
import { describedDigest, isFallbackTag, selectionProblems, tagSelected } from './selectors.js';

const rule = (input: Partial<ImmutabilityInput>) =>
  immutabilityInput.parse({ name: 'releases', repositories: ['acme/**'], tags: { include: ['v*'] }, ...input });
const a = `sha256:${'a'.repeat(64)}`;
const b = `sha256:${'b'.repeat(64)}`;
const ci = (ref: string, extra: Record<string, unknown> = {}) => ({
  principalId: 'p1',
  principalName: 'ci-bot',
  provenance: { iss: 'https://token.actions.githubusercontent.com', repository: 'acme/app', ref, run_id: '42', ...extra },
});

describe('tag selectors', () => {
  it('select by glob, regex and semver, with exclusions', () => {
    const selector = { include: ['v*', 'regex:^rc-[0-9]+$', 'semver:>=2.0.0'], exclude: ['v0.*'] };
    assert.equal(tagSelected(selector, 'v1.2.3'), true);
    assert.equal(tagSelected(selector, 'rc-12'), true);
    assert.equal(tagSelected(selector, '2.1.0'), true);
    assert.equal(tagSelected(selector, 'v0.9'), false);
    assert.equal(tagSelected(selector, 'latest'), false);
    assert.equal(tagSelected({ include: [], exclude: [] }, 'latest'), true);
  });

  it('leave fallback tags alone unless a filter names them', () => {
    const sig = `sha256-${'c'.repeat(64)}.sig`;
    assert.equal(isFallbackTag(sig), true);
    assert.equal(isFallbackTag(`sha256-${'c'.repeat(64)}`), true);
    assert.equal(describedDigest(sig), `sha256:${'c'.repeat(64)}`);
    assert.equal(tagSelected({ include: ['*'], exclude: [] }, sig), false);
    assert.equal(tagSelected({ include: [], exclude: [] }, sig), false);
    assert.equal(tagSelected({ include: ['sha256-*.sig'], exclude: [] }, sig), true);
    assert.equal(tagSelected({ include: ['regex:^sha256-.*\\.sig$'], exclude: [] }, sig), true);
  });

  it('report invalid globs and filters with their place', () => {
    assert.deepEqual(selectionProblems(['acme/**'], { include: ['v*'], exclude: [] }), []);
    const problems = selectionProblems(['Acme'], { include: ['regex:('], exclude: ['semver:nope'] });
    assert.equal(problems.length, 3);
    assert.match(problems[0] ?? '', /^repositories\.0:/);
    assert.match(problems[1] ?? '', /^tags\.include\.0: invalid regular expression/);
    assert.match(problems[2] ?? '', /^tags\.exclude\.0:/);
  });
});

describe('decideTag (immutability)', () => {
  it('lets a tag be created, re-pushed with the same digest, and refuses another digest', () => {
    const rules = [rule({})];
    assert.deepEqual(decideTag(rules, 'acme/app', 'v1', a, undefined, undefined), { verdict: { kind: 'allowed' }, writeOnce: true });
    assert.deepEqual(decideTag(rules, 'acme/app', 'v1', a, a, undefined).verdict, { kind: 'allowed' });
    assert.deepEqual(decideTag(rules, 'acme/app', 'v1', b, a, undefined).verdict, { kind: 'immutable', rule: 'releases', current: a });
    // Outside the rule: other repositories, other tags, excluded tags.
    assert.deepEqual(decideTag(rules, 'other/app', 'v1', b, a, undefined), { verdict: { kind: 'allowed' }, writeOnce: false });
    assert.equal(decideTag(rules, 'acme/app', 'latest', b, a, undefined).writeOnce, false);
    assert.equal(decideTag([rule({ tags: { include: ['v*'], exclude: ['v*-dev'] } })], 'acme/app', 'v1-dev', b, a, undefined).writeOnce, false);
    assert.equal(decideTag([rule({ enabled: false })], 'acme/app', 'v1', b, a, undefined).writeOnce, false);
  });

  it('exempts fallback tags unless the rule names them', () => {
    const sig = `sha256-${'c'.repeat(64)}.sig`;
    assert.equal(decideTag([rule({ tags: { include: ['*'] } })], 'acme/app', sig, b, a, undefined).verdict.kind, 'allowed');
    assert.equal(decideTag([rule({ tags: { include: ['sha256-*'] } })], 'acme/app', sig, b, a, undefined).verdict.kind, 'immutable');
  });

  it('lets only the rule’s writers create a tag: a federated login from a tag ref, or a GitHub environment', () => {
    const rules = [
      rule({
        writers: [
          { conditions: [{ claim: 'ref', glob: 'refs/tags/*' }] },
          { conditions: [{ claim: 'environment', equals: 'production' }] },
          { principals: ['release-admin'] },
        ],
      }),
    ];
    assert.equal(decideTag(rules, 'acme/app', 'v1', a, undefined, ci('refs/tags/v1')).verdict.kind, 'allowed');
    assert.equal(decideTag(rules, 'acme/app', 'v1', a, undefined, ci('refs/heads/main', { environment: 'production' })).verdict.kind, 'allowed');
    assert.equal(decideTag(rules, 'acme/app', 'v1', a, undefined, { principalId: 'x', principalName: 'release-admin' }).verdict.kind, 'allowed');
    const refused = decideTag(rules, 'acme/app', 'v1', a, undefined, ci('refs/heads/main'));
    assert.equal(refused.verdict.kind, 'writer');
    assert.match(
      refused.verdict.kind === 'writer' ? refused.verdict.writers : '',
      /\(ref matches refs\/tags\/\*\) or \(environment=production\) or \(principal release-admin\)/,
    );
    assert.equal(decideTag(rules, 'acme/app', 'v1', a, undefined, undefined).verdict.kind, 'writer');
    // Re-pushing what the tag already points at creates nothing: anyone with push may.
    assert.equal(decideTag(rules, 'acme/app', 'v1', a, a, ci('refs/heads/main')).verdict.kind, 'allowed');
  });

  it('lets writers move a tag of a rule that is not immutable, and nobody else', () => {
    const rules = [rule({ immutable: false, writers: [{ principals: ['deployer'] }] })];
    assert.deepEqual(decideTag(rules, 'acme/app', 'v1', b, a, { principalId: 'd', principalName: 'deployer' }), {
      verdict: { kind: 'allowed' },
      writeOnce: false,
    });
    assert.equal(decideTag(rules, 'acme/app', 'v1', b, a, { principalId: 'o', principalName: 'other' }).verdict.kind, 'writer');
    assert.throws(() => rule({ immutable: false }), /must name writers/);
  });

  it('describes a pusher by its CI run', () => {
    assert.equal(describePusher(ci('refs/tags/v1')), 'ci-bot (repository=acme/app, ref=refs/tags/v1, run_id=42)');
    assert.equal(describePusher({ principalName: 'alice' }), 'alice');
    assert.match(describePusher(undefined), /auth is off/);
  });
});
