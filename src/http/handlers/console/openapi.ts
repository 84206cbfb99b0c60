/**
 * GET /api/v1/openapi.json: the management API's OpenAPI 3.1 document (`http/openapi.ts`), built
 * once on first request. The builder and the answer schemas it reads are loaded then too: they are
 * about 1 MiB of heap a registry that is never asked for the document does not need.
 */
import { send } from '../../respond.js';
import type { RouteContext } from '../../route.js';

let built: Promise<Buffer> | undefined;

export async function document(ctx: RouteContext): Promise<void> {
  built ??= import('../../openapi.js').then(({ openApiDocument }) => openApiDocument('1')).then((doc) => Buffer.from(JSON.stringify(doc)));
  send(ctx.res, 200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache' }, await built);
}
