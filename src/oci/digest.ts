/**
 * Content digests: parsing, validation and computation.
 *
 * Grammar (OCI image-spec descriptor.md): `algorithm ":" encoded`. Berth accepts the two registered
 * algorithms, sha256 (64 lowercase hex) and sha512 (128 lowercase hex); anything else is
 * DIGEST_INVALID (with a message that names the algorithm when only that is unknown). A parsed `Digest` is safe
 * to use as a path component: its characters are [a-z0-9:] only.
 */
import { createHash } from 'node:crypto';
import { RegistryError } from './errors.js';

export type DigestAlgorithm = 'sha256' | 'sha512';

const encodedPattern: Record<DigestAlgorithm, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};

/** Generic grammar from the image spec, used to tell "malformed" from "unsupported". */
const genericDigest = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export interface Digest {
  readonly algorithm: DigestAlgorithm;
  readonly encoded: string;
  /** `algorithm:encoded`, the canonical string form. */
  readonly value: string;
}

export function isDigestAlgorithm(s: string): s is DigestAlgorithm {
  return s === 'sha256' || s === 'sha512';
}

/** Parses or throws DIGEST_INVALID (malformed, or an algorithm other than sha256/sha512). */
export function parseDigest(input: string): Digest {
  const digest = tryParseDigest(input);
  if (digest) return digest;
  if (isUnsupportedDigest(input)) {
    throw new RegistryError('DIGEST_INVALID', `unsupported digest algorithm ${input.slice(0, input.indexOf(':'))}: use sha256 or sha512`);
  }
  throw new RegistryError('DIGEST_INVALID', 'invalid digest', { digest: input.slice(0, 200) });
}

/**
 * True for a digest that is well formed in the image spec's grammar but uses an algorithm Berth
 * does not support (e.g. `sha384:…`, `md5:…`): no content Berth stores can have it.
 */
export function isUnsupportedDigest(input: string): boolean {
  return genericDigest.test(input) && !isDigestAlgorithm(input.slice(0, input.indexOf(':')));
}

export function tryParseDigest(input: string): Digest | undefined {
  const colon = input.indexOf(':');
  if (colon <= 0) return undefined;
  const algorithm = input.slice(0, colon);
  const encoded = input.slice(colon + 1);
  if (!isDigestAlgorithm(algorithm) || !encodedPattern[algorithm].test(encoded)) return undefined;
  return { algorithm, encoded, value: input };
}

export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
