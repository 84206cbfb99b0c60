/**
 * /api/v1/webhooks: subscriptions to repository changes, their delivery history, pings and
 * redeliveries (docs/webhooks.md). Owners only, like all of /api/v1. The rules and the audit
 * entries (without secrets) are the service's (`events/webhooks.ts`); these handlers parse and answer.
 */
import { z } from 'zod';
import { deliveryStatuses, type DeliveryStatus } from '../../../api/webhooks.js';
import { filterEntryProblem } from '../../../events/filter.js';
import { eventActions } from '../../../events/payload.js';
import { ApiError } from '../../../api/errors.js';
import { send, sendJson } from '../../respond.js';
import type { RouteContext } from '../../route.js';
import { actorOf as pusherOf, requestInfo } from '../manifests.js';
import { actingOwner, pathParam, readJson } from './common.js';

const maxHeaders = 20;
/** Headers Berth sets itself, or that would break the request framing: not settable. */
const reservedHeaders = new Set([
  'host',
  'content-type',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-authorization',
]);

const webhookName = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/, 'a webhook name is 1-64 letters, digits, ., _ or -, starting with a letter or digit');

const targetUrl = z
  .string()
  .max(2048, 'a URL is at most 2048 characters')
  .refine((value) => {
    try {
      const url = new URL(value);
      return url.protocol === 'http:' || url.protocol === 'https:';
    } catch {
      return false;
    }
  }, 'expected an http or https URL');

const events = z
  .array(z.enum(eventActions))
  .min(1, 'list at least one of push, delete, ping, quota_warning, quota_exceeded')
  .transform((list) => [...new Set(list)]);

const filters = z
  .array(
    z.string().superRefine((entry, ctx) => {
      const problem = filterEntryProblem(entry);
      if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
    }),
  )
  .max(100)
  .transform((list) => [...new Set(list)]);

const headers = z
  .record(
    z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/, 'a header name is 1-64 token characters'),
    z
      .string()
      .max(4096)
      .regex(/^[\t\x20-\x7e]*$/, 'a header value is printable ASCII on one line'),
  )
  .superRefine((map, ctx) => {
    const names = Object.keys(map);
    if (names.length > maxHeaders) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `at most ${maxHeaders} headers` });
    const lower = names.map((n) => n.toLowerCase());
    for (const name of lower) {
      if (reservedHeaders.has(name) || name.startsWith('berth-'))
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: `the ${name} header is set by Berth and cannot be configured` });
    }
    if (new Set(lower).size !== lower.length) ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'a header is given twice (names are case-insensitive)' });
  });

const secret = z
  .string()
  .min(16, 'a secret is at least 16 characters')
  .max(256)
  .regex(/^[\x21-\x7e]+$/, 'a secret is printable ASCII without spaces');

const format = z.enum(['acr', 'cloudevents']);

/** Request schema (the OpenAPI document is generated from it). */
export const createBody = z
  .object({
    name: webhookName,
    url: targetUrl,
    events: events.default(['push', 'delete']),
    filters: filters.default([]),
    headers: headers.default({}),
    secret: secret.optional(),
    format: format.default('acr'),
    enabled: z.boolean().default(true),
  })
  .strict();

/** Request schema (the OpenAPI document is generated from it). */
export const updateBody = z
  .object({
    name: webhookName.optional(),
    url: targetUrl.optional(),
    events: events.optional(),
    filters: filters.optional(),
    headers: headers.optional(),
    format: format.optional(),
    enabled: z.boolean().optional(),
  })
  .strict();

/** Request schema (the OpenAPI document is generated from it). */
export const rotateBody = z
  .object({
    secret: secret.optional(),
    /** How long the old secret keeps signing too (default 24 h; 0 stops it at once; at most 7 days). */
    overlapMs: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 3600 * 1000)
      .optional(),
  })
  .strict();

