import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { filterEntryProblem, matchesFilters } from './filter.js';

describe('webhook filters', () => {
  const cases: Array<[string[], string, string[], boolean]> = [
    [[], 'anything/at/all', [], true],
    [['tripinsights/*'], 'tripinsights/web', ['v1'], true],
    [['tripinsights/*'], 'tripinsights/web', [], true],
    [['tripinsights/*'], 'tripinsights/web/cache', ['v1'], false],
    [['tripinsights/*'], 'tripinsights', ['v1'], false],
    [['tripinsights/**'], 'tripinsights/web/cache', ['v1'], true],
    [['*:v*'], 'app', ['v1.2.3'], true],
    [['*:v*'], 'app', ['latest'], false],
    [['*:v*'], 'team/app', ['v1'], false],
    [['**:v*'], 'team/app', ['v1'], true],
    [['**:v*'], 'team/app', [], false],
    [['app:*'], 'app', [], false],
    [['app:*'], 'app', ['x'], true],
    [['app'], 'app', [], true],
    [['app:latest'], 'app', ['latest'], true],
    [['app:latest'], 'app', ['latest2'], false],
    [['app:v1.0'], 'app', ['v1x0'], false],
    [['app:*-rc'], 'app', ['1.0-rc'], true],
    [['app:v2'], 'app', ['v1', 'v2'], true],
    [['other', 'app:v*'], 'app', ['v3'], true],
    [['other', 'app:v*'], 'app', ['x'], false],
    // Only names and tags that pass the OCI grammar are matched.
    [['**'], `${'a-'.repeat(200)}x`, [], false],
    [['**'], 'Team/App', [], false],
    [['**:*'], 'app', ['x'.repeat(129)], false],
    [['**:*'], 'app', ['-bad'], false],
  ];
  for (const [filters, repository, tags, expected] of cases) {
    it(`${JSON.stringify(filters)} ${expected ? 'matches' : 'does not match'} ${repository} ${JSON.stringify(tags)}`, () =>
      assert.equal(matchesFilters(filters, { repository, tags }), expected));
  }

  it('accepts repository patterns with optional tag globs and explains what it refuses', () => {
    for (const entry of ['app', 'team/*', '**', '**:v*', 'a/b:latest', 'app:*', 'app:v1.2_3-rc']) assert.equal(filterEntryProblem(entry), undefined, entry);
    assert.match(filterEntryProblem('') ?? '', /1-400 characters/);
    assert.match(filterEntryProblem('Team/App') ?? '', /not a repository pattern/);
    assert.match(filterEntryProblem('../etc') ?? '', /not a repository pattern/);
    assert.match(filterEntryProblem('app:') ?? '', /not a tag glob/);
    assert.match(filterEntryProblem('app:a/b') ?? '', /not a tag glob/);
    assert.match(filterEntryProblem('app:.hidden') ?? '', /not a tag glob/);
    assert.match(filterEntryProblem('app:x:y') ?? '', /not a tag glob/);
  });
});
