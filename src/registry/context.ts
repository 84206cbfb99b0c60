/**
 * What every registry service is built from. Injected, never global, so tests control time and
 * storage and several apps can run in one process.
 */
import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.js';
import type { Metadata } from '../metadata/store.js';
import type { StorageDriver } from '../storage/driver.js';
import type { ChangeEvents } from './changes.js';
import type { PullGate, PushHook } from './push-hooks.js';
import type { PullRecorder, PushPolicy } from './policy-hooks.js';

export interface RegistryLimits {
  /** Largest manifest accepted, in bytes (spec suggests at least 4 MiB). */
  maxManifestBytes: number;
  /** An upload session idle this long is abandoned and removed. */
  uploadTtlMs: number;
}

/**
 * Repository patterns (the repository glob grammar, `shared/glob.ts`) where sparse manifests are
 * accepted: `indexes`, an index may list child manifests the repository does not hold; `images`,
 * an image manifest may name a config or layers it does not hold. From `registry.sparseIndexes`
 * and `registry.sparseImages`.
 */
export interface SparsePolicy {
  indexes: readonly string[];
  images: readonly string[];
}

export interface RegistryContext {
  storage: StorageDriver;
  metadata: Metadata;
  clock: Clock;
  logger: Logger;
  limits: RegistryLimits;
  /**
   * Builds the event rows every manifest push and delete writes in its own transaction (the
   * webhook outbox, `changes.ts`); the app gives the webhook payload builder. Absent only where
   * no manifest changes (`berth gc`): then a change would record no event.
   */
  changeEvents?: ChangeEvents | undefined;
  /** Where sparse manifests are accepted; absent: nowhere (unless a caller asks, `PutManifestOptions.allowMissing`). */
  sparse?: SparsePolicy | undefined;
  /** Refuses a push or adds manifests to its transaction (push attestations, `push-hooks.ts`). */
  pushHook?: PushHook | undefined;
  /** Refuses serving a manifest (attestation policy at pull, `push-hooks.ts`). */
  pullGate?: PullGate | undefined;
  /** Refuses pushes (tag immutability, quotas, rate limits) and accounts for accepted ones (`policy-hooks.ts`). */
  pushPolicy?: PushPolicy | undefined;
  /** Told of every manifest a client reads (last-pull tracking, `policy-hooks.ts`). */
  pulled?: PullRecorder | undefined;
}
