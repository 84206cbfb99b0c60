/**
 * Server-side import (ACR `importImage`): `POST /api/v1/import` queues a job and answers 202 with
 * it; `GET /api/v1/imports[?status=&limit=]`, `GET /api/v1/imports/{id}` show jobs with progress,
 * result and error; `POST /api/v1/imports/{id}/retry` runs a failed job again (it resumes: blobs
 * already copied are skipped). See docs/import.md.
 *
 * Authorization (the routes use the `token` guard: any valid access token; the rules are here):
 * - create and retry: the token carries `registry:admin:*` (an owner's), or `pull,push` on every
 *   target repository (`berth import` asks for exactly those scopes);
 * - read: owners see every job, anyone else only the jobs they created.
 * With auth off (every repository is public and writable anyway) anyone may import.
 *
 * Source credentials in a request are used for that job only: they are stored while the job may
 * still run or be retried (see `import.credentialRetentionMs`) and never returned.
 */
import { z } from 'zod';
import { urls } from '../../../api/urls.js';
import type { Access } from '../../../auth/access.js';
import { importStatuses, type ImportStatus } from '../../../api/imports.js';
import type { AccessClaims } from '../../../auth/tokens.js';
import { RegistryError } from '../../../oci/errors.js';
import { ApiError } from '../../../api/errors.js';
import type { Requester } from '../../../replication/imports.js';
import { denied } from '../../authorize.js';
import { sendJson } from '../../respond.js';
import type { RouteContext } from '../../route.js';
import { actorOf, pathParam, readJson } from './common.js';

const credentials = z.union([
  z
    .object({
      username: z.string().min(1).max(256),
      password: z
        .string()
        .min(1)
        .max(16 * 1024),
    })
    .strict(),
  // Federation into another Berth: a service principal's client id and an OIDC token it trusts.
  z
    .object({
      identity: z.string().min(1).max(256),
      token: z
        .string()
        .min(1)
        .max(16 * 1024),
    })
    .strict(),
]);

/** Request schema (the OpenAPI document is generated from it). */
export const importBody = z
  .object({
    source: z
      .object({
        registryUri: z.string().max(300).optional(),
        sourceImage: z.string().min(1).max(1024),
        credentials: credentials.optional(),
      })
      .strict(),
    targetTags: z.array(z.string().min(1).max(400)).max(50).default([]),
    untaggedTargetRepositories: z.array(z.string().min(1).max(300)).max(50).default([]),
    mode: z.enum(['NoForce', 'Force']).default('NoForce'),
    includeReferrers: z.boolean().default(false),
  })
  .strict();

/** Request schema (the OpenAPI document is generated from it). */
export const retryBody = z.object({ credentials: credentials.optional() }).strict();

const defaultLimit = 100;
const maxLimit = 1000;

/** POST /api/v1/import {source, targetTags, untaggedTargetRepositories, mode, includeReferrers} → 202 {job}. */
export async function create(ctx: RouteContext): Promise<void> {
  const { requester, identity } = caller(ctx);
  const body = await readJson(ctx, importBody);
  const imports = ctx.services.imports;
  const spec = imports.plan({
    source: { registryUri: body.source.registryUri, sourceImage: body.source.sourceImage },
    targetTags: body.targetTags,
    untaggedTargetRepositories: body.untaggedTargetRepositories,
    mode: body.mode,
    includeReferrers: body.includeReferrers,
  });
  assertMayWrite(
    ctx,
    identity,
    requester,
    spec.targets.map((t) => t.repository),
  );
  const job = await imports.submit(identity && actorOf(identity, ctx), spec, requester, storedCredentials(body.source.credentials));
  sendJson(ctx.res, 202, job, { Location: urls.api.importJob(job.id) });
}

/** GET /api/v1/imports?status=&limit= → {imports: [view]}, newest first. */
export async function list(ctx: RouteContext): Promise<void> {
  const { requester } = caller(ctx);
  const status = ctx.query.get('status') || undefined;
  if (status !== undefined && !importStatuses.includes(status as ImportStatus)) {
    throw new ApiError('INVALID_REQUEST', `status must be one of ${importStatuses.join(', ')}`);
  }
  const rawLimit = ctx.query.get('limit') || undefined;
  const limit = rawLimit === undefined ? defaultLimit : Number(rawLimit);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxLimit) throw new ApiError('INVALID_REQUEST', `limit must be an integer from 1 to ${maxLimit}`);
  sendJson(ctx.res, 200, { imports: await ctx.services.imports.list(requester, { status: status as ImportStatus | undefined, limit }) });
}

/** GET /api/v1/imports/{id} → {view}. */
export async function get(ctx: RouteContext): Promise<void> {
  const { requester } = caller(ctx);
  const imports = ctx.services.imports;
  sendJson(ctx.res, 200, imports.view(await imports.visibleJob(pathParam(ctx, 'id'), requester)));
}

/** POST /api/v1/imports/{id}/retry {credentials?} → 202 {view}; 409 IMPORT_STATE unless the job failed. */
export async function retry(ctx: RouteContext): Promise<void> {
  const { requester, identity } = caller(ctx);
  const imports = ctx.services.imports;
  const job = await imports.visibleJob(pathParam(ctx, 'id'), requester);
  const body = await readJson(ctx, retryBody);
  assertMayWrite(
    ctx,
    identity,
    requester,
    job.spec.targets.map((t) => t.repository),
  );
  const queued = await imports.retry(identity && actorOf(identity, ctx), job.id, storedCredentials(body.credentials));
  sendJson(ctx.res, 202, queued, { Location: urls.api.importJob(job.id) });
}

/**
 * Rule: imports need the token service's word on who is asking (any valid access token; the
 * route's `token` guard has verified it), except with auth off, where everyone may write anyway.
 * An owner is a caller whose token carries `registry:admin:*`.
 */
function caller(ctx: RouteContext): { requester: Requester; identity: AccessClaims | undefined } {
  if (!ctx.auth.enabled) return { requester: { principal: undefined, owner: true }, identity: undefined };
  const identity = ctx.identity;
  if (!identity || identity.kind === 'anonymous') throw new RegistryError('UNAUTHORIZED', 'imports need a login: run `berth login`');
  const owner = ctx.auth.authorizer.check(identity, [{ type: 'registry', name: 'admin', actions: ['*'] }]).kind === 'allowed';
  return { requester: { principal: { id: identity.subject, name: identity.name }, owner }, identity };
}

/** Rule: writing into a repository by import needs what pushing to it needs (pull and push), unless the caller is an owner. */
function assertMayWrite(ctx: RouteContext, identity: AccessClaims | undefined, requester: Requester, repositories: readonly string[]): void {
  if (requester.owner || !identity) return;
  const required: Access[] = repositories.map((name) => ({ type: 'repository', name, actions: ['pull', 'push'] }));
  const decision = ctx.auth.authorizer.check(identity, required);
  if (decision.kind === 'denied') {
    const names = decision.missing.map((m) => m.name).join(', ');
    throw denied(
      decision.missing,
      `${identity.name} may not push to ${names}: use a token with push on every target repository (berth import asks for one), or ask an owner for push`,
    );
  }
}

function storedCredentials(given: z.infer<typeof credentials> | undefined): { username: string; password: string } | undefined {
  if (!given) return undefined;
  return 'username' in given ? { username: given.username, password: given.password } : { username: given.identity, password: given.token };
}