/** GET /api/v1/webhooks → {webhooks: [view]}, sorted by name. */
export async function list(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  sendJson(ctx.res, 200, { webhooks: await ctx.services.webhooks.list() });
}

/** POST /api/v1/webhooks {name, url, events?, filters?, headers?, secret?, format?, enabled?} → 201 {webhook, secret}. */
export async function create(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const { name, secret: given, ...settings } = await readJson(ctx, createBody);
  sendJson(ctx.res, 201, await ctx.services.webhooks.create(actor, name, settings, given));
}

/** GET /api/v1/webhooks/{idOrName} → view. */
export async function get(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  sendJson(ctx.res, 200, ctx.services.webhooks.view(await target(ctx)));
}

/** PATCH /api/v1/webhooks/{idOrName} {name?, url?, events?, filters?, headers?, format?, enabled?} → view. `headers` replaces all headers. */
export async function update(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const record = await target(ctx);
  const body = await readJson(ctx, updateBody);
  sendJson(ctx.res, 200, await ctx.services.webhooks.update(actor, record, body));
}

/** DELETE /api/v1/webhooks/{idOrName} → 204; its deliveries and their history go with it. */
export async function remove(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  await ctx.services.webhooks.remove(actor, await target(ctx));
  send(ctx.res, 204, {});
}

/** POST /api/v1/webhooks/{idOrName}/secret {secret?, overlapMs?} → {webhook, secret}: the new secret, shown once. */
export async function rotateSecret(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const record = await target(ctx);
  const body = await readJson(ctx, rotateBody);
  sendJson(ctx.res, 200, await ctx.services.webhooks.rotateSecret(actor, record, body.secret, body.overlapMs));
}

/** POST /api/v1/webhooks/{idOrName}/ping → 202 {delivery}: a `ping` event, delivered like any other. */
export async function ping(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const record = await target(ctx);
  await readJson(ctx, z.object({}).strict());
  sendJson(ctx.res, 202, { delivery: await ctx.services.webhooks.ping(actor, record, pusherOf(ctx), requestInfo(ctx)) });
}

const defaultDeliveryLimit = 50;
const maxDeliveryLimit = 500;

/** GET /api/v1/webhooks/{idOrName}/deliveries?status=&limit= → {deliveries}, newest first, each with its last attempt. */
export async function deliveries(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  const record = await target(ctx);
  const status = ctx.query.get('status') ?? undefined;
  if (status !== undefined && !deliveryStatuses.includes(status as DeliveryStatus)) {
    throw new ApiError('INVALID_REQUEST', `status must be one of ${deliveryStatuses.join(', ')}`);
  }
  const limitText = ctx.query.get('limit');
  const limit = limitText === null ? defaultDeliveryLimit : Number(limitText);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxDeliveryLimit) {
    throw new ApiError('INVALID_REQUEST', `limit must be an integer from 1 to ${maxDeliveryLimit}`);
  }
  sendJson(ctx.res, 200, { deliveries: await ctx.services.webhooks.deliveries(record, { status: status as DeliveryStatus | undefined, limit }) });
}

/** GET /api/v1/webhooks/{idOrName}/deliveries/{id} → the delivery with every attempt and the payload. */
export async function delivery(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  const record = await target(ctx);
  sendJson(ctx.res, 200, await ctx.services.webhooks.delivery(record, pathParam(ctx, 'delivery')));
}

/** POST /api/v1/webhooks/{idOrName}/deliveries/{id}/redeliver → 202 {delivery}: a new cycle of attempts, same event id. */
export async function redeliver(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const record = await target(ctx);
  await readJson(ctx, z.object({}).strict());
  sendJson(ctx.res, 202, { delivery: await ctx.services.webhooks.redeliver(actor, record, pathParam(ctx, 'delivery')) });
}

function target(ctx: RouteContext) {
  return ctx.services.webhooks.resolve(pathParam(ctx, 'webhook'));
}
