// Property tests (fast-check) over what an attacker controls: repository names, token scopes,
// grant patterns, tag filters and paging parameters. They assert the functions never throw
// anything but their documented errors, keep their meaning, and do bounded work: glob matching is
// counted in word operations (`globWork`, `Glob.matches`' meter), never timed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isScopeRepositoryName, maxScopeLength, parseScopes } from '../../src/api/scopes.js';
import { grantAccess, matchesPattern, type Grant } from '../../src/auth/permissions.js';
import { page } from '../../src/http/request.js';
import { RegistryError } from '../../src/oci/errors.js';
import { isValidRepositoryName, isValidTag, maxNameLength } from '../../src/oci/names.js';
import { compileGlob, globWork, isRepositoryPattern, maxRepositoryPatternLength, type GlobSyntax } from '../../src/shared/glob.js';
import { tagFilterProblem, tagMatches, tagSelected } from '../../src/sync/filters.js';

const runs = { numRuns: 300 };

/** Word operations a match may do: one pass over ceil((tokens + 1) / 32) words per input character. */
function stepBound(pattern: string, text: string): number {
  return text.length * Math.ceil((pattern.length + 1) / 32);
}

/**
 * The glob grammars by definition (shared/glob.ts's module comment), as a memoized recursion over
 * (pattern token, text position): the reference the bit-parallel matcher must agree with.
 */
function referenceMatch(pattern: string, syntax: GlobSyntax, text: string): boolean {
  type Token = 'any' | 'segment' | 'one' | { literal: string };
  const tokens: Token[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*' && syntax === 'repository') {
      if (pattern[i + 1] === '*') {
        tokens.push('any');
        i++;
      } else tokens.push('segment');
    } else if (c === '*') tokens.push('any');
    else if (c === '?' && syntax === 'wildcard') tokens.push('one');
    else tokens.push({ literal: c });
  }
  const memo = new Map<number, boolean>();
  const at = (t: number, i: number): boolean => {
    const key = t * (text.length + 1) + i;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    let result: boolean;
    const token = tokens[t];
    if (token === undefined) result = i === text.length;
    else if (token === 'any') result = at(t + 1, i) || (i < text.length && at(t, i + 1));
    else if (token === 'segment') result = at(t + 1, i) || (i < text.length && text[i] !== '/' && at(t, i + 1));
    else if (token === 'one') result = i < text.length && at(t + 1, i + 1);
    else result = i < text.length && text[i] === token.literal && at(t + 1, i + 1);
    memo.set(key, result);
    return result;
  };
  return at(0, 0);
}

const globChars = fc.constantFrom('a', 'b', '-', '/', '.', '*', '*', '?');
const textChars = fc.constantFrom('a', 'b', '-', '/', '.', '?', '*');
const syntaxes = fc.constantFrom<GlobSyntax>('repository', 'wildcard', 'star');

