/**
 * The wire contract of push attestations (`/api/v1/attestations/*`, the attestation status of a
 * repository's images, `berth verify` and `berth history`). docs/attestations.md describes them.
 */

/** One of the registry's attestation signing keys. */
export interface AttestationKeyView {
  /** The key's hint, as bundles name it (`verificationMaterial.publicKey.hint`): hex sha256 of the SubjectPublicKeyInfo DER. */
  hint: string;
  /** `ecdsa-p256-sha256`. */
  algorithm: string;
  /** SubjectPublicKeyInfo PEM, for `cosign verify-attestation --key`, Kyverno and policy-controller. */
  publicKeyPem: string;
  createdAt: string;
  /** When it stopped signing; null for the active key. Retired keys still verify what they signed. */
  retiredAt: string | null;
}

/** GET /api/v1/attestations/keys: every key the registry has signed attestations with, newest first. */
export interface AttestationKeysView {
  keys: AttestationKeyView[];
}

/** POST /api/v1/attestations/keys/rotate. */
export interface RotatedAttestationKeyView {
  hint: string;
}

/** An attestation found on an image, as the server verified it. */
export interface AttestationView {
  /** The referrer manifest holding the bundle. */
  digest: string;
  valid: boolean;
  /** Why it did not verify; null when valid. */
  error: string | null;
  keyHint: string | null;
  /** Signed by one of this registry's keys. */
  berth: boolean;
  predicateType: string | null;
  /** The push predicate (docs/attestations.md), for Berth push attestations. */
  push: Record<string, unknown> | null;
}

/** What the pull rules decide for an image: `allowed`, and the refusing rule and reason when not. */
export interface PullDecisionView {
  allowed: boolean;
  rule: string | null;
  reason: string | null;
}

/** GET /api/v1/repositories/{name}/attestations?digest=|tag=: an image's attestations and the pull decision. */
export interface ImageAttestationsView {
  repository: string;
  digest: string;
  attestations: AttestationView[];
  pull: PullDecisionView;
}

/** Per digest in a history: `verified` (a valid push attestation), `invalid` (attestations, none valid), `none`. */
export type AttestationStatus = 'verified' | 'invalid' | 'none';

export interface AttestationSummaryView {
  status: AttestationStatus;
  /** The federated subject or principal the valid push attestation names. */
  identity: string | null;
}

/**
 * GET /api/v1/attestations/required?repository=NAME (public): whether pulls from the repository need
 * a satisfying attestation (some rule enforced at pull governs it). The PullBinding controller and the
 * kubelet credential provider ask it before minting pull credentials (`requireAttestations`).
 */
export interface AttestationRequirementView {
  repository: string;
  required: boolean;
  /** The names of the rules enforced at pull that govern it. */
  rules: string[];
}
