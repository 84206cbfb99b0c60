/** GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference> */
import { RegistryError } from '../../oci/errors.js';
import { acceptedTypes, readBoundedBody } from '../request.js';
import { send } from '../respond.js';
import type { RouteContext } from '../routes.js';
import { urls } from '../urls.js';
import { referenceParam, repositoryOf } from './common.js';

export async function get(ctx: RouteContext): Promise<void> {
  const manifest = await ctx.registry.manifests.get(repositoryOf(ctx), referenceParam(ctx), acceptedTypes(ctx.req));
  send(
    ctx.res,
    200,
    {
      'Content-Type': manifest.mediaType,
      'Docker-Content-Digest': manifest.digest,
      ETag: `"${manifest.digest}"`,
      'Content-Length': manifest.size,
    },
    manifest.content,
  );
}

export async function put(ctx: RouteContext): Promise<void> {
  const repository = repositoryOf(ctx);
  const reference = referenceParam(ctx);
  const limit = ctx.registry.context.limits.maxManifestBytes;
  const bytes = await readBoundedBody(
    ctx.req,
    limit,
    () => new RegistryError('MANIFEST_TOO_LARGE', `manifest is larger than ${limit} bytes`),
  );
  const pusher = ctx.identity && { principalId: ctx.identity.subject, principalName: ctx.identity.name, provenance: ctx.identity.provenance };
  const result = await ctx.registry.manifests.put(repository, reference, bytes, ctx.req.headers['content-type'], pusher);
  send(ctx.res, 201, {
    Location: urls.manifest(repository, result.digest),
    'Docker-Content-Digest': result.digest,
    ...(result.subject ? { 'OCI-Subject': result.subject } : {}),
  });
}

export async function remove(ctx: RouteContext): Promise<void> {
  await ctx.registry.manifests.delete(repositoryOf(ctx), referenceParam(ctx));
  send(ctx.res, 202, {});
}
