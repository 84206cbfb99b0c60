/** Listings: GET /v2/_catalog, /v2/<name>/tags/list, /v2/<name>/referrers/<digest>. */
import { RegistryError } from '../../oci/errors.js';
import { mediaTypes } from '../../oci/media-types.js';
import { page } from '../request.js';
import { send, sendJson } from '../respond.js';
import type { RouteContext } from '../routes.js';
import { urls } from '../urls.js';
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

export async function catalog(ctx: RouteContext): Promise<void> {
  const metadata = ctx.registry.context.metadata;
  const result = await paged(
    ctx.query,
    (n, last) => metadata.repositories.list({ n, last }),
    (n, last) => urls.catalog({ n, last }),
  );
  sendJson(ctx.res, 200, { repositories: result?.items ?? [] }, result?.link ?? {});
}

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
