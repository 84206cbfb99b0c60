/**
 * Browsing through `/api/v1` (docs/console.md, the OpenAPI document): the permission-filtered
 * catalog with a name search, a repository's tags with sizes and pushes, an image taken apart, and
 * (owners) who can reach a repository; plus the federated-credential token test. Each handler
 * parses, calls one service method and sends the view.
 */
import { type z } from 'zod';
import { ApiError } from '../../../api/errors.js';
import { tokenTestInput } from '../../../api/federation-test.js';
import { repositoryListQuery, tagListQuery } from '../../../api/repositories.js';
import { specificIssue } from '../../../api/validation.js';
import type { Access } from '../../../auth/access.js';
import { sendJson } from '../../respond.js';
import type { RouteContext } from '../../route.js';
import { actingOwner, readJson } from '../admin/common.js';
import { digestParam, repositoryOf } from '../common.js';

/** The query parameters as the schema reads them; 400 INVALID_REQUEST naming the bad one. */
function parseQuery<S extends z.ZodTypeAny>(ctx: RouteContext, schema: S): z.output<S> {
  const parsed = schema.safeParse(Object.fromEntries(ctx.query));
  if (!parsed.success) {
    const issue = specificIssue(parsed.error.issues[0] as z.ZodIssue);
    throw new ApiError('INVALID_REQUEST', `${issue.path.join('.') || 'query'}: ${issue.message}`);
  }
  return parsed.data as z.output<S>;
}

/** GET /api/v1/repositories?q=&n=&last= → {repositories, next}: what the caller may pull. */
export async function repositories(ctx: RouteContext): Promise<void> {
  const query = parseQuery(ctx, repositoryListQuery);
  const visible = await ctx.auth.authorizer.catalogFilter(ctx.identity);
  sendJson(ctx.res, 200, await ctx.services.repositories.list(visible, { n: query.n ?? 100, last: query.last, q: query.q }));
}

/** GET /api/v1/repositories/{name}/tags?n=&last= → {repository, tags, next, allowed}. */
export async function tags(ctx: RouteContext): Promise<void> {
  const repository = repositoryOf(ctx);
  const query = parseQuery(ctx, tagListQuery);
  const may = (actions: Access['actions']) => {
    const identity = ctx.identity;
    if (!ctx.auth.enabled) return true;
    return identity !== undefined && ctx.auth.authorizer.check(identity, [{ type: 'repository', name: repository, actions }]).kind === 'allowed';
  };
  const allowed = { push: may(['push']), deleteTag: may(['metadata_write']), deleteManifest: may(['delete']) };
  sendJson(ctx.res, 200, await ctx.services.repositories.tags(repository, { n: query.n ?? 50, last: query.last }, allowed));
}

/** GET /api/v1/repositories/{name}/images/{digest} → the image taken apart, with its referrers tree. */
export async function image(ctx: RouteContext): Promise<void> {
  sendJson(ctx.res, 200, await ctx.services.repositories.image(repositoryOf(ctx), digestParam(ctx)));
}

/** GET /api/v1/repositories/{name}/access → who may pull, push or delete here (owners). */
export async function access(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  sendJson(ctx.res, 200, await ctx.auth.admin.reach.of(repositoryOf(ctx)));
}

/** POST /api/v1/federated-credentials/test {token | claims, clientId?} → which credential accepts it, or which check fails. */
export async function testToken(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  const body = await readJson(ctx, tokenTestInput);
  sendJson(ctx.res, 200, await ctx.auth.admin.tokenTest.test(body), { 'Cache-Control': 'no-store' });
}
