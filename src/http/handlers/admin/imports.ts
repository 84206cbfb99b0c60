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
import { missingAccess, type Access } from '../../../auth/access.js';
import type { AccessClaims } from '../../../auth/tokens.js';
import type { ImportJobRecord, ImportProgress, ImportResult, ImportStatus, StoredCredentials } from '../../../metadata/import-store.js';
import { RegistryError } from '../../../oci/errors.js';
import type { Requester } from '../../../replication/imports.js';
import { sendJson } from '../../respond.js';
import type { RouteContext } from '../../routes.js';
import { audit, pathParam, readJson } from './common.js';

/** What the API sends for a job. Credentials never appear; `credentials` says only where they come from. */
export interface ImportJobView {
  id: string;
  status: ImportStatus;
  source: { registry: string; repository: string; reference: string };
  targets: Array<{ repository: string; tags: string[] }>;
  mode: 'Force' | 'NoForce';
  includeReferrers: boolean;
  requestedBy: { id: string; name: string } | null;
  /** Runs since the job was last queued by a person. */
  attempts: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** For a queued job after a failed run: when it runs again. */
  retryAt: string | null;
  progress: ImportProgress | null;
  result: ImportResult | null;
  error: { code: string; message: string } | null;
  /** `request`: the request's own credentials are still stored; else the configured ones (or none) are used. */
  credentials: 'request' | 'server';
}

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

const importBody = z
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

const retryBody = z.object({ credentials: credentials.optional() }).strict();

const statuses: readonly ImportStatus[] = ['queued', 'running', 'succeeded', 'failed'];
const defaultLimit = 100;
const maxLimit = 1000;

/** POST /api/v1/import {source, targetTags, untaggedTargetRepositories, mode, includeReferrers} → 202 {job}. */
export async function create(ctx: RouteContext): Promise<void> {
  const { requester, identity } = caller(ctx);
  const body = await readJson(ctx, importBody);
  const imports = ctx.services.imports;
  const spec = imports.plan(
    {
      source: { registryUri: body.source.registryUri, sourceImage: body.source.sourceImage },
      targetTags: body.targetTags,
      untaggedTargetRepositories: body.untaggedTargetRepositories,
      mode: body.mode,
      includeReferrers: body.includeReferrers,
    },
    requester,
  );
  assertMayWrite(
    identity,
    requester,
    spec.targets.map((t) => t.repository),
  );
  const job = await imports.submit(spec, requester, storedCredentials(body.source.credentials));
  if (identity) {
    await audit(ctx, identity, 'import.created', {
      job: job.id,
      source: `${spec.source.registry}/${spec.source.repository}`,
      reference: spec.source.reference,
      targets: spec.targets,
      mode: body.mode,
    });
  }
  sendJson(ctx.res, 202, importView(job), { Location: urls.api.importJob(job.id) });
}

/** GET /api/v1/imports?status=&limit= → {imports: [view]}, newest first. */
export async function list(ctx: RouteContext): Promise<void> {
  const { requester } = caller(ctx);
  const status = ctx.query.get('status') || undefined;
  if (status !== undefined && !statuses.includes(status as ImportStatus)) {
    throw new RegistryError('INVALID_REQUEST', `status must be one of ${statuses.join(', ')}`);
  }
  const rawLimit = ctx.query.get('limit') || undefined;
  const limit = rawLimit === undefined ? defaultLimit : Number(rawLimit);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxLimit)
    throw new RegistryError('INVALID_REQUEST', `limit must be an integer from 1 to ${maxLimit}`);
  const jobs = await ctx.services.imports.list({
    status: status as ImportStatus | undefined,
    limit,
    requestedBy: requester.owner ? undefined : requester.principal?.id,
  });
  sendJson(ctx.res, 200, { imports: jobs.map(importView) });
}

/** GET /api/v1/imports/{id} → {view}. */
export async function get(ctx: RouteContext): Promise<void> {
  const { requester } = caller(ctx);
  sendJson(ctx.res, 200, importView(await visibleJob(ctx, requester)));
}

/** POST /api/v1/imports/{id}/retry {credentials?} → 202 {view}; 409 IMPORT_STATE unless the job failed. */
export async function retry(ctx: RouteContext): Promise<void> {
  const { requester, identity } = caller(ctx);
  const job = await visibleJob(ctx, requester);
  const body = await readJson(ctx, retryBody);
  assertMayWrite(
    identity,
    requester,
    job.spec.targets.map((t) => t.repository),
  );
  const queued = await ctx.services.imports.retry(job.id, storedCredentials(body.credentials));
  if (identity) await audit(ctx, identity, 'import.retried', { job: job.id });
  sendJson(ctx.res, 202, importView(queued), { Location: urls.api.importJob(job.id) });
}

export function importView(job: ImportJobRecord): ImportJobView {
  const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());
  return {
    id: job.id,
    status: job.status,
    source: { registry: job.spec.source.registry, repository: job.spec.source.repository, reference: job.spec.source.reference },
    targets: job.spec.targets.map((t) => ({ repository: t.repository, tags: [...t.tags] })),
    mode: job.spec.force ? 'Force' : 'NoForce',
    includeReferrers: job.spec.includeReferrers,
    requestedBy: job.requestedBy ?? null,
    attempts: job.attempts,
    createdAt: iso(job.createdAt) as string,
    startedAt: iso(job.startedAt),
    finishedAt: iso(job.finishedAt),
    retryAt: job.status === 'queued' && job.error ? iso(job.notBefore) : null,
    progress: job.progress ?? null,
    result: job.result ?? null,
    error: job.error ?? null,
    credentials: job.hasCredentials ? 'request' : 'server',
  };
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
  const owner = missingAccess(identity.access, [{ type: 'registry', name: 'admin', actions: ['*'] }]).length === 0;
  return { requester: { principal: { id: identity.subject, name: identity.name }, owner }, identity };
}

/** Rule: writing into a repository by import needs what pushing to it needs (pull and push), unless the caller is an owner. */
function assertMayWrite(identity: AccessClaims | undefined, requester: Requester, repositories: readonly string[]): void {
  if (requester.owner || !identity) return;
  const required: Access[] = repositories.map((name) => ({ type: 'repository', name, actions: ['pull', 'push'] }));
  const missing = missingAccess(identity.access, required);
  if (missing.length > 0) {
    const names = missing.map((m) => m.name).join(', ');
    throw new RegistryError(
      'DENIED',
      `${identity.name} may not push to ${names}: use a token with push on every target repository (berth import asks for one), or ask an owner for push`,
      {
        missing: missing.map((m) => ({ type: m.type, name: m.name, actions: m.actions })),
      },
    );
  }
}

/** Rule: a job is visible to owners and to the principal that created it; to anyone else it does not exist. */
async function visibleJob(ctx: RouteContext, requester: Requester): Promise<ImportJobRecord> {
  const id = pathParam(ctx, 'id');
  const job = /^[0-9a-f-]{36}$/.test(id) ? await ctx.services.imports.get(id) : undefined;
  if (!job || (!requester.owner && job.requestedBy?.id !== requester.principal?.id)) {
    throw new RegistryError('IMPORT_UNKNOWN', `no import job ${JSON.stringify(id.slice(0, 64))}`);
  }
  return job;
}

function storedCredentials(given: z.infer<typeof credentials> | undefined): StoredCredentials | undefined {
  if (!given) return undefined;
  return 'username' in given ? { username: given.username, password: given.password } : { username: given.identity, password: given.token };
}
