/**
 * /api/v1/sync/rules: selective sync from another registry (docs/sync.md).
 *
 * Owner endpoints: CRUD on rules, `POST …/run` (on demand) and `GET …/status` (per image). The
 * receiver, `POST …/{rule}/webhook`, is a `public` route: senders (another Berth, ACR, CNCF
 * Distribution) authenticate with the rule's secret, by `Berth-Signature` HMAC or as a bearer
 * token, and the answers are decided in `SyncService.receive`.
 *
 * Secrets: a webhook secret Berth generates is in the one response that created (or rotated) it;
 * rule views never carry secrets or inline passwords, only where a password comes from.
 */
import { z } from 'zod';
import { ApiError } from '../../../api/errors.js';
import { isValidRepositoryName, isValidTag } from '../../../oci/names.js';
import { ruleInput, ruleUpdate } from '../../../sync/rule.js';
import { baseUrl } from '../../authorize.js';
import { readBoundedBody } from '../../request.js';
import { send, sendJson } from '../../respond.js';
import type { RouteContext } from '../../route.js';
import { actingOwner, pathParam, readJson } from './common.js';

/** Where this registry is reached: rule views name the webhook receiver's URL under it. */
function base(ctx: RouteContext): string {
  return baseUrl(ctx.req, ctx.auth);
}

// ---------------------------------------------------------------------------------------------
// Owner endpoints

/** GET /sync/rules → {rules: [view]}, sorted by name. */
export async function list(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  sendJson(ctx.res, 200, { rules: await ctx.services.sync.listRules(base(ctx)) });
}

/** POST /sync/rules → 201 {rule, webhook: {url, secret} | null} (the secret only when Berth generated it). */
export async function create(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const body = await readJson(ctx, ruleInput);
  sendJson(ctx.res, 201, await ctx.services.sync.createRule(actor, body, base(ctx)));
}

/** GET /sync/rules/{rule} → view. */
export async function get(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  sendJson(ctx.res, 200, await ctx.services.sync.getRule(pathParam(ctx, 'rule'), base(ctx)));
}

/** PATCH /sync/rules/{rule} → 200 {rule, webhook: {url, secret} | null}; objects merge one level deep. */
export async function update(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const name = pathParam(ctx, 'rule');
  const body = await readJson(ctx, ruleUpdate);
  sendJson(ctx.res, 200, await ctx.services.sync.updateRule(actor, name, body, base(ctx)));
}

/** DELETE /sync/rules/{rule} → 204; its queue and status go with it. Images already copied stay. */
export async function remove(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  await ctx.services.sync.deleteRule(actor, pathParam(ctx, 'rule'));
  send(ctx.res, 204, {});
}

/** Request schema (the OpenAPI document is generated from it). */
export const runInput = z
  .object({
    repository: z.string().refine(isValidRepositoryName, 'not a valid repository name').optional(),
    tag: z.string().refine(isValidTag, 'not a valid tag').optional(),
  })
  .strict()
  .refine((b) => (b.repository === undefined) === (b.tag === undefined), 'give repository and tag together (one image), or neither (the whole rule)');

/** POST /sync/rules/{rule}/run {repository?, tag?} → 202 {rule, requestedAt}: queued, followed through the status. */
export async function run(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const body = await readJson(ctx, runInput);
  const only = body.repository !== undefined && body.tag !== undefined ? { repository: body.repository, tag: body.tag } : undefined;
  sendJson(ctx.res, 202, await ctx.services.sync.requestRun(actor, pathParam(ctx, 'rule'), only, base(ctx)));
}

const defaultImages = 1000;
const maxImages = 10_000;

/** GET /sync/rules/{rule}/status?repository=&limit= → {rule, queue, images}. */
export async function status(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  const repository = ctx.query.get('repository') || undefined;
  if (repository !== undefined && !isValidRepositoryName(repository)) throw new ApiError('INVALID_REQUEST', 'repository: not a valid repository name');
  const rawLimit = ctx.query.get('limit');
  const limit = rawLimit ? Number(rawLimit) : defaultImages;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxImages) throw new ApiError('INVALID_REQUEST', `limit must be an integer from 1 to ${maxImages}`);
  sendJson(ctx.res, 200, await ctx.services.sync.status(pathParam(ctx, 'rule'), { repository, limit }, base(ctx)));
}

// ---------------------------------------------------------------------------------------------
// The receiver (public route)

/**
 * POST /sync/rules/{rule}/webhook: 202 {received, queued, duplicates, ignored, rejected, events}
 * at once; 401 for an unknown rule or a bad signature/secret (alike), 400 for a malformed body,
 * 403 for a one-event delivery outside the rule's repositories, 413 for an oversized body.
 */
export async function webhook(ctx: RouteContext): Promise<void> {
  const sync = ctx.services.sync;
  const limit = sync.settings.receiverMaxBodyBytes;
  const body = await readBoundedBody(ctx.req, limit, () => new ApiError('REQUEST_TOO_LARGE', `a delivery is at most ${limit} bytes`, { limit }));
  const result = await sync.receive(ctx.params['rule'] ?? '', ctx.req.headers, body);
  sendJson(ctx.res, 202, result);
}
