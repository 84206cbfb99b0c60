/** GET/HEAD/DELETE /v2/<name>/blobs/<digest> */
import { byteRange } from '../request.js';
import { apiVersionHeader, send } from '../respond.js';
import type { RouteContext } from '../route.js';
import { digestParam, repositoryOf } from './common.js';

export async function get(ctx: RouteContext): Promise<void> {
  const repository = repositoryOf(ctx);
  const digest = digestParam(ctx);
  const blob = await ctx.registry.blobs.stat(repository, digest);
  const headers = {
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': blob.digest,
    ETag: `"${blob.digest}"`,
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'max-age=31536000',
  };
  const range = byteRange(ctx.req, blob.size);
  if (ctx.req.method === 'HEAD') {
    send(ctx.res, 200, { 'Content-Length': blob.size, ...headers });
    return;
  }
  const redirect = range ? undefined : await ctx.registry.blobs.redirectURL(digest);
  if (redirect) {
    send(ctx.res, 307, { Location: redirect, 'Docker-Content-Digest': blob.digest });
    return;
  }
  // Storage is checked before the status line goes out, so a missing file can still be a clean 404.
  const status = range ? 206 : 200;
  const length = range ? range.end - range.start + 1 : blob.size;
  const rangeHeader = range ? { 'Content-Range': `bytes ${range.start}-${range.end}/${blob.size}` } : {};
  const writeHeaders = () => ctx.res.writeHead(status, { 'Content-Length': length, ...apiVersionHeader, ...headers, ...rangeHeader });
  await ctx.registry.blobs.send(repository, digest, ctx.res, writeHeaders, range);
  ctx.res.end();
}

export async function remove(ctx: RouteContext): Promise<void> {
  await ctx.registry.blobs.delete(repositoryOf(ctx), digestParam(ctx));
  send(ctx.res, 202, {});
}
