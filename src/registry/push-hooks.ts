/**
 * Hooks the registry calls around a manifest push and a manifest read, so a feature above the
 * registry (push attestations and their policy, `src/attestations/`) can refuse a push, add
 * manifests to its transaction, or refuse a read, without the registry knowing the feature.
 * The app wires them (`RegistryContext.pushHook`, `RegistryContext.pullGate`); absent, nothing
 * changes.
 */
import type { ManifestRecord, Pusher } from '../metadata/store.js';
import type { RequestInfo } from './changes.js';

/** A manifest push about to be written, as the hook is told it. */
export interface PendingPush {
  repository: string;
  digest: string;
  mediaType: string;
  /** The manifest's size in bytes. */
  size: number;
  /** The tags pushed (sorted; several with `?tag=` parameters); empty for a push by digest alone. */
  tags: readonly string[];
  /** The pushed manifest's `subject` (it is a referrer: a signature, SBOM or attestation). */
  subject: string | undefined;
  /** `artifactType`, or an image manifest's config media type (the spec's fallback). */
  artifactType: string | undefined;
  /**
   * True when the push creates something: a digest new to the repository, or a tag that did not
   * point at this digest (any of `tags`). Read before the transaction: two racing pushes may both see true.
   */
  creates: boolean;
  pusher: Pusher | undefined;
  request: RequestInfo | undefined;
}

/**
 * A manifest written in the same transaction as the push (for example a push attestation, a
 * referrer whose `subject` is the pushed manifest). Its `blobs` are stored through the upload
 * commit path and linked into the repository before the transaction starts; the manifest row
 * commits or rolls back with the push.
 */
export interface CompanionManifest {
  content: Buffer;
  mediaType: string;
  blobs: readonly Buffer[];
}

/**
 * Called before a push's transaction. May throw a `RegistryError` (`DENIED`) to refuse the push,
 * and returns the companion manifests to write with it (none: an empty list).
 */
export type PushHook = (push: PendingPush) => Promise<readonly CompanionManifest[]>;

/** Called before a manifest's content is served (GET; a HEAD serves none); throws a `RegistryError` (`DENIED`) to refuse it. */
export type PullGate = (repository: string, manifest: ManifestRecord) => Promise<void>;
