/** GET /api/v1/openapi.json: the management API's OpenAPI 3.1 document (`http/openapi.ts`), built once on first request. */
import { openApiDocument } from '../../openapi.js';
import { send } from '../../respond.js';
import type { RouteContext } from '../../route.js';

let built: Promise<Buffer> | undefined;

export async function document(ctx: RouteContext): Promise<void> {
  built ??= openApiDocument('1').then((doc) => Buffer.from(JSON.stringify(doc)));
  send(ctx.res, 200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache' }, await built);
}
