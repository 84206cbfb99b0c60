/**
 * What the registry needs from its metadata database, split by concern. `registry/` depends on
 * these interfaces only; `sql-store.ts` implements them once for SQLite and PostgreSQL.
 *
 * Contract shared by all methods: repository names are already validated; digests are canonical;
 * `now` is injected (milliseconds) so tests control time.
 */
import type { Descriptor } from '../oci/manifest.js';
import type { ScheduledTaskStore } from '../shared/lease.js';
import type { AuthMetadata } from './auth-store.js';
import type { ConsoleMetadata } from './console-store.js';
import type { CacheMetadata } from './cache-store.js';
import type { ImportJobIndex } from './import-store.js';
import type { SyncMetadata } from './sync-store.js';
import type { EventMetadata, NewEvent } from './event-store.js';
import type { AttestationKeyIndex } from './attestation-store.js';
import type { LifecycleMetadata } from './lifecycle-store.js';
import type { AuditExportIndex } from './audit-export-store.js';
import type { OperationsIndex } from './operations-store.js';

export interface Page {
  /** Maximum number of entries; undefined means the server's default limit. */
  n?: number | undefined;
  /** Return entries strictly after this one (lexical order). */
  last?: string | undefined;
}

export interface RepositoryIndex {
  /** Repository names holding at least one manifest, sorted, for the catalog; `contains`: only names containing it. */
  list(page: Page, filter?: { contains?: string | undefined }): Promise<string[]>;
  /** True if the repository has ever been written to. */
  exists(name: string): Promise<boolean>;
}

export interface BlobRecord {
  digest: string;
  size: number;
  pushedAt: number;
}

/**
 * Blob rows and repository links. The invariant is "a blob row exists only while its file does",
 * kept against a concurrent GC (`GcIndex.collectBlob`) by one rule: GC deletes a blob's rows and
 * its file in one transaction that holds the blob row and re-checks its push time; everything that
 * relies on stored content first takes the same row and refreshes that time (`touch`,
 * `linkExisting`), so it either runs before GC's check (and GC keeps the blob) or after GC's commit
 * (and finds no row). Only `link`, after new bytes were moved into place, creates a row.
 */
export interface BlobIndex {
  /** The blob if its content is in storage, whichever repository it came through. */
  get(digest: string): Promise<BlobRecord | undefined>;
  /** The blob if `repository` may serve it (it was pushed or mounted there). */
  getInRepository(repository: string, digest: string): Promise<BlobRecord | undefined>;
  /**
   * Records content that was just moved into place (idempotent), refreshes its push time, links it
   * into the repository. Call `touch` before the move (see `UploadService.commit`). With
   * `endsUpload`, the upload session that delivered it is deleted in the same transaction.
   */
  link(repository: string, blob: { digest: string; size: number }, now: number, endsUpload?: string): Promise<void>;
  /**
   * Refreshes the push time of a recorded blob, so a GC that has not yet re-checked it keeps it;
   * undefined if there is no row (never recorded, or collected: its file is gone or going).
   */
  touch(digest: string, now: number): Promise<BlobRecord | undefined>;
  /**
   * Links recorded content into `repository` and refreshes its push time, in one transaction that
   * holds the blob row; undefined, linking nothing, if there is no row. Never creates the row.
   */
  linkExisting(repository: string, digest: string, now: number): Promise<BlobRecord | undefined>;
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
  /**
   * Where the session's bytes are, as the registry chose when it began: its name for a storage layout
   * (`UploadLayout` in storage/paths.ts, which metadata/ may not import; the registry passes one to
   * the other, so the two unions cannot drift apart without a compile error).
   */
  layout: UploadLayout;
}

export type UploadLayout = 'flat' | 'directory';

