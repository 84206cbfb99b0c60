/**
 * Repository names and references, validated against the OCI distribution-spec grammar.
 *
 * A name that passes `parseRepositoryName` consists of path components matching
 * `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by single `/`: it cannot contain `..`, empty
 * components or a leading `/`, so it is safe to use under the data directory.
 */
import { RegistryError } from './errors.js';
import { isUnsupportedDigest, tryParseDigest, type Digest } from './digest.js';

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

/**
 * A manifest reference as a read (`GET`/`HEAD`) takes it: a reference that no manifest can have is
 * MANIFEST_UNKNOWN (404), not a malformed request. The distribution spec (v1.1, "Pulling
 * manifests", `#pulling-manifests`): "`<reference>` MUST be either (a) the digest of the manifest
 * or (b) a tag. The `<reference>` MUST NOT be in any other format." and "If the manifest is not
 * found in the repository, the response code MUST be `404 Not Found`"; its endpoint table gives
 * end-3 (`GET`/`HEAD /v2/<name>/manifests/<reference>`) `404` as the only failure code. The
 * conformance suite reads a name that is no tag (`.INVALID_MANIFEST_NAME`) the same way.
 *
 * Not a tag (no `:` and outside the tag grammar) and a well-formed digest of an algorithm Berth
 * does not store (`sha384:…`) therefore name nothing. A malformed digest (`sha256:abc`) stays
 * DIGEST_INVALID (400), as on every endpoint that takes a digest: the suite's dev settings accept
 * 400 or 404 for a `GET` of `sha256:baddigeststring` and require 400 for its `PUT`.
 */
export function parseReferenceForRead(reference: string): Reference {
  if (reference.includes(':')) {
    if (isUnsupportedDigest(reference))
      throw new RegistryError('MANIFEST_UNKNOWN', 'no manifest has a digest of this algorithm', { reference: reference.slice(0, 200) });
    return parseReference(reference);
  }
  if (!isValidTag(reference))
    throw new RegistryError('MANIFEST_UNKNOWN', 'not a tag or a digest: no manifest has this reference', { reference: reference.slice(0, 200) });
  return { kind: 'tag', tag: reference };
}
