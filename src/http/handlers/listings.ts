/** Listings: GET /v2/_catalog, /v2/<name>/tags/list, /v2/<name>/referrers/<digest>. */
import { readableRepository, type Grant } from '../../auth/permissions.js';
import type { RepositoryIndex } from '../../metadata/store.js';
import { RegistryError } from '../../oci/errors.js';
import { mediaTypes } from '../../oci/media-types.js';
import { page } from '../request.js';
import { send, sendJson } from '../respond.js';
import type { RouteContext } from '../routes.js';
import { urls } from '../../api/urls.js';
import { digestParam, repositoryOf } from './common.js';

/**
 * Fetches one more entry than asked so a `Link: <…>; rel="next"` is sent only when more remain.
 * With no `n`, the store's maximum page applies and the same rule holds.
 */
async function paged(
  query: URLSearchParams,
  fetch: (n: number | undefined, last: string | undefined) => Promise<string[] | undefined>,
  nextUrl: (n: number, last: string) => string,
): Promise<{ items: string[]; link: Record<string, string> } | undefined> {
  const { n, last } = page(query);
  if (n === 0) return { items: [], link: {} };
  const items = await fetch(n === undefined ? undefined : n + 1, last);
  if (!items) return undefined;
  const more = n !== undefined && items.length > n;
  const shown = more ? items.slice(0, n) : items;
  const tail = shown[shown.length - 1];
  const link = more && n !== undefined && tail !== undefined ? { Link: `<${nextUrl(n, tail)}>; rel="next"` } : {};
  return { items: shown, link };
}

/**
 * The catalog. A token with `registry:catalog:*` (registry-wide read) sees every repository; one
 * with only `metadata_read` on it (a principal granted some repositories, e.g. a vendor's scoped
 * customer credential that a sync rule uses to discover what it may copy) sees just the
 * repositories its grants can read. With auth off everything is listed.
 */
export async function catalog(ctx: RouteContext): Promise<void> {
  const repositories = ctx.registry.context.metadata.repositories;
  const visible = await catalogFilter(ctx);
  const list = visible
    ? (n: number | undefined, last: string | undefined) => filteredPage(repositories, visible, n, last)
    : (n: number | undefined, last: string | undefined) => repositories.list({ n, last });
  const result = await paged(ctx.query, list, (n, last) => urls.catalog({ n, last }));
  sendJson(ctx.res, 200, { repositories: result?.items ?? [] }, result?.link ?? {});
}

/** Which repositories the caller may see in the catalog; undefined: all of them. */
async function catalogFilter(ctx: RouteContext): Promise<((repository: string) => boolean) | undefined> {
  const identity = ctx.identity;
  if (!ctx.auth.enabled || !identity) return undefined;
  const entry = identity.access.filter((a) => a.type === 'registry' && a.name === 'catalog');
  if (entry.some((a) => a.actions.includes('*'))) return undefined;
  const grants: Grant[] =
    identity.kind === 'anonymous'
      ? (await ctx.auth.store.anonymousPull.list()).map((pattern) => ({ pattern, permission: 'pull' }))
      : await principalGrants(ctx, identity.subject);
  return (repository) => readableRepository(grants, repository);
}

async function principalGrants(ctx: RouteContext, id: string): Promise<Grant[]> {
  const principal = await ctx.auth.store.principals.get(id);
  return principal ? ctx.auth.principals.grantsFor(principal) : [];
}

/** Up to `n` visible repositories after `last`, reading the full list in batches. */
async function filteredPage(
  repositories: RepositoryIndex,
  visible: (repository: string) => boolean,
  n: number | undefined,
  last: string | undefined,
): Promise<string[]> {
  const want = n ?? maxFilteredCatalogPage;
  const out: string[] = [];
  let cursor = last;
  for (;;) {
    const batch = await repositories.list({ n: filteredCatalogBatch, last: cursor });
    for (const name of batch) {
      if (visible(name)) out.push(name);
      if (out.length >= want) return out;
    }
    if (batch.length < filteredCatalogBatch) return out;
    cursor = batch[batch.length - 1];
  }
}

/** Rows read per query while filtering, and the page size when the client gives no `n`. */
const filteredCatalogBatch = 500;
const maxFilteredCatalogPage = 1000;

export async function tags(ctx: RouteContext): Promise<void> {
  const repository = repositoryOf(ctx);
  const metadata = ctx.registry.context.metadata;
  const result = await paged(
    ctx.query,
    (n, last) => metadata.manifests.listTags(repository, { n, last }),
    (n, last) => urls.tags(repository, { n, last }),
  );
  if (!result) throw new RegistryError('NAME_UNKNOWN', undefined, { name: repository });
  sendJson(ctx.res, 200, { name: repository, tags: result.items }, result.link);
}

export async function referrers(ctx: RouteContext): Promise<void> {
  const repository = repositoryOf(ctx);
  const subject = digestParam(ctx);
  const artifactType = ctx.query.get('artifactType') ?? undefined;
  const body = await ctx.registry.manifests.referrers(repository, subject, artifactType);
  send(
    ctx.res,
    200,
    {
      'Content-Type': mediaTypes.ociIndex,
      ...(artifactType !== undefined ? { 'OCI-Filters-Applied': 'artifactType' } : {}),
    },
    body,
  );
}