export interface UploadIndex {
  create(repository: string, id: string, now: number, layout: UploadLayout): Promise<void>;
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
  /**
   * Manifests written in the same transaction, after this one (referrers of it, such as a push
   * attestation): their rows and references only, no tag, push record or event. Their blobs are
   * re-checked with this manifest's, so either everything commits or nothing does.
   */
  companions?: readonly NewManifest[] | undefined;
  /**
   * Tags that must be absent or already point at this digest when the transaction writes them
   * (write-once tags); if one points elsewhere, nothing is written and it is returned in `conflicts`.
   */
  writeOnceTags?: readonly string[] | undefined;
}

/** What a conditional delete expects to find (a retention run deleting what it planned, and nothing pushed since). */
export interface DeleteExpectation {
  /** Nothing was pushed to the manifest (or, for a tag, the tag) at or after this time. */
  unchangedSince: number;
  /** A tag delete: the tag still points at this digest. */
  digest?: string | undefined;
  /** A manifest delete: no manifest of the repository lists it (as an index lists its platform manifests). */
  unreferenced?: boolean | undefined;
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
  /** The principal's kind (`user`, `service`, …), when known. */
  kind?: string | undefined;
  /** The credential the pusher logged in with (for federated logins: the federated credential's id). */
  credentialId?: string | undefined;
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
   * untagged change when there is no tag. Write-once tags (`writeOnceTags`) found pointing at another
   * digest are returned in `conflicts`, and then nothing is written.
   */
  put(manifest: NewManifest, now: number, outbox?: ChangeOutbox): Promise<{ missing: string[]; absent?: string[]; conflicts?: string[] }>;
  getByTag(repository: string, tag: string): Promise<ManifestRecord | undefined>;
  getByDigest(repository: string, digest: string): Promise<ManifestRecord | undefined>;
  /**
   * Deletes the manifest and every tag pointing at it; false if it did not exist (or, with `expect`,
   * if the repository no longer matches it: then nothing changes). Writes the rows of `outbox` (a
   * `delete` change) in the same transaction.
   */
  delete(repository: string, digest: string, now: number, outbox?: ChangeOutbox, expect?: DeleteExpectation): Promise<boolean>;
  /**
   * Deletes one tag, leaving the manifest; false if the tag did not exist (or, with `expect`, no
   * longer matches it). Writes the rows of `outbox` (a `delete` change) in the same transaction.
   */
  deleteTag(repository: string, tag: string, now: number, outbox?: ChangeOutbox, expect?: DeleteExpectation): Promise<boolean>;
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
   * Collects one blob: in one transaction holding its row, re-checks that no manifest references
   * it and that it was last pushed (or touched, or linked) before `cutoff`, deletes its row and every
   * repository link, then calls `removeContent` (which deletes the file) before committing. False,
   * changing nothing, if the re-check fails or `removeContent` answers false. A `touch`,
   * `linkExisting` or manifest put of the same digest waits for this transaction and then finds no
   * row, or went first and made the blob recent or referenced.
   */
  collectBlob(digest: string, cutoff: number, removeContent: () => Promise<boolean>): Promise<boolean>;
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
  /** Pull-through cache: rules, cached tags, last pulls, eviction sweeps (`cache-store.ts`). */
  readonly cache: CacheMetadata;
  /** Webhook subscriptions, the event outbox and deliveries. */
  readonly events: EventMetadata;
  /** Periodic tasks one replica at a time runs (retention pruning). */
  readonly tasks: ScheduledTaskStore;
  /** Push attestation signing keys (`attestation-store.ts`). */
  readonly attestationKeys: AttestationKeyIndex;
  /** The web console's sessions and single-sign-on identities (`console-store.ts`). */
  readonly console: ConsoleMetadata;
  /** Lifecycle policies, their runs, last pulls and storage usage (`lifecycle-store.ts`). */
  readonly lifecycle: LifecycleMetadata;
  /** Reachability and the counts behind `/metrics` (`operations-store.ts`). */
  readonly operations: OperationsIndex;
  /** The audit export's outbox (`audit-export-store.ts`). */
  readonly auditExports: AuditExportIndex;
  close(): Promise<void>;
}
