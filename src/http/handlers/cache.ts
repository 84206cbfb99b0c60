/**
 * GET/HEAD of manifests and blobs in a repository that belongs to a pull-through cache rule
 * (routed here by `pullThrough`, `routes/cache.ts`): one call to the cache service, then the same
 * answer a registry pull gives, plus `Berth-Cache: hit|miss|stale; rule=…; upstream=…` (and, when
 * stale, `checked=` with the time the upstream last confirmed the tag).
 */
import type { CacheOutcome } from '../../cache/service.js';
import { acceptedTypes, byteRange } from '../request.js';
import { apiVersionHeader, send } from '../respond.js';
import type { RouteContext } from '../route.js';
import * as blobs from './blobs.js';
import { digestParam, readReferenceParam, repositoryOf } from './common.js';

export async function manifest(ctx: RouteContext): Promise<void> {
  const { record, outcome } = await ctx.services.cache.manifest(repositoryOf(ctx), readReferenceParam(ctx), acceptedTypes(ctx.req));
  send(
    ctx.res,
    200,
    {
      'Content-Type': record.mediaType,
      'Docker-Content-Digest': record.digest,
      ETag: `"${record.digest}"`,
      'Content-Length': record.size,
      'Berth-Cache': cacheHeader(outcome),
    },
    record.content,
  );
}

export async function blob(ctx: RouteContext): Promise<void> {
  const digest = digestParam(ctx);
  const answer = await ctx.services.cache.blob(repositoryOf(ctx), digest, ctx.req.method === 'HEAD');
  ctx.res.setHeader('Berth-Cache', cacheHeader(answer.outcome));
  if (answer.kind === 'stored') return blobs.get(ctx);
  const common = { 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': digest.value, ETag: `"${digest.value}"` };
  if (answer.kind === 'upstream') {
    ctx.res.writeHead(200, Object.assign({}, apiVersionHeader, common, answer.size !== undefined ? { 'Content-Length': answer.size } : {}));
    ctx.res.end();
    return;
  }
  const { fill } = answer;
  const size = fill.size;
  const range = size !== undefined ? byteRange(ctx.req, size) : undefined;
  const length = range ? range.end - range.start + 1 : size;
  const headers = Object.assign(
    {},
    apiVersionHeader,
    common,
    size !== undefined ? { 'Accept-Ranges': 'bytes' } : {},
    length !== undefined ? { 'Content-Length': length } : {},
    range && size !== undefined ? { 'Content-Range': `bytes ${range.start}-${range.end}/${size}` } : {},
  );
  await fill.pipe(
    ctx.res,
    range,
    () => ctx.res.writeHead(range ? 206 : 200, headers),
    (stored) => answer.read(ctx.res, stored),
  );
  ctx.res.end();
}

/** The `Berth-Cache` header: where the answer came from, through which rule and upstream. */
export function cacheHeader(outcome: CacheOutcome): string {
  const parts = [outcome.state, `rule=${outcome.rule}`, `upstream=${outcome.upstream}`];
  if (outcome.state === 'stale' && outcome.checkedAt !== undefined) parts.push(`checked=${new Date(outcome.checkedAt).toISOString()}`);
  return parts.join('; ');
}