/** Valid repository-name components and names (the OCI grammar), up to the length limit. */
const component = fc
  .array(fc.string({ unit: fc.constantFrom('a', 'b', 'z', '0', '9'), minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 4 })
  .chain((parts) =>
    fc
      .array(fc.constantFrom('.', '_', '__', '-', '--'), { minLength: parts.length - 1, maxLength: parts.length - 1 })
      .map((seps) => parts.map((p, i) => (i === 0 ? p : `${seps[i - 1]}${p}`)).join('')),
  );
const validName = fc.array(component, { minLength: 1, maxLength: 8 }).map(
  (parts) =>
    parts
      .join('/')
      .slice(0, maxNameLength)
      .replace(/[._/-]+$/, '') || 'a',
);

/** Hostile names: long, hyphen-heavy, upper case, traversal, non-ASCII, control characters. */
const hostileName = fc.oneof(
  fc.integer({ min: 1, max: 4000 }).map((n) => `${'a-'.repeat(n)}x`),
  fc.string({ unit: fc.constantFrom('a', '-', '/', '.', '_', 'A', '%', ':', '*', '\u00e9', '\n'), maxLength: 600 }),
  fc.string({ unit: 'binary', maxLength: 300 }),
  validName.map((n) => `${n}/../${n}`),
);

/** Repository patterns a principal may be granted (validated the same way the API does). */
const patternChars = fc.constantFrom('a', 'b', '0', '-', '.', '_', '/', '*', '*');
const grantPattern = fc.string({ unit: patternChars, minLength: 1, maxLength: 60 }).filter(isRepositoryPattern);
const grants = fc.array(fc.record({ pattern: grantPattern, permission: fc.constantFrom('pull', 'push', 'delete', 'owner', 'metadata/read', 'content/read') }), {
  minLength: 1,
  maxLength: 12,
}) as fc.Arbitrary<Grant[]>;

describe('properties: glob matching', () => {
  it('agrees with the grammar and does at most one word pass per input character', () => {
    fc.assert(
      fc.property(syntaxes, fc.string({ unit: globChars, maxLength: 40 }), fc.string({ unit: textChars, maxLength: 60 }), (syntax, pattern, text) => {
        const meter = { steps: 0 };
        const got = compileGlob(pattern, syntax).matches(text, meter);
        assert.equal(got, referenceMatch(pattern, syntax, text), `${syntax} ${JSON.stringify(pattern)} ${JSON.stringify(text)}`);
        assert.ok(meter.steps <= stepBound(pattern, text));
      }),
      { numRuns: 2000 },
    );
  });

  it('stays linear on long adversarial inputs (patterns up to 255, text up to 16 KiB)', () => {
    const adversarialPattern = fc.integer({ min: 1, max: 60 }).map((k) => `${'*-'.repeat(k)}prod`.slice(0, maxRepositoryPatternLength));
    fc.assert(
      fc.property(
        syntaxes,
        fc.oneof(adversarialPattern, fc.string({ unit: globChars, maxLength: 255 })),
        fc.integer({ min: 0, max: 16 * 1024 }),
        (syntax, pattern, length) => {
          const text = 'a-'.repeat(Math.ceil(length / 2)).slice(0, length);
          const meter = { steps: 0 };
          compileGlob(pattern, syntax).matches(text, meter);
          assert.ok(meter.steps <= stepBound(pattern, text), `${meter.steps} steps for ${text.length} characters`);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('properties: names against grant patterns', () => {
  it('a name that fails the OCI grammar or its length is never matched (no glob work at all)', () => {
    fc.assert(
      fc.property(grantPattern, fc.oneof(hostileName, validName), (pattern, name) => {
        const before = globWork.steps;
        const matched = matchesPattern(pattern, name);
        const work = globWork.steps - before;
        if (!isValidRepositoryName(name)) {
          assert.equal(matched, false);
          assert.equal(work, 0);
        } else {
          assert.ok(work <= stepBound(pattern, name));
        }
      }),
      runs,
    );
  });
});

describe('properties: token scopes', () => {
  const scopeText = fc.oneof(
    validName.map((n) => `repository:${n}:pull`),
    validName.map((n) => `repository:${n}:pull,push,delete,*`),
    fc.constant('registry:catalog:*'),
    hostileName.map((n) => `repository:${n}:pull`),
    fc.string({ unit: 'grapheme-ascii', maxLength: 800 }),
    fc.string({ unit: fc.constantFrom('repository', 'registry', ':', ',', ' ', 'pull', 'a', '/'), maxLength: 200 }),
  );

  it('parse to well-formed, bounded entries only, and the grant decision does bounded work', () => {
    fc.assert(
      fc.property(fc.array(scopeText, { maxLength: 40 }), grants, (scopes, held) => {
        const parsed = parseScopes(scopes);
        for (const access of parsed) {
          assert.ok(access.type === 'repository' || access.type === 'registry');
          if (access.type === 'repository') assert.ok(isScopeRepositoryName(access.name), access.name.slice(0, 80));
          assert.ok(access.name.length + access.type.length + 2 <= maxScopeLength);
        }
        const before = globWork.steps;
        const granted = grantAccess(held, parsed);
        const work = globWork.steps - before;
        // Every (scope, grant) pair costs at most one pass over a name of at most 520 characters.
        const bound = parsed.length * held.reduce((sum, g) => sum + Math.ceil((g.pattern.length + 1) / 32), 0) * 520;
        assert.ok(work <= bound, `${work} > ${bound}`);
        for (const g of granted) assert.ok(parsed.some((p) => p.type === g.type && p.name === g.name));
      }),
      runs,
    );
  });
});

describe('properties: tag filters', () => {
  const tagChars = fc.constantFrom('a', 'b', 'v', '1', '2', '.', '-', '_');
  const validTag = fc.string({ unit: tagChars, minLength: 1, maxLength: 12 }).filter(isValidTag);
  const hostileTag = fc.oneof(
    fc.integer({ min: 1, max: 2000 }).map((n) => `${'a'.repeat(n)}!`),
    fc.string({ unit: 'grapheme-ascii', maxLength: 300 }),
    fc.string({ unit: 'binary', maxLength: 200 }),
  );
  /** Small regular expressions from the syntax both engines share. */
  const regex: fc.Arbitrary<string> = fc.letrec<{ re: string; atom: string }>((tie) => ({
    atom: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constantFrom('a', 'b', 'v', '1', '\\d', '[a-z]', '[0-9.]', '.', '\\.', '-'),
      tie('re').map((r) => `(${r})`),
      tie('re').map((r) => `(?:${r})`),
    ),
    re: fc.oneof(
      { depthSize: 'small' },
      tie('atom'),
      fc.tuple(tie('atom'), fc.constantFrom('*', '+', '?', '{1,3}', '{2}')).map(([a, q]) => `${a}${q}`),
      fc.tuple(tie('re'), tie('re')).map(([a, b]) => `${a}${b}`),
      fc.tuple(tie('re'), tie('re')).map(([a, b]) => `${a}|${b}`),
    ),
  })).re;

  it('regex: filters keep their meaning (the same answers as a JavaScript RegExp on short tags)', () => {
    fc.assert(
      fc.property(regex, fc.constantFrom('', '^', '$'), validTag, (source, anchor, tag) => {
        const expression = anchor === '^' ? `^${source}` : anchor === '$' ? `${source}$` : source;
        const filter = `regex:${expression}`;
        if (filter.length > 256) return;
        assert.equal(tagFilterProblem(filter), undefined, filter);
        const anchored = expression.startsWith('^') || expression.endsWith('$') ? expression : `^(?:${expression})$`;
        assert.equal(tagMatches(filter, tag), new RegExp(anchored, 'u').test(tag), `${filter} on ${tag}`);
      }),
      { numRuns: 1000 },
    );
  });

  it('any filter against any tag answers (no throw), and only valid tags are ever selected', () => {
    const filter = fc.oneof(
      regex.map((r) => `regex:${r}`),
      fc.constantFrom('regex:(a+)+$', 'regex:^(a|aa)+$', 'regex:(a*)*b', 'regex:(.*a){12}', 'semver:>=1.2.0 <2', 'semver:^1', 'v*', '*-rc?', '*'),
      fc.string({ unit: fc.constantFrom('a', 'v', '1', '.', '*', '?', '-'), minLength: 1, maxLength: 40 }),
    );
    fc.assert(
      fc.property(
        fc.array(
          filter.filter((f) => tagFilterProblem(f) === undefined),
          { maxLength: 4 },
        ),
        fc.oneof(validTag, hostileTag),
        (include, tag) => {
          const selected = tagSelected({ include, exclude: [] }, tag);
          if (!isValidTag(tag)) assert.equal(selected, false);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('properties: paging parameters', () => {
  it('n is a plain decimal integer or a PAGINATION_NUMBER_INVALID error, never anything else', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'grapheme-ascii', maxLength: 30 }),
          fc.nat().map(String),
          fc.constantFrom('0x10', '1e2', ' 3', '+3', '-0', 'Infinity', '9007199254740992'),
        ),
        (n) => {
          try {
            const request = page(new URLSearchParams({ n }));
            if (n === '') assert.equal(request.n, undefined);
            else {
              assert.match(n, /^[0-9]+$/);
              assert.equal(request.n, Number(n));
            }
          } catch (err) {
            assert.ok(err instanceof RegistryError && err.code === 'PAGINATION_NUMBER_INVALID', String(err));
            assert.ok(!/^[0-9]{1,15}$/.test(n));
          }
        },
      ),
      runs,
    );
  });
});
