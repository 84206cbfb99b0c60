import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { literalRepositories, repositoryPatternProblem, repositorySelected, tagFilterProblem, tagMatches, tagSelected } from './filters.js';

describe('repository globs (source names)', () => {
  test('* stays within one path component, ** crosses any depth', () => {
    assert.equal(repositorySelected(['tripinsights/*'], 'tripinsights/api'), true);
    assert.equal(repositorySelected(['tripinsights/*'], 'tripinsights/api/v2'), false);
    assert.equal(repositorySelected(['tripinsights/**'], 'tripinsights/api/v2'), true);
    assert.equal(repositorySelected(['tripinsights/*'], 'internal/secret'), false);
    assert.equal(repositorySelected(['tripinsights/*', 'internal/public'], 'internal/public'), true);
  });

  test('invalid globs are refused with a reason', () => {
    assert.equal(repositoryPatternProblem('tripinsights/*'), undefined);
    assert.match(repositoryPatternProblem('Trip/API') ?? '', /not a repository glob/);
    assert.match(repositoryPatternProblem('a//b') ?? '', /not a repository glob/);
  });

  test('globs without wildcards are the names to try without a catalog', () => {
    assert.deepEqual(literalRepositories(['a/b', 'c/*', 'd/**', 'e']), ['a/b', 'e']);
  });
});

describe('tag filters', () => {
  test('globs: * any run, ? one character', () => {
    assert.equal(tagMatches('v1.*', 'v1.2.3'), true);
    assert.equal(tagMatches('v1.*', 'v2.0.0'), false);
    assert.equal(tagMatches('release-?', 'release-a'), true);
    assert.equal(tagMatches('release-?', 'release-ab'), false);
    assert.equal(tagMatches('latest', 'latest'), true);
  });

  test('regex: matches the whole tag unless it anchors itself', () => {
    assert.equal(tagMatches('regex:v[0-9]+', 'v12'), true);
    assert.equal(tagMatches('regex:v[0-9]+', 'v12-rc'), false);
    assert.equal(tagMatches('regex:^v[0-9]+', 'v12-rc'), true);
  });

  test('regex: runs in a linear-time engine (a pattern that backtracks exponentially in V8 answers at once)', { timeout: 20_000 }, () => {
    // V8's RegExp takes 2^n steps here: seconds at 30 characters, forever at 128.
    assert.equal(tagMatches('regex:(a+)+$', `${'a'.repeat(127)}!`), false);
    assert.equal(tagMatches('regex:^(a|aa)+$', `${'a'.repeat(127)}!`), false);
    assert.equal(tagMatches('regex:(x+x+)+y', 'x'.repeat(128)), false);
    assert.equal(tagMatches('regex:(a+)+', 'a'.repeat(128)), true);
    assert.equal(tagMatches('regex:v\\d+\\.\\d+', 'v1.22'), true);
    assert.equal(tagMatches('regex:(?:alpha|beta)-[0-9]{1,3}', 'beta-12'), true);
  });

  test('regex: syntax that cannot match in linear time (backreferences, lookaround) is refused', () => {
    assert.match(tagFilterProblem('regex:^(?!latest$).*') ?? '', /invalid regular expression.*no backreferences or lookaround/);
    assert.match(tagFilterProblem('regex:(a)\\1') ?? '', /invalid regular expression/);
    // A filter saved before this rule matches nothing instead of failing the reconcile.
    assert.equal(tagMatches('regex:^(?!latest$).*', 'v1'), false);
  });

  test('only tags and names that pass the OCI grammar reach a filter', () => {
    assert.equal(tagSelected({ include: [], exclude: [] }, 'x'.repeat(129)), false);
    assert.equal(tagSelected({ include: ['*'], exclude: [] }, '.hidden'), false);
    assert.equal(tagSelected({ include: ['regex:.*'], exclude: [] }, 'a/b'), false);
    assert.equal(repositorySelected(['**'], `${'a-'.repeat(200)}x`), false);
    assert.equal(repositorySelected(['**'], 'Team/App'), false);
  });

  test('semver: ranges over tags that parse as versions (a leading v allowed)', () => {
    assert.equal(tagMatches('semver:>=1.2.0 <2', '1.4.2'), true);
    assert.equal(tagMatches('semver:>=1.2.0 <2', 'v1.4.2'), true);
    assert.equal(tagMatches('semver:>=1.2.0 <2', '2.0.0'), false);
    assert.equal(tagMatches('semver:>=1.2.0 <2', '1.1.9'), false);
    assert.equal(tagMatches('semver:^1.0.0', 'latest'), false);
    // Prereleases only when the range names one, as npm does.
    assert.equal(tagMatches('semver:^1.0.0', '1.5.0-rc.1'), false);
    assert.equal(tagMatches('semver:>=1.5.0-rc.0 <2', '1.5.0-rc.1'), true);
  });

  test('include any, exclude none; no include means everything', () => {
    const filters = { include: ['v*', 'semver:^3'], exclude: ['*-rc*'] };
    assert.equal(tagSelected(filters, 'v1.0.0'), true);
    assert.equal(tagSelected(filters, '3.1.0'), true);
    assert.equal(tagSelected(filters, 'v1.0.0-rc1'), false);
    assert.equal(tagSelected(filters, 'latest'), false);
    assert.equal(tagSelected({ include: [], exclude: ['latest'] }, 'anything'), true);
    assert.equal(tagSelected({ include: [], exclude: ['latest'] }, 'latest'), false);
  });

  test('invalid filters are refused with a reason', () => {
    assert.equal(tagFilterProblem('v*'), undefined);
    assert.equal(tagFilterProblem('regex:^v\\d+$'), undefined);
    assert.equal(tagFilterProblem('semver:>=1 <2'), undefined);
    assert.match(tagFilterProblem('regex:(') ?? '', /invalid regular expression/);
    assert.match(tagFilterProblem('semver:not a range') ?? '', /not a semver range/);
    assert.match(tagFilterProblem('v1/2') ?? '', /tag glob/);
    assert.match(tagFilterProblem('') ?? '', /empty/);
  });
});
