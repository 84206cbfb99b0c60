/**
 * Registry-wide policy and operations: the anonymous-pull patterns, signing-key rotation and the
 * audit log (`auth/admin/settings.ts`, `auth/admin/audit.ts`).
 */
import { z } from 'zod';
import { anonymousPullBody, auditQuerySchema } from '../../../api/audit.js';
import { sendJson } from '../../respond.js';
import type { RouteContext } from '../../route.js';
import { actingOwner, pathParam, readJson, readQuery } from './common.js';

/** GET /api/v1/settings/anonymous-pull → {patterns}: repositories anyone may pull without a token. */
export async function getAnonymousPull(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  sendJson(ctx.res, 200, await ctx.auth.admin.settings.anonymousPull());
}

/**
 * PUT /api/v1/settings/anonymous-pull {patterns} → {patterns}. Replaces the list; `[]` turns
 * anonymous pull off. Registry replicas re-read the list within a few seconds.
 */
export async function putAnonymousPull(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const body = await readJson(ctx, anonymousPullBody);
  sendJson(ctx.res, 200, await ctx.auth.admin.settings.replaceAnonymousPull(actor, body.patterns));
}

/** POST /api/v1/keys/rotate → {kid}. Old keys stay published and accepted until their tokens expire. */
export async function rotateKeys(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  await readJson(ctx, z.object({}).strict());
  sendJson(ctx.res, 200, await ctx.auth.admin.settings.rotateKeys(actor));
}

/** GET /api/v1/keys → {keys}: every signing key with its state (active, retired, revoked), newest first. */
export async function listKeys(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  sendJson(ctx.res, 200, { keys: await ctx.auth.admin.settings.listKeys() });
}

/**
 * POST /api/v1/keys/{kid}/revoke → {kid, signingKid}. Tokens the key signed are refused at once by
 * this replica and by the others within `auth.keyRevocationCheckMs`.
 */
export async function revokeKey(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  await readJson(ctx, z.object({}).strict());
  sendJson(ctx.res, 200, await ctx.auth.admin.settings.revokeKey(actor, pathParam(ctx, 'kid')));
}

/**
 * GET /api/v1/audit?limit=&principal=&repository=&event=&since=&until=&before= → {entries, next},
 * newest first (`auditQuerySchema`). `principal` is an id or a name; the id of a deleted principal
 * still finds its history. `next` is the `before` of the next page, null on the last.
 */
export async function listAudit(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  sendJson(ctx.res, 200, await ctx.auth.admin.audit.page(readQuery(ctx, auditQuerySchema)));
}
