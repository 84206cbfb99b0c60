/** Listings: GET /v2/_catalog, /v2/<name>/tags/list, /v2/<name>/referrers/<digest>. */
import { mediaTypes } from '../../oci/media-types.js';
import type { Page } from '../../registry/reads.js';
import { page } from '../request.js';
import { send, sendJson, type Headers } from '../respond.js';
import type { RouteContext } from '../route.js';
import { urls } from '../../api/urls.js';
import { digestParam, repositoryOf } from './common.js';

/**
 * The catalog, narrowed to what the caller may see (the authorizer's rule: a token with
 * registry-wide read sees every repository, others what their grants can read; with auth off
 * everything is listed).
 */
export async function catalog(ctx: RouteContext): Promise<void> {
  const request = page(ctx.query);
  const visible = await ctx.auth.authorizer.catalogFilter(ctx.identity);
  const result = await ctx.registry.reads.catalog(request, visible);
  sendJson(
    ctx.res,
    200,
    { repositories: result.items },
    nextLink(result, (n, last) => urls.catalog({ n, last })),
  );
}

export async function tags(ctx: RouteContext): Promise<void> {
  const repository = repositoryOf(ctx);
  const request = page(ctx.query);
  const result = await ctx.registry.reads.tags(repository, request);
  sendJson(
    ctx.res,
    200,
    { name: repository, tags: result.items },
    nextLink(result, (n, last) => urls.tags(repository, { n, last })),
  );
}

export async function referrers(ctx: RouteContext): Promise<void> {
  const repository = repositoryOf(ctx);
  const subject = digestParam(ctx);
  const artifactType = ctx.query.get('artifactType') ?? undefined;
  const body = await ctx.registry.reads.referrers(repository, subject, artifactType);
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

/** `Link: <…>; rel="next"` when another page follows (with the page size actually used). */
function nextLink(result: Page, url: (n: number, last: string) => string): Headers {
  return result.next !== undefined ? { Link: `<${url(result.n, result.next)}>; rel="next"` } : {};
}
