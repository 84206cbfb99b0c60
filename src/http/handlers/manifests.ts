/** GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference> (PUT also takes `tag` query parameters). */
import { randomUUID } from 'node:crypto';
import { RegistryError } from '../../oci/errors.js';
import type { Pusher, RequestInfo } from '../../registry/index.js';
import { acceptedTypes, readBoundedBody } from '../request.js';
import { send } from '../respond.js';
import type { RouteContext } from '../route.js';
import { urls } from '../../api/urls.js';
import { readReferenceParam, referenceParam, repositoryOf } from './common.js';

export async function get(ctx: RouteContext): Promise<void> {
  // The attestation policy's pull gate refuses serving the content (GET); a HEAD, which serves only the
  // digest, stays answered, so clients and `berth verify` can still resolve a tag and read its attestations.
  const gate = ctx.req.method === 'GET';
  const manifest = await ctx.registry.manifests.get(repositoryOf(ctx), readReferenceParam(ctx), acceptedTypes(ctx.req), { gate });
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
  const limit = ctx.registry.limits.maxManifestBytes;
  const bytes = await readBoundedBody(ctx.req, limit, () => new RegistryError('MANIFEST_TOO_LARGE', `manifest is larger than ${limit} bytes`));
  const result = await ctx.registry.manifests.put(repository, reference, bytes, ctx.req.headers['content-type'], actorOf(ctx), requestInfo(ctx), {
    tags: ctx.query.getAll('tag'),
  });
  send(ctx.res, 201, {
    Location: urls.manifest(repository, result.digest),
    'Docker-Content-Digest': result.digest,
    ...(result.subject ? { 'OCI-Subject': result.subject } : {}),
    // The distribution spec (main, "Pushing Manifests"): a registry supporting `tag` query
    // parameters "MUST include an `OCI-Tag` response header ... for each accepted tag"; one field
    // line with the tags comma-separated is the same field (RFC 9110, section 5.3).
    ...(result.tags.length > 0 ? { 'OCI-Tag': result.tags.join(', ') } : {}),
  });
}

export async function remove(ctx: RouteContext): Promise<void> {
  await ctx.registry.manifests.delete(repositoryOf(ctx), referenceParam(ctx), { actor: actorOf(ctx), request: requestInfo(ctx) });
  send(ctx.res, 202, {});
}

/** Who is making the change (undefined with auth off), for push history and webhook events. */
export function actorOf(ctx: RouteContext): Pusher | undefined {
  return (
    ctx.identity && {
      principalId: ctx.identity.subject,
      principalName: ctx.identity.name,
      kind: ctx.identity.kind,
      credentialId: ctx.identity.credentialId,
      provenance: ctx.identity.provenance,
    }
  );
}

/**
 * The request as webhook payloads describe it (ACR's `request`): the client's `X-Request-Id` when
 * it sent a sane one, else a fresh id; the Host header; the method; the User-Agent.
 */
export function requestInfo(ctx: RouteContext): RequestInfo {
  const given = ctx.req.headers['x-request-id'];
  const id = typeof given === 'string' && /^[\x21-\x7e]{1,128}$/.test(given) ? given : randomUUID();
  return {
    id,
    host: (ctx.req.headers.host ?? '').slice(0, 255),
    method: ctx.req.method ?? '',
    useragent: (ctx.req.headers['user-agent'] ?? '').slice(0, 512),
  };
}
