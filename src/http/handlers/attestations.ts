/**
 * /api/v1/attestations/* and /api/v1/repositories/{name}/attestations: the attestation keys
 * (public: anyone verifying needs them), their rotation (owner), and an image's attestations with
 * the pull decision (needs pull on the repository, like the manifest itself). Each handler parses,
 * calls one `services.attestations` method and sends the view.
 */
import { z } from 'zod';
import { ApiError } from '../../api/errors.js';
import { parseReference, parseRepositoryName } from '../../oci/names.js';
import { send, sendJson } from '../respond.js';
import type { RouteContext } from '../route.js';
import { actingOwner, readJson } from './admin/common.js';
import { repositoryOf } from './common.js';

/** GET /api/v1/attestations/keys → {keys}: every key attestations were signed with, newest first. */
export async function keys(ctx: RouteContext): Promise<void> {
  sendJson(ctx.res, 200, await ctx.services.attestations.keysView());
}

/** GET /api/v1/attestations/keys/{hint|current}.pem → the public key as PEM (`cosign … --key <url>`). */
export async function keyPem(ctx: RouteContext): Promise<void> {
  const pem = await ctx.services.attestations.keyPem(ctx.params['hint'] ?? '');
  if (pem === undefined) throw new ApiError('ATTESTATION_KEY_UNKNOWN');
  send(ctx.res, 200, { 'Content-Type': 'application/x-pem-file', 'Content-Length': Buffer.byteLength(pem) }, pem);
}

/** POST /api/v1/attestations/keys/rotate → {hint}: a new signing key; the old one stays published. */
export async function rotate(ctx: RouteContext): Promise<void> {
  const actor = actingOwner(ctx);
  await readJson(ctx, z.object({}).strict());
  sendJson(ctx.res, 200, await ctx.services.attestations.rotate(actor));
}

/** GET /api/v1/repositories/{name}/attestations?digest=|tag= → the image's attestations and the pull decision. */
export async function image(ctx: RouteContext): Promise<void> {
  const repository = repositoryOf(ctx);
  const digest = ctx.query.get('digest');
  const tag = ctx.query.get('tag');
  if ((digest === null) === (tag === null)) throw new ApiError('INVALID_REQUEST', 'give exactly one of digest= and tag=');
  const reference = parseReference((digest ?? tag) as string);
  sendJson(ctx.res, 200, await ctx.services.attestations.imageView(repository, reference));
}

/** GET /api/v1/attestations/required?repository= → {repository, required, rules} (public). */
export async function requirement(ctx: RouteContext): Promise<void> {
  const repository = parseRepositoryName(ctx.query.get('repository') ?? '');
  sendJson(ctx.res, 200, ctx.services.attestations.requirement(repository));
}
