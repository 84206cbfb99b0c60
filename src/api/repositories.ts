/** The wire contract of GET /api/v1/repositories/{name}/history (`berth history`). */
import type { AttestationSummaryView } from './attestations.js';
import { z } from 'zod';

/** One push of a manifest (by tag, or by digest with `tag: null`), newest first in a history. */
export interface PushView {
  digest: string;
  tag: string | null;
  at: string;
  /** Who pushed; null when the registry ran without auth. */
  principal: { id: string; name: string } | null;
  /** For pushes with a federated login: the OIDC token's identifying claims (iss, sub, repository, sha, run_id, …). */
  provenance: Record<string, unknown> | null;
}

export interface HistoryView {
  repository: string;
  pushes: PushView[];
  /** Per digest in `pushes`: whether it carries a valid push attestation (verified now, by the server). */
  attestations: Record<string, AttestationSummaryView>;
}

// ---------------------------------------------------------------------------------------------
// Browsing (`GET /api/v1/repositories…`): what the web console shows, for any client. Each view is
// a zod schema (the OpenAPI document is generated from it) and its inferred type.

const isoTime = z.string().describe('ISO 8601 date-time');
const principalRef = z.object({ id: z.string(), name: z.string() }).describe('A principal');
const provenance = z
  .record(z.unknown())
  .nullable()
  .describe("For a push with a federated login: the OIDC token's identifying claims (iss, sub, repository, sha, workflow, run_id, …)");

/** GET /api/v1/repositories?q=&n=&last= */
export const repositoryListQuery = z
  .object({
    q: z.string().max(255).optional().describe('Only repositories whose name contains this text'),
    n: z.coerce.number().int().min(1).max(1000).optional().describe('At most this many (default 100)'),
    last: z.string().max(255).optional().describe("Repositories after this name (the previous page's `next`)"),
  })
  .strict();

export const repositoryListView = z.object({
  repositories: z.array(z.object({ name: z.string() })).describe('Sorted by name; only those the caller may pull'),
  next: z.string().nullable().describe('Pass as `last` for the next page; null on the last page'),
});
export type RepositoryListView = z.infer<typeof repositoryListView>;

/** GET /api/v1/repositories/{name}/tags?n=&last= */
export const tagListQuery = z
  .object({
    n: z.coerce.number().int().min(1).max(200).optional().describe('At most this many tags (default 50)'),
    last: z.string().max(128).optional().describe("Tags after this one (the previous page's `next`)"),
  })
  .strict();

export const platformView = z.object({
  platform: z.string().nullable().describe('`os/architecture[/variant]`, from the index entry'),
  digest: z.string(),
  mediaType: z.string(),
  size: z.number().int().describe('Bytes of the manifest, its config and its layers'),
});

export const tagView = z.object({
  tag: z.string(),
  digest: z.string(),
  mediaType: z.string(),
  artifactType: z.string().nullable(),
  manifestSize: z.number().int().describe('Bytes of the manifest itself'),
  size: z.number().int().describe('Bytes of everything the tag pulls: manifests, configs and layers, each blob counted once'),
  platforms: z.array(platformView).describe('For an index: its image manifests; for a single image: that image'),
  pushedAt: isoTime.nullable(),
  pushedBy: principalRef.nullable(),
  provenance,
});
export type TagView = z.infer<typeof tagView>;

export const tagListView = z.object({
  repository: z.string(),
  tags: z.array(tagView).describe('Sorted by tag'),
  next: z.string().nullable(),
  /** What the caller may do here (decided by the authorizer): the console shows or hides its buttons by it. */
  allowed: z.object({ push: z.boolean(), deleteTag: z.boolean(), deleteManifest: z.boolean() }),
});
export type TagListView = z.infer<typeof tagListView>;

export const descriptorView = z.object({
  mediaType: z.string(),
  digest: z.string(),
  size: z.number().int(),
  artifactType: z.string().nullable(),
  annotations: z.record(z.string()),
});

export interface ReferrerNodeView {
  mediaType: string;
  digest: string;
  size: number;
  artifactType: string | null;
  annotations: Record<string, string>;
  referrers: ReferrerNodeView[];
}
/** A referrer and its own referrers (the recursion is described, not spelled out, in the OpenAPI document). */
export const referrerNodeView = descriptorView.extend({
  referrers: z.array(z.unknown()).describe('Manifests whose subject is this referrer: the same shape, recursively'),
});

export const imageConfigView = z.object({
  digest: z.string(),
  mediaType: z.string(),
  size: z.number().int(),
  /** The parsed config when it is an image config of at most 1 MiB; else null. */
  image: z
    .object({
      os: z.string().nullable(),
      architecture: z.string().nullable(),
      variant: z.string().nullable(),
      created: z.string().nullable(),
      author: z.string().nullable(),
      user: z.string().nullable(),
      workingDir: z.string().nullable(),
      entrypoint: z.array(z.string()).nullable(),
      cmd: z.array(z.string()).nullable(),
      env: z.array(z.string()),
      exposedPorts: z.array(z.string()),
      labels: z.record(z.string()),
      history: z.array(z.object({ created: z.string().nullable(), createdBy: z.string().nullable(), emptyLayer: z.boolean(), comment: z.string().nullable() })),
    })
    .nullable(),
});

/** GET /api/v1/repositories/{name}/images/{digest} */
export const imageView = z.object({
  repository: z.string(),
  digest: z.string(),
  mediaType: z.string(),
  size: z.number().int(),
  kind: z.enum(['index', 'image', 'artifact']),
  artifactType: z.string().nullable(),
  subject: z.string().nullable().describe('The manifest this one refers to (signatures, SBOMs, attestations)'),
  annotations: z.record(z.string()),
  /** An index's entries, with their platforms. */
  manifests: z.array(descriptorView.extend({ platform: z.string().nullable() })),
  config: imageConfigView.nullable(),
  layers: z.array(descriptorView),
  /** Manifests whose subject is this one, and theirs in turn (at most 3 levels, 100 nodes). */
  referrers: z.array(referrerNodeView) as z.ZodType<ReferrerNodeView[]>,
  tags: z.array(z.string()).describe('Tags (among the first 200) that point at this manifest'),
  pushes: z.array(z.object({ tag: z.string().nullable(), at: isoTime, principal: principalRef.nullable(), provenance })),
});
export type ImageView = z.infer<typeof imageView>;

/** GET /api/v1/repositories/{name}/access: who may pull, push or delete here, and how (owners). */
export const repositoryAccessView = z.object({
  repository: z.string(),
  anonymousPull: z.boolean().describe('Whether anyone may pull without signing in (the anonymous-pull policy)'),
  principals: z.array(
    z.object({
      id: z.string(),
      name: z.string(),
      kind: z.string(),
      disabled: z.boolean(),
      /** The grants that reach this repository. */
      grants: z.array(z.object({ pattern: z.string(), permission: z.string() })),
      /** What they give here, together. */
      actions: z.array(z.string()),
      mayPush: z.boolean(),
      /** The OIDC trusts a workload may act as this principal through. */
      federatedCredentials: z.array(z.object({ name: z.string(), issuer: z.string(), subject: z.string(), audiences: z.array(z.string()) })),
    }),
  ),
});
export type RepositoryAccessView = z.infer<typeof repositoryAccessView>;
