/**
 * Webhook filters: which repository changes a subscription hears about.
 *
 * A filter is a list of entries; an empty list matches everything. An entry is `REPOSITORY` or
 * `REPOSITORY:TAG`:
 *
 * - REPOSITORY is a repository pattern with the same grammar and meaning as grants
 *   (`shared/glob.ts`): `*` matches within one path component, `**` across components.
 *   `tripinsights/*` matches `tripinsights/web` but not `tripinsights/web/cache`;
 *   `tripinsights/**` matches both; `**` alone matches every repository.
 * - TAG is a tag glob: `*` matches any run of characters (tags have no `/`), everything else is
 *   literal. `v*` matches `v1` and `v1.2.3`.
 * - An entry without `:` matches the repository whatever the tag, including changes that have no
 *   tag (a push by digest, a manifest deleted by digest). An entry with `:` matches only changes
 *   that carry a matching tag.
 *
 * The tags of a change are the tag pushed or deleted, or for a manifest deleted by digest the
 * tags that pointed at it (deleted with it). Reusing the grant grammar keeps one meaning of `*`
 * across Berth: `*:v*` is "top-level repositories, tags starting with v", `**:v*` every repository.
 */
import { isValidRepositoryName, isValidTag } from '../oci/names.js';
import { isRepositoryPattern, matchesRepositoryPattern, matchesStarGlob } from '../shared/glob.js';

/** Longest filter entry accepted (a repository name is at most 255 characters, a tag 128). */
const maxEntryLength = 400;
const tagGlobSyntax = /^[A-Za-z0-9_*][A-Za-z0-9_.*-]{0,127}$/;

/** Why `entry` is not a valid filter entry, or undefined when it is. */
export function filterEntryProblem(entry: string): string | undefined {
  if (entry.length === 0 || entry.length > maxEntryLength) return `a filter entry is 1-${maxEntryLength} characters`;
  const colon = entry.indexOf(':');
  const repository = colon === -1 ? entry : entry.slice(0, colon);
  if (!isRepositoryPattern(repository)) {
    return `${JSON.stringify(repository.slice(0, 100))} is not a repository pattern (lower-case path components, * within one component, ** across)`;
  }
  if (colon !== -1 && !tagGlobSyntax.test(entry.slice(colon + 1))) {
    return `${JSON.stringify(entry.slice(colon + 1, colon + 101))} is not a tag glob (tag characters and *)`;
  }
  return undefined;
}

export interface FilterSubject {
  repository: string;
  /** Tags the change carries (see the module comment); empty for a change without a tag. */
  tags: readonly string[];
}

/**
 * True if the change matches `filters` (an empty list matches everything). Names and tags are
 * matched only once they pass the OCI grammar and length limits (a change the registry made always
 * does): a malformed repository matches no entry, a malformed tag no tag glob.
 */
export function matchesFilters(filters: readonly string[], change: FilterSubject): boolean {
  if (filters.length === 0) return true;
  if (!isValidRepositoryName(change.repository)) return false;
  const tags = change.tags.filter(isValidTag);
  return filters.some((entry) => matchesEntry(entry, change.repository, tags));
}

function matchesEntry(entry: string, repository: string, tags: readonly string[]): boolean {
  const colon = entry.indexOf(':');
  if (colon === -1) return matchesRepositoryPattern(entry, repository);
  if (!matchesRepositoryPattern(entry.slice(0, colon), repository)) return false;
  const tag = entry.slice(colon + 1);
  return tags.some((t) => matchesStarGlob(tag, t));
}
