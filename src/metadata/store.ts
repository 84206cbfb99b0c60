/**
 * What the registry needs from its metadata database, split by concern. `registry/` depends on
 * these interfaces only; `sql-store.ts` implements them once for SQLite and PostgreSQL.
 *
 * Contract shared by all methods: repository names are already validated; digests are canonical;
 * `now` is injected (milliseconds) so tests control time.
 */
import type { Descriptor } from '../oci/manifest.js';
import type { AuthMetadata } from './auth-store.js';
import type { ImportJobIndex } from './import-store.js';
import type { SyncMetadata } from './sync-store.js';
import type { EventMetadata, NewEvent } from './event-store.js';
import type { AuditExportIndex } from './audit-export-store.js';
import type { OperationsIndex } from './operations-store.js';

export interface Page {
  /** Maximum number of entries; undefined means the server's default limit. */
  n?: number | undefined;
  /** Return entries strictly after this one (lexical order). */
  last?: string | undefined;
}

export interface RepositoryIndex {
  /** Repository names holding at least one manifest, sorted, for the catalog. */
  list(page: Page): Promise<string[]>;
  /** True if the repository has ever been written to. */
  exists(name: string): Promise<boolean>;
}

export interface BlobRecord {
  digest: string;
  size: number;
  pushedAt: number;
}

export interface BlobIndex {
  /** The blob if its content is in storage, whichever repository it came through. */
  get(digest: string): Promise<BlobRecord | undefined>;
  /** The blob if `repository` may serve it (it was pushed or mounted there). */
  getInRepository(repository: string, digest: string): Promise<BlobRecord | undefined>;
  /** Records that the content exists (idempotent), refreshes its push time, links it into the repository. */
  link(repository: string, blob: { digest: string; size: number }, now: number): Promise<void>;
  /** Removes the repository's link to the blob; true if there was one. */
  unlink(repository: string, digest: string): Promise<boolean>;
  /** Up to `limit` names of the repositories that may serve the blob, sorted, after `after` (exclusive). */
  holders(digest: string, page: { after?: string | undefined; limit: number }): Promise<string[]>;
}

export interface UploadRecord {
  id: string;
  repository: string;
  createdAt: number;
  updatedAt: number;
}

export interface UploadIndex {
  create(repository: string, id: string, now: number): Promise<void>;
  /** The session, only if it belongs to `repository`. */
  get(repository: string, id: string): Promise<UploadRecord | undefined>;
  touch(id: string, now: number): Promise<void>;
  delete(id: string): Promise<void>;
  /** True if a session with this id exists in any repository. */
  exists(id: string): Promise<boolean>;
  /** Sessions with no activity since `cutoff`, for expiry. */
  listIdleSince(cutoff: number): Promise<UploadRecord[]>;
}

export interface ManifestRecord {
  digest: string;
  mediaType: string;
  size: number;
  /** The exact bytes that were pushed. */
  content: Buffer;
  subject: string | undefined;
}

export interface NewManifest {
  repository: string;
  digest: string;
  mediaType: string;
  content: Buffer;
  subject?: string | undefined;
  artifactType?: string | undefined;
  annotations?: Record<string, string> | undefined;
  /** Blob digests the manifest references (config, layers). */
  blobs: readonly string[];
  /** Child manifest digests (an index's entries). */
  manifests: readonly string[];
  /** Tag to point at this manifest, if pushed by tag (the same as `tags: [tag]`). */
  tag?: string | undefined;
  /** Tags to point at this manifest, all in the manifest's transaction (a push with `tag` query parameters). */
  tags?: readonly string[] | undefined;
  /** Kinds of reference that may be absent from the repository (a sparse manifest); by default none may. */
  allowMissing?: MissingAllowance | undefined;
  /** Who pushed it, recorded in the same transaction (undefined when auth is off). */
  pusher?: Pusher | undefined;
}

/** Which references of a manifest may be absent from its repository: child manifests, and blobs (config, layers). */
export interface MissingAllowance {
  manifests?: boolean | undefined;
  blobs?: boolean | undefined;
}

/** A change to a repository's manifests or tags, as the transaction that commits it knows it. */
export interface ManifestChange {
  action: 'push' | 'delete';
  repository: string;
  digest: string;
  mediaType: string | undefined;
  size: number | undefined;
  /** The tag pushed or deleted; undefined for a push or delete by digest. */
  tag: string | undefined;
  /** For a delete by digest, the tags removed with the manifest, sorted. */
  removedTags?: readonly string[] | undefined;
}

