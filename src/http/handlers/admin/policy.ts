/**
 * Registry-wide policy and operations: the anonymous-pull patterns, signing-key rotation and the
 * audit log.
 */
import { z } from 'zod';
import { isValidPattern } from '../../../auth/permissions.js';
import { RegistryError } from '../../../oci/errors.js';
import { sendJson } from '../../respond.js';
import type { RouteContext } from '../../routes.js';
import { actingOwner, audit, readJson } from './common.js';
import { auditEntryView } from './views.js';

/** GET /api/v1/settings/anonymous-pull → {patterns}: repositories anyone may pull without a token. */
export async function getAnonymousPull(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  sendJson(ctx.res, 200, { patterns: await ctx.auth.store.anonymousPull.list() });
}

const anonymousPullBody = z
  .object({
    patterns: z.array(z.string().refine(isValidPattern, (p) => ({ message: `invalid repository pattern ${JSON.stringify(p.slice(0, 100))}` }))).max(1000),
  })
  .strict();

/**
 * PUT /api/v1/settings/anonymous-pull {patterns} → {patterns}. Replaces the list; `[]` turns
 * anonymous pull off. Registry replicas re-read the list within a few seconds (authorize.ts caches it).
 */
export async function putAnonymousPull(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  const body = await readJson(ctx, anonymousPullBody);
  const previous = await ctx.auth.store.anonymousPull.list();
  await ctx.auth.store.anonymousPull.replace(body.patterns, ctx.registry.context.clock.now());
  await audit(ctx, actor, 'admin.anonymous_pull.replaced', { previous, patterns: body.patterns });
  sendJson(ctx.res, 200, { patterns: await ctx.auth.store.anonymousPull.list() });
}

/**
 * POST /api/v1/keys/rotate → {kid}. New tokens are signed with a new key; the old keys stay
 * published and accepted until every token they signed has expired.
 */
export async function rotateKeys(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  await readJson(ctx, z.object({}).strict());
  const kid = await ctx.auth.keys.rotate();
  await audit(ctx, actor, 'admin.keys.rotated', { kid });
  sendJson(ctx.res, 200, { kid });
}

const defaultAuditLimit = 100;
const maxAuditLimit = 1000;

/**
 * GET /api/v1/audit?limit=&principal= → {entries}, newest first. `principal` is an id or a name;
 * the id of a deleted principal still finds its history.
 */
export async function listAudit(ctx: RouteContext): Promise<void> {
  actingOwner(ctx);
  const rawLimit = ctx.query.get('limit');
  const limit = rawLimit === null || rawLimit === '' ? defaultAuditLimit : Number(rawLimit);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxAuditLimit) {
    throw new RegistryError('INVALID_REQUEST', `limit must be an integer from 1 to ${maxAuditLimit}`, { limit: rawLimit?.slice(0, 20) });
  }
  const ref = ctx.query.get('principal');
  let principalId: string | undefined;
  if (ref !== null && ref !== '') {
    const found = (await ctx.auth.store.principals.get(ref)) ?? (await ctx.auth.store.principals.findByName(ref));
    if (found) principalId = found.id;
    else if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(ref)) principalId = ref;
    else throw new RegistryError('PRINCIPAL_UNKNOWN', `no principal with id or name ${JSON.stringify(ref.slice(0, 128))}`);
  }
  const entries = await ctx.auth.store.audit.list({ limit, principalId });
  sendJson(ctx.res, 200, { entries: entries.map(auditEntryView) });
}
