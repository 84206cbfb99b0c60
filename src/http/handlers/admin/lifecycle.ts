/**
 * /api/v1/lifecycle: retention rules, immutability rules and quotas (docs/lifecycle.md). Owner
 * endpoints; each parses the request, calls one `services.lifecycle` method and sends its view.
 *
 *   GET    /lifecycle/policies                       → {retention, immutability, quotas}
 *   GET    /lifecycle/{kind}/{name}                  → policy
 *   PUT    /lifecycle/{kind}/{name}   {rule}         → 201 (created) | 200 {policy, created}
 *   DELETE /lifecycle/{kind}/{name}                  → 204
 *   POST   /lifecycle/retention/preview {rule, repository?, after?, limit?}  → preview of an unsaved rule
 *   POST   /lifecycle/retention/{name}/preview {repository?, after?, limit?} → preview of a saved rule
 *   POST   /lifecycle/retention/{name}/run {dryRun?} → 202 {run}
 *   GET    /lifecycle/runs?policy=&limit=            → {runs}
 *   GET    /lifecycle/runs/{id}?after=&limit=        → {run, actions, next}
 *   GET    /lifecycle/usage?pattern=&n=&last=        → usage
 *   POST   /lifecycle/usage/refresh                  → 202 {run}
 */
import { z } from 'zod';
import { ApiError } from '../../../api/errors.js';
import { isPolicyKind, type PolicyKind } from '../../../api/lifecycle.js';
import { isRepositoryPattern } from '../../../shared/glob.js';
import { readBoundedBody } from '../../request.js';
import { send, sendJson } from '../../respond.js';
import type { RouteContext } from '../../route.js';
import { actingOwner, pathParam } from './common.js';

/** A rule may list thousands of tag filters (immutability exclusions are not capped at five), so bodies may be larger than other management bodies. */
const maxRuleBytes = 1024 * 1024;
const maxListed = 1000;

function kindOf(ctx: RouteContext): PolicyKind {
  const kind = ctx.params['kind'] ?? '';
  if (!isPolicyKind(kind)) throw new ApiError('INVALID_REQUEST', 'the kind is retention, immutability or quotas');
  return kind;
}

/** Rule: a body is at most 1 MiB of JSON (an object); empty reads as `{}`. Its fields are validated by the service. */
async function readObject(ctx: RouteContext): Promise<Record<string, unknown>> {
  const bytes = await readBoundedBody(
    ctx.req,
    maxRuleBytes,
    () => new ApiError('REQUEST_TOO_LARGE', `request body exceeds ${maxRuleBytes} bytes`, { limit: maxRuleBytes }),
  );
  const text = bytes.toString('utf8').trim();
  if (text.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError('INVALID_REQUEST', 'the request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ApiError('INVALID_REQUEST', 'the request body is a JSON object');
  return value as Record<string, unknown>;
}

/** A positive integer query parameter up to `max`, or `fallback` when absent. */
function limitParam(ctx: RouteContext, name: string, fallback: number, max: number): number {
  const raw = ctx.query.get(name);
  if (raw === null || raw === '') return fallback;
  const n = /^\d{1,7}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new ApiError('INVALID_REQUEST', `${name} must be an integer from 1 to ${max}`);
  return n;
}

export async function listPolicies(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  sendJson(ctx.res, 200, await ctx.services.lifecycle.listPolicies());
}

export async function getPolicy(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  sendJson(ctx.res, 200, await ctx.services.lifecycle.getPolicy(kindOf(ctx), pathParam(ctx, 'policy')));
}

export async function putPolicy(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const body = await readObject(ctx);
  const result = await ctx.services.lifecycle.putPolicy(actor, kindOf(ctx), pathParam(ctx, 'policy'), body);
  sendJson(ctx.res, result.created ? 201 : 200, result);
}

export async function deletePolicy(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  await ctx.services.lifecycle.deletePolicy(actor, kindOf(ctx), pathParam(ctx, 'policy'));
  send(ctx.res, 204, {});
}

const previewOptions = z
  .object({
    rule: z.record(z.string(), z.unknown()).optional(),
    repository: z.string().max(255).optional(),
    after: z.string().max(255).optional(),
    limit: z.number().int().min(1).max(100_000).optional(),
  })
  .strict();

/** POST …/retention/preview (the body's `rule`) or …/retention/{name}/preview (the saved rule). */
export async function preview(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  const parsed = previewOptions.safeParse(await readObject(ctx));
  if (!parsed.success) throw new ApiError('INVALID_REQUEST', parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  const name = ctx.params['policy'] === undefined ? undefined : pathParam(ctx, 'policy');
  const { rule, ...options } = parsed.data;
  if ((name === undefined) === (rule === undefined)) {
    throw new ApiError('INVALID_REQUEST', name === undefined ? 'give the rule to preview in `rule`' : 'a saved rule is previewed as saved: leave out `rule`');
  }
  sendJson(ctx.res, 200, await ctx.services.lifecycle.preview({ name, rule, ...options }));
}

const runOptions = z.object({ dryRun: z.boolean().optional() }).strict();

export async function run(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const parsed = runOptions.safeParse(await readObject(ctx));
  if (!parsed.success) throw new ApiError('INVALID_REQUEST', 'the body is {dryRun?: boolean}');
  sendJson(ctx.res, 202, { run: await ctx.services.lifecycle.requestRun(actor, pathParam(ctx, 'policy'), parsed.data) });
}

export async function listRuns(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  const policy = ctx.query.get('policy') || undefined;
  sendJson(ctx.res, 200, { runs: await ctx.services.lifecycle.listRuns({ policy, limit: limitParam(ctx, 'limit', 50, maxListed) }) });
}

export async function getRun(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  const rawAfter = ctx.query.get('after');
  const after = rawAfter === null || rawAfter === '' ? undefined : limitParam(ctx, 'after', 0, Number.MAX_SAFE_INTEGER);
  sendJson(ctx.res, 200, await ctx.services.lifecycle.getRun(pathParam(ctx, 'id'), { after, limit: limitParam(ctx, 'limit', maxListed, 10_000) }));
}

export async function usage(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  const pattern = ctx.query.get('pattern') || '**';
  if (!isRepositoryPattern(pattern)) throw new ApiError('INVALID_REQUEST', 'pattern: not a repository glob (* within a component, ** across)');
  const last = ctx.query.get('last') || undefined;
  sendJson(ctx.res, 200, await ctx.services.lifecycle.usage(pattern, { after: last, limit: limitParam(ctx, 'n', 100, maxListed) }));
}

export async function refreshUsage(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  sendJson(ctx.res, 202, { run: await ctx.services.lifecycle.requestUsageRefresh(actor) });
}
