/**
 * The blob upload endpoints: POST /v2/<name>/blobs/uploads/ (session, monolithic `?digest=`,
 * mount `?mount=&from=`, mount without `from`), and GET/PATCH/PUT/DELETE on /v2/<name>/blobs/uploads/<uuid>.
 */
import { RegistryError } from '../../oci/errors.js';
import { parseDigest, type Digest } from '../../oci/digest.js';
import { isValidRepositoryName } from '../../oci/names.js';
import type { UploadState } from '../../registry/uploads.js';
import { uploadRange } from '../../registry/uploads.js';
import { chunkInfo, contentLength, hasBody } from '../request.js';
import { send } from '../respond.js';
import type { RouteContext } from '../route.js';
import { urls } from '../../api/urls.js';
import { repositoryOf } from './common.js';
import { actorOf } from './manifests.js';

function sendProgress(ctx: RouteContext, status: number, upload: UploadState): void {
  send(ctx.res, status, {
    Location: urls.upload(upload.repository, upload.id),
    Range: uploadRange(upload.offset),
    'Docker-Upload-UUID': upload.id,
  });
}

function sendCreated(ctx: RouteContext, repository: string, digest: string): void {
  send(ctx.res, 201, { Location: urls.blob(repository, digest), 'Docker-Content-Digest': digest });
}

function uuidOf(ctx: RouteContext): string {
  return ctx.params['uuid'] ?? '';
}

export async function start(ctx: RouteContext): Promise<void> {
  const repository = repositoryOf(ctx);
  const mount = ctx.query.get('mount');
  const from = ctx.query.get('from');
  if (mount !== null) {
    const mounted = await mountBlob(ctx, repository, parseDigest(mount), from);
    if (mounted) return sendCreated(ctx, repository, mounted.digest);
  } else {
    const digest = ctx.query.get('digest');
    if (digest !== null) {
      const blob = await ctx.registry.uploads.putMonolithic(repository, parseDigest(digest), ctx.req, contentLength(ctx.req), actorOf(ctx));
      return sendCreated(ctx, repository, blob.digest);
    }
  }
  sendProgress(ctx, 202, await ctx.registry.uploads.start(repository));
}

/**
 * A mount from `from`, or without one (absent or empty) from a repository holding the blob that
 * the caller may pull (the authorizer's rule). An unusable `from` is not an error: the spec says
 * fall back to a regular upload session, as when nothing could be mounted (undefined).
 */
async function mountBlob(ctx: RouteContext, repository: string, digest: Digest, from: string | null): Promise<{ digest: string } | undefined> {
  if (!from) return ctx.registry.blobs.mountFromReadable(repository, digest, await ctx.auth.authorizer.pullFilter(ctx.identity));
  return isValidRepositoryName(from) ? ctx.registry.blobs.mount(repository, digest, from) : undefined;
}

export async function status(ctx: RouteContext): Promise<void> {
  sendProgress(ctx, 204, await ctx.registry.uploads.status(repositoryOf(ctx), uuidOf(ctx)));
}

export async function append(ctx: RouteContext): Promise<void> {
  const upload = await ctx.registry.uploads.append(repositoryOf(ctx), uuidOf(ctx), ctx.req, chunkInfo(ctx.req));
  sendProgress(ctx, 202, upload);
}

export async function complete(ctx: RouteContext): Promise<void> {
  const repository = repositoryOf(ctx);
  const digestText = ctx.query.get('digest');
  if (digestText === null) throw new RegistryError('DIGEST_INVALID', 'the digest query parameter is required');
  const digest = parseDigest(digestText);
  const body = hasBody(ctx.req) ? ctx.req : undefined;
  const blob = await ctx.registry.uploads.complete(repository, uuidOf(ctx), digest, body, chunkInfo(ctx.req), actorOf(ctx));
  sendCreated(ctx, repository, blob.digest);
}

export async function cancel(ctx: RouteContext): Promise<void> {
  await ctx.registry.uploads.cancel(repositoryOf(ctx), uuidOf(ctx));
  send(ctx.res, 204, {});
}
