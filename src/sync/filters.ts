/**
 * What a sync rule selects: source repositories by glob, tags by include/exclude filters.
 *
 * Repository globs use the grammar of grants (`src/shared/glob.ts`): `*` within one path
 * component, `**` across any depth, matched against the SOURCE registry's names.
 *
 * A tag filter is one string in one of three forms:
 *   - `v1.*`, `release-?`            a glob: `*` any run of characters, `?` one character;
 *   - `regex:^v[0-9]+$`              a JavaScript regular expression (matched against the whole tag
 *                                    when it has no anchors of its own: it is wrapped in `^(?:…)$`);
 *   - `semver:>=1.2.0 <2`            a semver range (the `semver` package; tags such as `v1.4.2` parse,
 *                                    prereleases match only when the range names one, as npm does).
 * A tag is selected when it matches at least one include filter (or there are none) and no exclude filter.
 */
import semver from 'semver';
import { isRepositoryPattern, matchesRepositoryPattern, matchesWildcard } from '../shared/glob.js';

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
      new RegExp(source, 'u');
      compileRegex(source);
      return undefined;
    } catch (err) {
      return `invalid regular expression ${JSON.stringify(source)}: ${(err as Error).message.replace(/^Invalid regular expression: \/.*\/u?: /, '')}`;
    }
  }
  if (filter.startsWith('semver:')) {
    return semver.validRange(filter.slice('semver:'.length).trim()) === null ? `${JSON.stringify(filter.slice(7))} is not a semver range` : undefined;
  }
  return globSyntax.test(filter) ? undefined : 'a tag glob uses tag characters (letters, digits, _ . -) and * or ?';
}

/** Why `pattern` is not a valid repository glob, or undefined when it is. */
export function repositoryPatternProblem(pattern: string): string | undefined {
  return isRepositoryPattern(pattern)
    ? undefined
    : `${JSON.stringify(pattern.slice(0, 100))} is not a repository glob (lower-case name components, * within one, ** across any depth)`;
}

/** True if the source repository is one the rule's globs select. */
export function repositorySelected(patterns: readonly string[], repository: string): boolean {
  return patterns.some((pattern) => matchesRepositoryPattern(pattern, repository));
}

/** The entries of `patterns` without wildcards: names to try when the source has no catalog. */
export function literalRepositories(patterns: readonly string[]): string[] {
  return patterns.filter((pattern) => !pattern.includes('*'));
}

/** True if the tag passes the rule's include and exclude filters. */
export function tagSelected(filters: TagFilters, tag: string): boolean {
  if (filters.include.length > 0 && !filters.include.some((f) => tagMatches(f, tag))) return false;
  return !filters.exclude.some((f) => tagMatches(f, tag));
}

/** One filter against one tag; filters are validated when a rule is saved (`tagFilterProblem`). */
export function tagMatches(filter: string, tag: string): boolean {
  if (filter.startsWith('regex:')) return compileRegex(filter.slice('regex:'.length)).test(tag);
  if (filter.startsWith('semver:')) {
    const version = semver.parse(tag) ?? semver.parse(tag, { loose: true });
    return version !== null && semver.satisfies(version, filter.slice('semver:'.length).trim());
  }
  return matchesWildcard(filter, tag);
}

const regexCache = new Map<string, RegExp>();

function compileRegex(source: string): RegExp {
  let regex = regexCache.get(source);
  if (!regex) {
    const anchored = source.startsWith('^') || source.endsWith('$') ? source : `^(?:${source})$`;
    regex = new RegExp(anchored, 'u');
    if (regexCache.size > 1000) regexCache.clear();
    regexCache.set(source, regex);
  }
  return regex;
}