/**
 * The outbox of a change: builds the event rows (`event-store.ts`) written in the change's own
 * transaction, from what that transaction found (for a delete, the manifest's media type, size
 * and tags). The caller (the registry's domain) decides what the rows say; `metadata/` inserts them
 * as given, so they commit or roll back with the change. Called only when the change happens,
 * inside the transaction, and again if the transaction is retried (a PostgreSQL deadlock victim):
 * it must only compute, not act. Throwing rolls the change back.
 */
export type ChangeOutbox = (change: ManifestChange, now: number) => readonly NewEvent[];

export interface Pusher {
  principalId: string;
  principalName: string;
  /** For federated logins, the OIDC token's identifying claims. */
  provenance?: Record<string, unknown> | undefined;
}

export interface PushRecord {
  digest: string;
  tag: string | undefined;
  at: number;
  principalId: string | undefined;
  principalName: string | undefined;
  provenance: Record<string, unknown> | undefined;
}

export interface ManifestIndex {
  /**
   * Stores the manifest, its references and its tags in one transaction, after re-checking inside
   * it that every referenced blob and child manifest is present in the repository (so a
   * concurrent GC cannot leave a dangling reference). Returns in `missing` the absent digests that
   * `allowMissing` does not excuse; when there are any, nothing is written. Absent references it
   * excuses are recorded like present ones and returned in `absent` (only when there are some).
   * The rows of `outbox` are written in the same transaction: one `push` change per tag, or one
   * untagged change when there is no tag.
   */
  put(manifest: NewManifest, now: number, outbox?: ChangeOutbox): Promise<{ missing: string[]; absent?: string[] }>;
  getByTag(repository: string, tag: string): Promise<ManifestRecord | undefined>;
  getByDigest(repository: string, digest: string): Promise<ManifestRecord | undefined>;
  /** Deletes the manifest and every tag pointing at it; false if it did not exist. Writes the rows of `outbox` (a `delete` change) in the same transaction. */
  delete(repository: string, digest: string, now: number, outbox?: ChangeOutbox): Promise<boolean>;
  /** Deletes one tag, leaving the manifest; false if the tag did not exist. Writes the rows of `outbox` (a `delete` change) in the same transaction. */
  deleteTag(repository: string, tag: string, now: number, outbox?: ChangeOutbox): Promise<boolean>;
  /** Sorted tags, or undefined if the repository is unknown. */
  listTags(repository: string, page: Page): Promise<string[] | undefined>;
  /** Descriptors of the repository's manifests whose subject is `subject`, oldest first. */
  listReferrers(repository: string, subject: string, artifactType?: string): Promise<Descriptor[]>;
  /** Push records, newest first, optionally only for one tag or one digest. */
  history(repository: string, filter: { tag?: string | undefined; digest?: string | undefined; limit: number }): Promise<PushRecord[]>;
}

export interface GcIndex {
  /** Blobs no manifest in any repository references, last pushed before `cutoff`. */
  unreferencedBlobs(cutoff: number): Promise<BlobRecord[]>;
  /**
   * Forgets the given blobs (rows and every repository link), re-checking in the same transaction
   * that each is still unreferenced and still older than `cutoff`. Returns the digests forgotten:
   * only those may be deleted from storage.
   */
  forgetBlobs(digests: readonly string[], cutoff: number): Promise<string[]>;
  /** Deletes stored manifest bytes no repository's manifest uses; returns how many. */
  pruneManifestContents(): Promise<number>;
}

export interface Metadata {
  readonly repositories: RepositoryIndex;
  readonly blobs: BlobIndex;
  readonly uploads: UploadIndex;
  readonly manifests: ManifestIndex;
  readonly gc: GcIndex;
  readonly auth: AuthMetadata;
  /** Import jobs (`import-store.ts`). */
  readonly imports: ImportJobIndex;
  /** Selective sync: rules, reconciles, work queue, per-image status, received ids (`sync-store.ts`). */
  readonly sync: SyncMetadata;
  /** Webhook subscriptions, the event outbox and deliveries. */
  readonly events: EventMetadata;
  /** Reachability and the counts behind `/metrics` (`operations-store.ts`). */
  readonly operations: OperationsIndex;
  /** The audit export's outbox (`audit-export-store.ts`). */
  readonly auditExports: AuditExportIndex;
  close(): Promise<void>;
}
