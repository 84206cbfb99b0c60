import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileGlob, isRepositoryPattern, matchesRepositoryPattern, matchesStarGlob, matchesWildcard, type GlobSyntax } from './glob.js';

/**
 * The regular expressions the matchers replaced (auth/permissions.ts, federation/verifier.ts,
 * events/filter.ts), kept as the reference meaning: on short inputs their backtracking is harmless.
 */
const reference: Record<GlobSyntax, (pattern: string) => RegExp> = {
  repository: (pattern) =>
    new RegExp(
      `^${pattern
        .split('**')
        .map((part) =>
          part
            .split('*')
            .map((text) => text.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
            .join('[^/]*'),
        )
        .join('.*')}$`,
    ),
  wildcard: (pattern) =>
    new RegExp(
      `^${pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
      's',
    ),
  star: (pattern) =>
    new RegExp(
      `^${pattern
        .split('*')
        .map((part) => part.replace(/[.+?^${}()|[\]\\-]/g, '\\$&'))
        .join('.*')}$`,
    ),
};

/** A small deterministic generator (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick(next: () => number, alphabet: string, maxLength: number): string {
  const length = Math.floor(next() * (maxLength + 1));
  let text = '';
  for (let i = 0; i < length; i++) text += alphabet[Math.floor(next() * alphabet.length)];
  return text;
}

/** A text shaped like `pattern`: each `*` replaced by a short random run, each `?` by one character. */
function instantiate(next: () => number, pattern: string, alphabet: string): string {
  return [...pattern].map((c) => (c === '*' ? pick(next, alphabet, 3) : c === '?' ? pick(next, alphabet, 1).padEnd(1, 'a') : c)).join('');
}

describe('glob matchers', () => {
  it('repository grammar: * within a component, ** across', () => {
    const cases: Array<[string, string, boolean]> = [
      ['team-a/*', 'team-a/app', true],
      ['team-a/*', 'team-a/app/sub', false],
      ['team-a/*', 'team-a/', true],
      ['vendor/**', 'vendor/a/b/c', true],
      ['vendor/**', 'vendor', false],
      ['**', 'anything/at/all', true],
      ['**', '', true],
      ['*', 'a/b', false],
      ['a/**/z', 'a/b/c/z', true],
      ['a/**/z', 'a/z', false],
      ['a**z', 'a/b/z', true],
      ['***', 'a/b', true],
      ['*-svc', 'pay-svc', true],
      ['a.b', 'axb', false],
      ['app', 'app2', false],
    ];
    for (const [pattern, name, expected] of cases) assert.equal(matchesRepositoryPattern(pattern, name), expected, `${pattern} ~ ${name}`);
  });

  it('wildcard grammar: * any run (/ and : included), ? one character', () => {
    const cases: Array<[string, string, boolean]> = [
      ['repo:acme/app:*', 'repo:acme/app:ref:refs/heads/main', true],
      ['repo:acme/app:*', 'repo:acme/other:ref:x', false],
      ['release-?', 'release-a', true],
      ['release-?', 'release-ab', false],
      ['release-?', 'release-', false],
      ['a.b', 'axb', false],
      ['*', '', true],
      ['?', '', false],
      ['a*b?c', 'a\nxxbyc', true],
      ['(x)+[y]', '(x)+[y]', true],
    ];
    for (const [pattern, value, expected] of cases) assert.equal(matchesWildcard(pattern, value), expected, `${pattern} ~ ${value}`);
  });

  it('star grammar: * any run, ? literal', () => {
    assert.equal(matchesStarGlob('v*', 'v1.2.3'), true);
    assert.equal(matchesStarGlob('v*', 'latest'), false);
    assert.equal(matchesStarGlob('*-rc', '1.0-rc'), true);
    assert.equal(matchesStarGlob('v?', 'v1'), false);
    assert.equal(matchesStarGlob('v?', 'v?'), true);
  });

  it('means what the replaced regular expressions meant (randomised, every grammar)', () => {
    const next = random(20240611);
    const alphabets: Record<GlobSyntax, { pattern: string; text: string }> = {
      repository: { pattern: 'ab/*.-', text: 'ab/.-' },
      wildcard: { pattern: 'ab/*?.:', text: 'ab/.:?*' },
      star: { pattern: 'ab*.-?', text: 'ab.-?' },
    };
    for (const syntax of ['repository', 'wildcard', 'star'] as const) {
      for (let round = 0; round < 3000; round++) {
        const pattern = pick(next, alphabets[syntax].pattern, 8);
        // Half the texts are drawn from the pattern (wildcards filled in), so both answers occur often.
        const text = round % 2 === 0 ? pick(next, alphabets[syntax].text, 10) : instantiate(next, pattern, alphabets[syntax].text);
        assert.equal(
          compileGlob(pattern, syntax).matches(text),
          reference[syntax](pattern).test(text),
          `${syntax}: ${JSON.stringify(pattern)} ~ ${JSON.stringify(text)}`,
        );
      }
    }
  });

  it('works on patterns longer than one 32-state word', () => {
    const pattern = `${'a*'.repeat(40)}z`;
    assert.equal(matchesWildcard(pattern, `${'a'.repeat(40)}z`), true);
    assert.equal(matchesWildcard(pattern, `${'ab'.repeat(40)}z`), true);
    assert.equal(matchesWildcard(pattern, `${'a'.repeat(39)}z`), false);
    const literal = 'x'.repeat(100);
    assert.equal(matchesRepositoryPattern(literal, literal), true);
    assert.equal(matchesRepositoryPattern(literal, `${literal}x`), false);
    assert.equal(matchesRepositoryPattern(`${'x'.repeat(31)}*`, `${'x'.repeat(31)}abc`), true);
    assert.equal(matchesRepositoryPattern(`${'x'.repeat(31)}*`, `${'x'.repeat(31)}a/c`), false);
  });

  it('does work linear in the input on patterns that make a backtracking matcher explode', () => {
    // As a RegExp, `^.*-.*-.*-.*-prod$` against this takes time in the order of n^4.
    const name = 'a-'.repeat(3000);
    const cases: Array<[GlobSyntax, string, string]> = [
      ['wildcard', '*-*-*-*-prod', name],
      ['star', '*-*-*-*-prod', name],
      ['repository', '*-*-*-*-prod', name],
      ['repository', '**-**-**-**-prod', `${'a-/'.repeat(2000)}`],
      ['wildcard', `${'*a'.repeat(60)}b`, 'a'.repeat(6000)],
    ];
    for (const [syntax, pattern, text] of cases) {
      const glob = compileGlob(pattern, syntax);
      const meter = { steps: 0 };
      assert.equal(glob.matches(text, meter), false, `${syntax} ${pattern}`);
      const words = Math.ceil((pattern.length + 1) / 32);
      assert.ok(meter.steps <= text.length * words, `${syntax} ${pattern}: ${meter.steps} steps for ${text.length} characters`);
    }
    assert.equal(matchesWildcard('*-*-*-*-prod', `${name}prod`), true);
  });

  it('validates repository patterns in linear time', () => {
    for (const good of ['team-a/*', 'vendor/**', '**', 'a**b/c', 'x.y_z/w--v']) assert.equal(isRepositoryPattern(good), true, good);
    for (const bad of ['../x', 'Team/*', 'a//b', '/a', 'a/', '', 'a.', `${'a'.repeat(256)}`]) assert.equal(isRepositoryPattern(bad), false, bad);
    // Exponential under the earlier syntax RegExp: would not return.
    assert.equal(isRepositoryPattern(`${'**/'.repeat(84)}**A`), false);
  });
});
