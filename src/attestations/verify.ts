/**
 * Verifying an attestation bundle, the same way on the server (policy enforcement) and in
 * `berth verify`: the Sigstore bundle is parsed and its DSSE signature checked by @sigstore/bundle
 * and @sigstore/verify against trusted public keys (no transparency log, no certificate: the
 * bundle names its key by hint), then the signed payload must be an in-toto statement whose
 * subject is the image's digest. A bundle copied onto another image, re-signed by another key or
 * altered in any byte fails here.
 *
 * The sigstore libraries are imported on first use, so a server without attestation rules and every
 * other CLI command never load them.
 */
import { createPublicKey } from 'node:crypto';
import type * as BundleModule from '@sigstore/bundle';
import type * as VerifyModule from '@sigstore/verify';
import { parseStatement, pushPredicateOf, statementCovers, type PushPredicate, type Statement } from './statement.js';

/** A public key trusted to sign attestations; `hint` is `keys.ts`'s key hint. */
export interface TrustedKey {
  hint: string;
  publicKeyPem: string;
}

export interface VerifiedAttestation {
  /** The hint of the trusted key whose signature verified. */
  keyHint: string;
  statement: Statement;
  /** The Berth push predicate, when the statement is a push attestation. */
  push: PushPredicate | undefined;
}

/** Why a bundle did not verify; `message` is meant for people (CLI output, DENIED reasons). */
export class AttestationError extends Error {
  override name = 'AttestationError';
}

type SigstoreBundle = typeof BundleModule;
type SigstoreVerify = typeof VerifyModule;
let libraries: Promise<[SigstoreBundle, SigstoreVerify]> | undefined;

function loadSigstore(): Promise<[SigstoreBundle, SigstoreVerify]> {
  libraries ??= Promise.all([import('@sigstore/bundle'), import('@sigstore/verify')]);
  return libraries;
}

/** Largest bundle read (a push attestation is about 2 KiB; cosign's with certificates about 10). */
export const maxBundleBytes = 1024 * 1024;

/**
 * Verifies `bundleBytes` (a Sigstore bundle's JSON) for the image `digest` against `keys`: the key
 * named by the bundle's hint if it is trusted, else each trusted key in turn (bundles from other
 * signers name keys their own way). Throws AttestationError with the reason.
 */
export async function verifyBundle(bundleBytes: Buffer, keys: readonly TrustedKey[], digest: string): Promise<VerifiedAttestation> {
  if (bundleBytes.length > maxBundleBytes) throw new AttestationError('the bundle is too large');
  if (keys.length === 0) throw new AttestationError('no trusted keys to verify with');
  const [{ bundleFromJSON, isBundleWithDsseEnvelope }, { Verifier, toSignedEntity }] = await loadSigstore();
  let bundle: ReturnType<typeof bundleFromJSON>;
  try {
    bundle = bundleFromJSON(JSON.parse(bundleBytes.toString('utf8')));
  } catch (err) {
    throw new AttestationError(`not a Sigstore bundle (${(err as Error).message})`);
  }
  if (!isBundleWithDsseEnvelope(bundle)) throw new AttestationError('the bundle holds no DSSE envelope (a message signature is not an attestation)');
  if (bundle.verificationMaterial.content.$case !== 'publicKey') {
    throw new AttestationError('the bundle is signed with a certificate (keyless): only key-based bundles are verified here');
  }
  const hint = bundle.verificationMaterial.content.publicKey.hint;
  const named = keys.find((k) => k.hint === hint);
  const candidates = named ? [named] : keys;
  const entity = toSignedEntity(bundle);
  let verifiedWith: TrustedKey | undefined;
  for (const key of candidates) {
    const publicKey = createPublicKey(key.publicKeyPem);
    const verifier = new Verifier(
      {
        certificateAuthorities: [],
        timestampAuthorities: [],
        tlogs: [],
        ctlogs: [],
        publicKey: () => ({ publicKey, validFor: () => true }),
      },
      { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 },
    );
    try {
      verifier.verify(entity);
      verifiedWith = key;
      break;
    } catch {
      // try the next key
    }
  }
  if (!verifiedWith) {
    throw new AttestationError(
      named ? `the signature does not verify with key ${hint.slice(0, 12)}…: the bundle was altered` : 'the bundle is not signed by a trusted key',
    );
  }
  const envelope = bundle.content.dsseEnvelope;
  if (envelope.payloadType !== 'application/vnd.in-toto+json')
    throw new AttestationError(`the signed payload is ${envelope.payloadType}, not an in-toto statement`);
  let statement: Statement;
  try {
    statement = parseStatement(envelope.payload);
  } catch (err) {
    throw new AttestationError((err as Error).message);
  }
  if (!statementCovers(statement, digest)) {
    throw new AttestationError(`the statement is about another image (its subject is not ${digest}): it was copied from elsewhere`);
  }
  return { keyHint: verifiedWith.hint, statement, push: pushPredicateOf(statement) };
}
