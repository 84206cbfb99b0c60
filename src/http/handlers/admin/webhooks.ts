/**
 * /api/v1/webhooks: subscriptions to repository changes, their delivery history, pings and
 * redeliveries (docs/webhooks.md). Owners only, like all of /api/v1. Every change is audited
 * without its secrets (the signing secret, header values and the URL's query values).
 */
import { z } from 'zod';
import { filterEntryProblem } from '../../../events/filter.js';
import { eventActions } from '../../../events/payload.js';
import type { DeliveryDetailView } from '../../../api/webhooks.js';
import { deliveryView, redactUrl, webhookView, attemptView } from '../../../events/views.js';
import type { WebhookRecord } from '../../../metadata/event-store.js';
import { RegistryError } from '../../../oci/errors.js';
import { send, sendJson } from '../../respond.js';
import type { RouteContext } from '../../routes.js';
import { actorOf, requestInfo } from '../manifests.js';
import { actingOwner, audit, pathParam, readJson } from './common.js';

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
  .min(1, 'list at least one of push, delete, ping')
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

const createBody = z
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

const updateBody = z
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

const rotateBody = z
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
  const now = ctx.registry.context.clock.now();
  const records = await ctx.services.webhooks.store.webhooks.list();
  sendJson(ctx.res, 200, { webhooks: records.map((r) => webhookView(r, now)) });
}

/** POST /api/v1/webhooks {name, url, events?, filters?, headers?, secret?, format?, enabled?} → 201 {webhook, secret}. */
export async function create(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const body = await readJson(ctx, createBody);
  const { name, secret: given, ...settings } = body;
  const { record, secret: issued } = await ctx.services.webhooks.create(name, settings, given);
  await audit(ctx, actor, 'admin.webhook.created', { webhook: described(record), secretGiven: given !== undefined });
  sendJson(ctx.res, 201, { webhook: webhookView(record, ctx.registry.context.clock.now()), secret: issued });
}

/** GET /api/v1/webhooks/{idOrName} → view. */
export async function get(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  sendJson(ctx.res, 200, webhookView(await target(ctx), ctx.registry.context.clock.now()));
}

/** PATCH /api/v1/webhooks/{idOrName} {name?, url?, events?, filters?, headers?, format?, enabled?} → view. `headers` replaces all headers. */
export async function update(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const record = await target(ctx);
  const body = await readJson(ctx, updateBody);
  const next = await ctx.services.webhooks.update(record, body);
  await audit(ctx, actor, 'admin.webhook.updated', { webhook: described(next), changed: Object.keys(body) });
  sendJson(ctx.res, 200, webhookView(next, ctx.registry.context.clock.now()));
}

/** DELETE /api/v1/webhooks/{idOrName} → 204; its deliveries and their history go with it. */
export async function remove(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const record = await target(ctx);
  await ctx.services.webhooks.store.webhooks.delete(record.id);
  await audit(ctx, actor, 'admin.webhook.deleted', { webhook: { id: record.id, name: record.name } });
  send(ctx.res, 204, {});
}

/** POST /api/v1/webhooks/{idOrName}/secret {secret?, overlapMs?} → {webhook, secret}: the new secret, shown once. */
export async function rotateSecret(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const record = await target(ctx);
  const body = await readJson(ctx, rotateBody);
  const rotated = await ctx.services.webhooks.rotateSecret(record, body.secret, body.overlapMs);
  await audit(ctx, actor, 'admin.webhook.secret_rotated', { webhook: { id: record.id, name: record.name }, overlapMs: body.overlapMs ?? null });
  sendJson(ctx.res, 200, { webhook: webhookView(rotated.record, ctx.registry.context.clock.now()), secret: rotated.secret });
}

