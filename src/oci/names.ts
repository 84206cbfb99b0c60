/**
 * Repository names and references, validated against the OCI distribution-spec grammar.
 *
 * A name that passes `parseRepositoryName` consists of path components matching
 * `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by single `/`: it cannot contain `..`, empty
 * components or a leading `/`, so it is safe to use under the data directory.
 */
import { RegistryError } from './errors.js';
import { tryParseDigest, type Digest } from './digest.js';

const component = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const namePattern = new RegExp(`^${component}(?:/${component})*$`);
const tagPattern = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Distribution's limit; longer names are refused rather than truncated. */
export const maxNameLength = 255;

export function isValidRepositoryName(name: string): boolean {
  return name.length > 0 && name.length <= maxNameLength && namePattern.test(name);
}

export function parseRepositoryName(name: string): string {
  if (!isValidRepositoryName(name)) {
    throw new RegistryError('NAME_INVALID', 'invalid repository name', { name: name.slice(0, 300) });
  }
  return name;
}

export function isValidTag(tag: string): boolean {
  return tagPattern.test(tag);
}

export type Reference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: Digest };

/** A manifest reference is a tag or a digest; anything else is MANIFEST_INVALID (per Distribution). */
export function parseReference(reference: string): Reference {
  if (reference.includes(':')) {
    const digest = tryParseDigest(reference);
    if (!digest) throw new RegistryError('DIGEST_INVALID', 'invalid digest reference', { reference: reference.slice(0, 200) });
    return { kind: 'digest', digest };
  }
  if (!isValidTag(reference)) {
    throw new RegistryError('MANIFEST_INVALID', 'invalid tag', { tag: reference.slice(0, 200) });
  }
  return { kind: 'tag', tag: reference };
}
