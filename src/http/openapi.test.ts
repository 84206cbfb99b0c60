import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openApiDocument, operations } from './openapi.js';
import { matchRoute, routes } from './routes.js';

/** A concrete path for a template: `{name}` a two-component repository, other parameters a plain word. */
function sample(template: string): string {
  return template.replace(/\{(\w+)\}/g, (_, param: string) =>
    param === 'name' ? 'team/app' : param === 'hint' ? 'current' : param === 'kind' ? 'retention' : param === 'digest' ? `sha256:${'a'.repeat(64)}` : 'x1',
  );
}

describe('the OpenAPI document of /api/v1', () => {
  it('documents every /api/v1 route, and every documented operation is routed to the route it names', () => {
    const documented = new Set(operations.map((o) => `${o.method.toUpperCase()} ${o.route}`));
    const apiRoutes = routes.filter((r) => r.path.source.startsWith('^\\/api\\/v1\\/') || r.path.source.startsWith('^/api/v1/'));
    assert.ok(apiRoutes.length > 30, `found ${apiRoutes.length} /api/v1 routes`);
    for (const route of apiRoutes)
      assert.ok(documented.has(`${route.method} ${route.name}`), `${route.method} ${route.path.source} (${route.name}) is not documented`);
    for (const o of operations) {
      const match = matchRoute(o.method.toUpperCase(), sample(o.path));
      assert.equal(match.kind, 'route', `${o.method} ${o.path} is not routed`);
      if (match.kind === 'route') assert.equal(match.route.name, o.route, `${o.method} ${o.path} reaches ${match.route.name}, not ${o.route}`);
    }
  });

  it('is OpenAPI 3.1 with request schemas from the zod schemas the server validates with', async () => {
    const doc = (await openApiDocument('test')) as { openapi: string; paths: Record<string, Record<string, any>> };
    assert.equal(doc.openapi, '3.1.0');
    const create = doc.paths['/api/v1/principals']?.['post'];
    const schema = create.requestBody.content['application/json'].schema;
    assert.deepEqual(schema.properties.kind.enum, ['user', 'service', 'token']);
    assert.equal(schema.additionalProperties, false, 'strict schemas refuse unknown keys, and say so');
    const tags = doc.paths['/api/v1/repositories/{name}/tags']?.['get'];
    assert.ok(tags.parameters.some((p: { name: string; in: string }) => p.name === 'n' && p.in === 'query'));
    assert.ok(tags.responses['200'].content['application/json'].schema.properties.tags);
    const test = doc.paths['/api/v1/federated-credentials/test']?.['post'];
    assert.ok(test.requestBody.content['application/json'].schema.properties.token);
    assert.doesNotThrow(() => JSON.stringify(doc));
    // Every answer has its schema, except sync's (its views are documented in docs/sync.md) and the document itself.
    const undescribed = operations.filter(
      (o) => o.success.status !== 204 && !o.success.schema && o.tag !== 'sync' && o.tag !== 'cache' && o.tag !== 'lifecycle' && o.tag !== 'meta',
    );
    assert.deepEqual(
      undescribed.map((o) => `${o.method} ${o.path}`),
      [],
    );
  });
});