/** POST /api/v1/webhooks/{idOrName}/ping → 202 {delivery}: a `ping` event, delivered like any other. */
export async function ping(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const record = await target(ctx);
  await readJson(ctx, z.object({}).strict());
  const delivery = await ctx.services.webhooks.ping(record, actorOf(ctx), requestInfo(ctx));
  await audit(ctx, actor, 'admin.webhook.pinged', { webhook: { id: record.id, name: record.name }, event: delivery.eventId });
  sendJson(ctx.res, 202, { delivery: deliveryView(delivery) });
}

const statuses = ['pending', 'delivered', 'failed'] as const;
const defaultDeliveryLimit = 50;
const maxDeliveryLimit = 500;

/** GET /api/v1/webhooks/{idOrName}/deliveries?status=&limit= → {deliveries}, newest first, each with its last attempt. */
export async function deliveries(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  const record = await target(ctx);
  const status = ctx.query.get('status') ?? undefined;
  if (status !== undefined && !(statuses as readonly string[]).includes(status)) {
    throw new RegistryError('INVALID_REQUEST', `status must be one of ${statuses.join(', ')}`);
  }
  const limitText = ctx.query.get('limit');
  const limit = limitText === null ? defaultDeliveryLimit : Number(limitText);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxDeliveryLimit) {
    throw new RegistryError('INVALID_REQUEST', `limit must be an integer from 1 to ${maxDeliveryLimit}`);
  }
  const found = await ctx.services.webhooks.store.deliveries.list(record.id, { status: status as (typeof statuses)[number] | undefined, limit });
  sendJson(ctx.res, 200, { deliveries: found.map(deliveryView) });
}

/** GET /api/v1/webhooks/{idOrName}/deliveries/{id} → the delivery with every attempt and the payload. */
export async function delivery(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  const record = await target(ctx);
  const found = await ctx.services.webhooks.store.deliveries.get(record.id, deliveryParam(ctx));
  if (!found) throw unknownDelivery(ctx, record);
  const [attempts, payload] = await Promise.all([
    ctx.services.webhooks.store.deliveries.attempts(found.id),
    ctx.services.webhooks.store.deliveries.payload(found.eventId),
  ]);
  const view: DeliveryDetailView = {
    ...deliveryView(found),
    attemptHistory: attempts.map(attemptView),
    payload: payload === undefined ? null : (JSON.parse(payload) as unknown),
  };
  sendJson(ctx.res, 200, view);
}

/** POST /api/v1/webhooks/{idOrName}/deliveries/{id}/redeliver → 202 {delivery}: a new cycle of attempts, same event id. */
export async function redeliver(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const record = await target(ctx);
  await readJson(ctx, z.object({}).strict());
  const found = await ctx.services.webhooks.redeliver(record, deliveryParam(ctx));
  if (!found) throw unknownDelivery(ctx, record);
  await audit(ctx, actor, 'admin.webhook.redelivered', { webhook: { id: record.id, name: record.name }, delivery: found.id, event: found.eventId });
  sendJson(ctx.res, 202, { delivery: deliveryView(found) });
}

async function target(ctx: RouteContext): Promise<WebhookRecord> {
  const ref = pathParam(ctx, 'webhook');
  const record = await ctx.services.webhooks.find(ref);
  if (!record) throw new RegistryError('WEBHOOK_UNKNOWN', `no webhook with id or name ${JSON.stringify(ref.slice(0, 128))}`);
  return record;
}

function deliveryParam(ctx: RouteContext): string {
  return pathParam(ctx, 'delivery');
}

function unknownDelivery(ctx: RouteContext, record: WebhookRecord): RegistryError {
  return new RegistryError('DELIVERY_UNKNOWN', `webhook ${record.name} has no delivery ${JSON.stringify(deliveryParam(ctx).slice(0, 64))}`);
}

/** A subscription for the audit log: no secret, no header values, the URL redacted. */
function described(record: WebhookRecord): Record<string, unknown> {
  return {
    id: record.id,
    name: record.name,
    url: redactUrl(record.url),
    events: record.events,
    filters: record.filters,
    headers: Object.keys(record.headers),
    format: record.format,
    enabled: record.enabled,
  };
}
