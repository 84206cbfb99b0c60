/**
 * Table shapes for the metadata database (SQLite by default, PostgreSQL for scale-out).
 * Times are integer milliseconds since the epoch. Digests are canonical `alg:hex` strings.
 */
import type { Generated } from 'kysely';

export interface RepositoriesTable {
  id: Generated<number>;
  name: string;
  created_at: number;
}

/** Content present in blob storage, stored once for all repositories. */
export interface BlobsTable {
  digest: string;
  size: number;
  /** Last time a client pushed or mounted this content; GC keeps blobs pushed within its grace period. */
  pushed_at: number;
}

/** Which repository may serve which blob (pushed or mounted there). */
export interface RepositoryBlobsTable {
  repository_id: number;
  digest: string;
  created_at: number;
}

/** Exact manifest bytes, stored once per digest. */
export interface ManifestContentsTable {
  digest: string;
  content: Buffer;
  created_at: number;
}

export interface ManifestsTable {
  repository_id: number;
  digest: string;
  media_type: string;
  size: number;
  subject_digest: string | null;
  artifact_type: string | null;
  /** JSON text of the manifest's top-level annotations (for referrers responses). */
  annotations: string | null;
  created_at: number;
}

/** Edges from a manifest to what it needs: blobs (config, layers) and child manifests. */
export interface ManifestReferencesTable {
  repository_id: number;
  manifest_digest: string;
  child_digest: string;
  kind: 'blob' | 'manifest';
}

export interface TagsTable {
  repository_id: number;
  name: string;
  digest: string;
  updated_at: number;
}

export interface UploadsTable {
  id: string;
  repository_id: number;
  created_at: number;
  updated_at: number;
}

export interface Schema {
  repositories: RepositoriesTable;
  blobs: BlobsTable;
  repository_blobs: RepositoryBlobsTable;
  manifest_contents: ManifestContentsTable;
  manifests: ManifestsTable;
  manifest_references: ManifestReferencesTable;
  tags: TagsTable;
  uploads: UploadsTable;
}
