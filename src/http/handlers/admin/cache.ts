/**
 * /api/v1/cache/rules: pull-through cache rules (docs/cache.md). Owner endpoints: CRUD on the
 * rules managed through the API (rules from the configuration file are listed, read-only),
 * `POST …/refresh` (re-check a tag now, or mark a repository's or the rule's tags for a check on
 * their next pull) and `GET …/entries` (the cached tags and their freshness).
 */
import { cacheRefreshInput, cacheRuleInput, cacheRuleUpdate } from '../../../api/cache.js';
import { ApiError } from '../../../api/errors.js';
import { isValidRepositoryName } from '../../../oci/names.js';
import { send, sendJson } from '../../respond.js';
import type { RouteContext } from '../../route.js';
import { actingOwner, pathParam, readJson } from './common.js';

/** GET /cache/rules → {rules: [view]}: configuration rules first, then API rules, each by name. */
export async function list(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  sendJson(ctx.res, 200, { rules: await ctx.services.cache.listRules() });
}

/** POST /cache/rules → 201 view. */
export async function create(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const body = await readJson(ctx, cacheRuleInput);
  sendJson(ctx.res, 201, await ctx.services.cache.createRule(actor, body));
}

/** GET /cache/rules/{rule} → view. */
export async function get(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  sendJson(ctx.res, 200, await ctx.services.cache.getRule(pathParam(ctx, 'rule')));
}

/** PATCH /cache/rules/{rule} → view; `limits` merges, lists are replaced, null resets a default. */
export async function update(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const name = pathParam(ctx, 'rule');
  const body = await readJson(ctx, cacheRuleUpdate);
  sendJson(ctx.res, 200, await ctx.services.cache.updateRule(actor, name, body));
}

/** DELETE /cache/rules/{rule} → 204. What it cached stays, as ordinary repositories. */
export async function remove(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  await ctx.services.cache.deleteRule(actor, pathParam(ctx, 'rule'));
  send(ctx.res, 204, {});
}

/** POST /cache/rules/{rule}/refresh {repository?, tag?} → 200 {rule, repository, tag, expired, checked}. */
export async function refresh(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const body = await readJson(ctx, cacheRefreshInput);
  sendJson(ctx.res, 200, await ctx.services.cache.refresh(actor, pathParam(ctx, 'rule'), body));
}

const defaultEntries = 1000;
const maxEntries = 10_000;

/** GET /cache/rules/{rule}/entries?repository=&limit= → {rule, tags}. */
export async function entries(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  const repository = ctx.query.get('repository') || undefined;
  if (repository !== undefined && !isValidRepositoryName(repository)) throw new ApiError('INVALID_REQUEST', 'repository: not a valid repository name');
  const rawLimit = ctx.query.get('limit');
  const limit = rawLimit ? Number(rawLimit) : defaultEntries;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxEntries)
    throw new ApiError('INVALID_REQUEST', `limit must be an integer from 1 to ${maxEntries}`);
  sendJson(ctx.res, 200, await ctx.services.cache.entries(pathParam(ctx, 'rule'), { repository, limit }));
}
