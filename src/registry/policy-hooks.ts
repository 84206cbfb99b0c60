/**
 * Hooks through which policies above the registry (lifecycle: tag immutability, quotas, push rate
 * limits, last-pull tracking; `src/lifecycle/`) act on pushes and pulls without the registry knowing
 * them. The app wires them (`RegistryContext.pushPolicy`, `RegistryContext.pulled`); absent, nothing
 * changes. Every push goes through them, whoever makes it: clients, import, sync.
 */
import type { Pusher } from '../metadata/store.js';
import type { RegistryError } from '../oci/errors.js';

/** A manifest push about to be written, as the policy is told it (after the manifest parsed, before its transaction). */
export interface PendingManifest {
  repository: string;
  digest: string;
  /** The manifest's size in bytes. */
  size: number;
  /** Every tag the push sets (the reference's and the `tag` query parameters'), possibly none. */
  tags: readonly string[];
  /** Blob digests it references (config, layers). */
  blobs: readonly string[];
  pusher: Pusher | undefined;
}

/** An uploaded blob whose digest checked out, about to be moved into place and linked. */
export interface PendingBlob {
  repository: string;
  digest: string;
  size: number;
  pusher: Pusher | undefined;
}

/** What the policy decided about an allowed manifest push. */
export interface ManifestPushDecision {
  /**
   * Tags the push's transaction must find absent or already pointing at the pushed digest
   * (write-once tags): checked again there, so two pushes racing to create one cannot both win.
   */
  writeOnceTags: readonly string[];
  /** The refusal to throw when the transaction found some of `writeOnceTags` pointing elsewhere (a push that raced this one). */
  conflict(tags: readonly string[]): Promise<RegistryError>;
  /** Called once the push has committed (accounting: quota usage, rate limits, quota events); must not throw. */
  committed(): Promise<void>;
}

export interface PushPolicy {
  /** Called before a manifest push's transaction: throws a `RegistryError` (DENIED, TOOMANYREQUESTS) to refuse it. */
  checkManifest(push: PendingManifest): Promise<ManifestPushDecision>;
  /** Called before a verified upload becomes a blob of the repository: throws a `RegistryError` to refuse it (the upload is discarded). */
  checkBlob(blob: PendingBlob): Promise<void>;
}

/** Told of every manifest a client reads (GET or HEAD); called on the hot path, so it must only record (no I/O). */
export type PullRecorder = (repository: string, digest: string) => void;
