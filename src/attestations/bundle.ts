/**
 * Packaging: a DSSE envelope as a Sigstore bundle v0.3 with a public-key hint (the form
 * `cosign attest --key --new-bundle-format` writes, without a transparency-log entry), and the
 * bundle as an OCI referrer of the image, laid out as cosign's BUNDLE_SPEC describes: an image
 * manifest with `artifactType` the bundle media type, the empty config, one layer holding the
 * bundle's JSON, and `subject` the image.
 *
 * Bundle format: https://github.com/sigstore/protobuf-specs/blob/main/protos/sigstore_bundle.proto
 * OCI layout: https://github.com/sigstore/cosign/blob/main/specs/BUNDLE_SPEC.md
 */
import { digestOf } from '../oci/digest.js';
import { mediaTypes } from '../oci/media-types.js';
import type { Envelope } from './dsse.js';

/** The empty JSON object, the config of an artifact manifest (OCI image spec, "empty descriptor"). */
export const emptyConfig = Buffer.from('{}');

export interface SigstoreBundle {
  mediaType: string;
  verificationMaterial: {
    publicKey: { hint: string };
    tlogEntries: unknown[];
    timestampVerificationData: { rfc3161Timestamps: unknown[] };
  };
  dsseEnvelope: Envelope;
}

export function toBundle(envelope: Envelope, keyHint: string): SigstoreBundle {
  return {
    mediaType: mediaTypes.sigstoreBundle,
    verificationMaterial: {
      publicKey: { hint: keyHint },
      tlogEntries: [],
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
    dsseEnvelope: envelope,
  };
}

export interface Subject {
  digest: string;
  mediaType: string;
  size: number;
}

/** The referrer manifest holding `bundle` (its exact JSON bytes) for `subject`. */
export function referrerManifest(bundle: Buffer, subject: Subject, predicateType: string, created: Date): Buffer {
  const bundleDigest = digestOf(bundle);
  const manifest = {
    schemaVersion: 2,
    mediaType: mediaTypes.ociManifest,
    artifactType: mediaTypes.sigstoreBundle,
    config: { mediaType: mediaTypes.ociEmpty, digest: digestOf(emptyConfig), size: emptyConfig.length },
    layers: [
      {
        mediaType: mediaTypes.sigstoreBundle,
        digest: bundleDigest,
        size: bundle.length,
        annotations: { 'org.opencontainers.image.title': `${bundleDigest.replace(':', '-')}.sigstore.json` },
      },
    ],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: {
      'dev.sigstore.bundle.content': 'dsse-envelope',
      'dev.sigstore.bundle.predicateType': predicateType,
      'org.opencontainers.image.created': created.toISOString(),
    },
  };
  return Buffer.from(JSON.stringify(manifest));
}
