/**
 * What a sync rule selects: source repositories by glob, tags by include/exclude filters.
 *
 * Repository globs use the grammar of grants (`src/shared/glob.ts`): `*` within one path
 * component, `**` across any depth, matched against the SOURCE registry's names.
 *
 * A tag filter is one string in one of three forms:
 *   - `v1.*`, `release-?`            a glob: `*` any run of characters, `?` one character;
 *   - `regex:^v[0-9]+$`              a regular expression in RE2 syntax (matched against the whole
 *                                    tag when it has no anchors of its own: it is wrapped in `^(?:…)$`);
 *   - `semver:>=1.2.0 <2`            a semver range (the `semver` package; tags such as `v1.4.2` parse,
 *                                    prereleases match only when the range names one, as npm does).
 * A tag is selected when it matches at least one include filter (or there are none) and no exclude filter.
 *
 * Regular expressions are user-written and run against tags a remote source chose, so they run in
 * a linear-time engine: `re2js` (a pure-JavaScript port of RE2, no native addon), never V8's
 * backtracking RegExp, where `regex:(a+)+$` against 30 `a`s and a `!` takes seconds and against a
 * 128-character tag forever. RE2 syntax is JavaScript's for what tag filters use (classes,
 * `\d`/`\w`, groups, alternation, counted repeats, `^`/`$`); backreferences and lookaround cannot
 * be matched in linear time and are refused when the rule is saved.
 *
 * Rule: only names and tags that pass the OCI grammar are matched (`repositorySelected` and
 * `tagSelected` answer false for anything else), so no filter runs over text of unbounded length.
 */
import { createRequire } from 'node:module';
import type * as Re2 from 're2js';
import type * as Semver from 'semver';
import { isValidRepositoryName, isValidTag } from '../oci/names.js';
import { isRepositoryPattern, matchesRepositoryPattern, matchesWildcard } from '../shared/glob.js';

/** `semver` (CommonJS, about 0.5 MiB of heap) is loaded with the first `semver:` filter, not when Berth starts. */
let semverModule: typeof Semver | undefined;
const semver = (): typeof Semver => (semverModule ??= createRequire(import.meta.url)('semver') as typeof Semver);

/** `re2js` (2-4 MiB of RSS at start, for a feature most registries never use) is loaded with the first `regex:` filter. */
let re2Module: typeof Re2 | undefined;
const re2 = (): typeof Re2 => (re2Module ??= createRequire(import.meta.url)('re2js') as typeof Re2);

export interface TagFilters {
  include: readonly string[];
  exclude: readonly string[];
}

const maxFilterLength = 256;
/** Tag characters (the spec's grammar) plus the glob wildcards. */
const globSyntax = /^[A-Za-z0-9_.*?-][A-Za-z0-9_.*?-]{0,255}$/;

/** Why `filter` is not a valid tag filter, or undefined when it is. */
export function tagFilterProblem(filter: string): string | undefined {
  if (filter.length === 0) return 'a tag filter must not be empty';
  if (filter.length > maxFilterLength) return `a tag filter is at most ${maxFilterLength} characters`;
  if (filter.startsWith('regex:')) {
    const source = filter.slice('regex:'.length);
    try {
      compileRegex(source);
      return undefined;
    } catch (err) {
      // RE2 names the failing part of the pattern it compiled (the user's, anchored as `^(?:…)$`):
      // say what is wrong, not the anchoring the user never wrote.
      const reason = (err as Error).message.replace(/^error parsing regexp: /, '').replace(/: `.*`$/s, '');
      return `invalid regular expression ${JSON.stringify(source)}: ${reason} (RE2 syntax: no backreferences or lookaround)`;
    }
  }
  if (filter.startsWith('semver:')) {
    return semver().validRange(filter.slice('semver:'.length).trim()) === null ? `${JSON.stringify(filter.slice(7))} is not a semver range` : undefined;
  }
  return globSyntax.test(filter) ? undefined : 'a tag glob uses tag characters (letters, digits, _ . -) and * or ?';
}

/** Why `pattern` is not a valid repository glob, or undefined when it is. */
export function repositoryPatternProblem(pattern: string): string | undefined {
  return isRepositoryPattern(pattern)
    ? undefined
    : `${JSON.stringify(pattern.slice(0, 100))} is not a repository glob (lower-case name components, * within one, ** across any depth)`;
}

/** True if the source repository is one the rule's globs select (never for a name that fails the OCI grammar). */
export function repositorySelected(patterns: readonly string[], repository: string): boolean {
  return isValidRepositoryName(repository) && patterns.some((pattern) => matchesRepositoryPattern(pattern, repository));
}

/** The entries of `patterns` without wildcards: names to try when the source has no catalog. */
export function literalRepositories(patterns: readonly string[]): string[] {
  return patterns.filter((pattern) => !pattern.includes('*'));
}

/** True if the tag passes the rule's include and exclude filters (never for a tag that fails the OCI grammar). */
export function tagSelected(filters: TagFilters, tag: string): boolean {
  if (!isValidTag(tag)) return false;
  if (filters.include.length > 0 && !filters.include.some((f) => tagMatches(f, tag))) return false;
  return !filters.exclude.some((f) => tagMatches(f, tag));
}

/**
 * One filter against one tag; filters are validated when a rule is saved (`tagFilterProblem`). A
 * `regex:` filter that no longer compiles (saved before filters ran in RE2, with a lookahead, say)
 * matches nothing.
 */
export function tagMatches(filter: string, tag: string): boolean {
  if (filter.startsWith('regex:')) {
    let regex: Re2.RE2JS;
    try {
      regex = compileRegex(filter.slice('regex:'.length));
    } catch {
      return false;
    }
    return regex.test(tag);
  }
  if (filter.startsWith('semver:')) {
    const version = semver().parse(tag) ?? semver().parse(tag, { loose: true });
    return version !== null && semver().satisfies(version, filter.slice('semver:'.length).trim());
  }
  return matchesWildcard(filter, tag);
}

const regexCache = new Map<string, Re2.RE2JS>();

/** The filter's expression compiled by RE2 (linear-time matching); throws on a syntax RE2 refuses. */
function compileRegex(source: string): Re2.RE2JS {
  let regex = regexCache.get(source);
  if (!regex) {
    const anchored = source.startsWith('^') || source.endsWith('$') ? source : `^(?:${source})$`;
    regex = re2().RE2JS.compile(anchored);
    if (regexCache.size > 1000) regexCache.clear();
    regexCache.set(source, regex);
  }
  return regex;
}
