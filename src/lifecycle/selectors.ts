/**
 * What a lifecycle rule selects: repositories by the grants' glob grammar (`shared/glob.ts`) and tags
 * by the sync filters' forms (globs, `regex:`, `semver:`). Matching a tag filter goes through the
 * sync filters' one matcher (`sync/filters.ts` `tagMatches`, which runs `regex:` in its linear-time
 * engine), so a filter means the same in a sync rule and in a lifecycle rule, and there is one
 * regular-expression path to keep safe.
 *
 * Fallback tags: the tags the referrers tag schema (`sha256-<hex>`) and cosign (`sha256-<hex>.sig`,
 * `.att`, `.sbom`) give to artifacts that describe another manifest are not the images people name.
 * A rule applies to them only when one of its include filters names them explicitly (starts with
 * `sha256-`, as `sha256-*.sig` or `regex:^sha256-.*\.att$` do); a catch-all such as `*` does not.
 */
import { isValidRepositoryName, isValidTag } from '../oci/names.js';
import { matchesRepositoryPattern } from '../shared/glob.js';
import { repositoryPatternProblem, tagFilterProblem, tagMatches } from '../sync/filters.js';

export interface TagSelector {
  include: readonly string[];
  exclude: readonly string[];
}

/** `sha256-<64 hex>` with an optional suffix (`.sig`, `.att`, `.sbom`, …): a fallback tag. */
const fallbackTagPattern = /^sha256-[0-9a-f]{64}(?:\.[A-Za-z0-9_-]{1,64})?$/;

/** True for a tag the referrers tag schema or cosign's tag convention gives a describing artifact. */
export function isFallbackTag(tag: string): boolean {
  return fallbackTagPattern.test(tag);
}

/** The digest a fallback tag describes (`sha256-<hex>.sig` → `sha256:<hex>`), or undefined. */
export function describedDigest(tag: string): string | undefined {
  return isFallbackTag(tag) ? `sha256:${tag.slice('sha256-'.length, 'sha256-'.length + 64)}` : undefined;
}

/** True if the filter names fallback tags explicitly (see the module comment). */
function namesFallbackTags(filter: string): boolean {
  const body = filter.startsWith('regex:') ? filter.slice('regex:'.length).replace(/^\^/, '') : filter;
  return body.startsWith('sha256-');
}

/** True if a rule over `repositories` applies to `repository` (never for a name outside the OCI grammar). */
export function repositoryMatches(repositories: readonly string[], repository: string): boolean {
  return isValidRepositoryName(repository) && repositories.some((pattern) => matchesRepositoryPattern(pattern, repository));
}

/**
 * True if the selector selects `tag`: it matches an include filter (or there are none) and no
 * exclude filter; a fallback tag only through an include filter that names fallback tags.
 */
export function tagSelected(selector: TagSelector, tag: string): boolean {
  if (!isValidTag(tag)) return false;
  if (isFallbackTag(tag)) {
    if (!selector.include.some((f) => namesFallbackTags(f) && tagMatches(f, tag))) return false;
  } else if (selector.include.length > 0 && !selector.include.some((f) => tagMatches(f, tag))) {
    return false;
  }
  return !selector.exclude.some((f) => tagMatches(f, tag));
}

/** Problems with a rule's selection (repository globs, tag filters), each naming its place; empty when valid. */
export function selectionProblems(repositories: readonly string[], selector: TagSelector): string[] {
  const problems: string[] = [];
  repositories.forEach((pattern, i) => {
    const problem = repositoryPatternProblem(pattern);
    if (problem) problems.push(`repositories.${i}: ${problem}`);
  });
  for (const key of ['include', 'exclude'] as const) {
    selector[key].forEach((filter, i) => {
      const problem = tagFilterProblem(filter);
      if (problem) problems.push(`tags.${key}.${i}: ${problem}`);
    });
  }
  return problems;
}
