/**
 * GET /api/v1/repositories/{name}/history?tag=&digest=&limit=: who pushed what to a repository,
 * and for federated logins the workload that did it (the OIDC token's identifying claims: for
 * GitHub Actions the repository, commit, workflow and run).
 *
 * Unlike the rest of /api/v1 this is not an owner endpoint: its route uses the `registry` guard,
 * so it needs `pull` on the repository, exactly as pulling its manifests does (anonymous pull
 * included). It sits with the management handlers because it speaks the API's JSON.
 */
import type { HistoryView, PushView } from '../../../api/repositories.js';
import { parseDigest } from '../../../oci/digest.js';
import { ApiError } from '../../../api/errors.js';
import { isValidTag } from '../../../oci/names.js';
import { sendJson } from '../../respond.js';
import type { RouteContext } from '../../route.js';
import type { PushRecord } from '../../../registry/reads.js';
import { repositoryOf } from '../common.js';

const defaultLimit = 100;
const maxLimit = 1000;

/** → {repository, pushes: [view]}, newest first; `tag` and `digest` narrow it; 404 NAME_UNKNOWN for a repository never pushed to. */
export async function list(ctx: RouteContext): Promise<void> {
  const repository = repositoryOf(ctx);
  const tag = nonEmpty(ctx.query.get('tag'));
  if (tag !== undefined && !isValidTag(tag)) throw new ApiError('INVALID_REQUEST', `tag: ${JSON.stringify(tag.slice(0, 130))} is not a valid tag`);
  const rawDigest = nonEmpty(ctx.query.get('digest'));
  const digest = rawDigest === undefined ? undefined : parseDigest(rawDigest).value;
  const rawLimit = nonEmpty(ctx.query.get('limit'));
  const limit = rawLimit === undefined ? defaultLimit : Number(rawLimit);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxLimit) {
    throw new ApiError('INVALID_REQUEST', `limit must be an integer from 1 to ${maxLimit}`, { limit: rawLimit?.slice(0, 20) });
  }
  const pushes = await ctx.registry.reads.history(repository, { tag, digest, limit });
  // Next to each digest: whether it carries a valid push attestation (verified by the server, cached).
  const attestations = await ctx.services.attestations.summaries(
    repository,
    pushes.map((p) => p.digest),
  );
  const body: HistoryView = { repository, pushes: pushes.map(pushView), attestations };
  sendJson(ctx.res, 200, body);
}

function nonEmpty(value: string | null): string | undefined {
  return value === null || value === '' ? undefined : value;
}

function pushView(push: PushRecord): PushView {
  return {
    digest: push.digest,
    tag: push.tag ?? null,
    at: new Date(push.at).toISOString(),
    principal: push.principalId !== undefined ? { id: push.principalId, name: push.principalName ?? push.principalId } : null,
    provenance: push.provenance ?? null,
  };
}
