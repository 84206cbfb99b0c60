import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RegistryError } from '../oci/errors.js';
import { operations } from './openapi.js';
import { matchRoute, requiredAccess, routes, type Match, type Method } from './routes.js';

const digest = `sha256:${'a'.repeat(64)}`;

describe('route table', () => {
  it('matches names containing slashes and the path keywords', () => {
    const match = matchRoute('GET', `/v2/a/manifests/b/manifests/latest`);
    assert.equal(match.kind, 'route');
    if (match.kind === 'route') assert.deepEqual(match.params, { name: 'a/manifests/b', reference: 'latest' });
  });

  it('tells an upload session from a blob', () => {
    const upload = matchRoute('PATCH', '/v2/x/y/blobs/uploads/1234');
    assert.equal(upload.kind === 'route' && upload.route.name, 'upload');
    const blob = matchRoute('GET', `/v2/x/y/blobs/${digest}`);
    assert.equal(blob.kind === 'route' && blob.route.name, 'blob');
  });

  it('answers 405 with the allowed methods for a known path', () => {
    assert.deepEqual(matchRoute('POST', `/v2/x/manifests/latest`), { kind: 'method-not-allowed', allow: ['GET', 'HEAD', 'PUT', 'DELETE'] });
  });

  it('answers HEAD with the GET route where the table has no HEAD route, and names HEAD in Allow', () => {
    const head = matchRoute('HEAD', '/v2/x/y/tags/list');
    assert.equal(head.kind === 'route' && `${head.route.name} ${head.route.method}`, 'tags GET');
    assert.deepEqual(head.kind === 'route' && head.params, { name: 'x/y' });
    assert.deepEqual(matchRoute('POST', '/v2/_catalog'), { kind: 'method-not-allowed', allow: ['GET', 'HEAD'] });
  });

  it('matches as a scan of the whole table in order would, for every method and path', () => {
    // What matchRoute answers, written as plainly as it can be: the table's first route with the
    // method and a matching path; else HEAD by the first matching GET route; else 405 or 404.
    const scan = (method: string, path: string): Match => {
      const matching = routes.filter((r) => r.path.test(path));
      const route = matching.find((r) => r.method === method) ?? (method === 'HEAD' ? matching.find((r) => r.method === 'GET') : undefined);
      if (route) return { kind: 'route', route, params: Object.assign({}, route.path.exec(path)?.groups) };
      const allow = matching.map((r) => r.method);
      if (allow.includes('GET') && !allow.includes('HEAD')) allow.push('HEAD');
      return allow.length > 0 ? { kind: 'method-not-allowed', allow } : { kind: 'not-found' };
    };
    // A repository named `a/images` makes `…/a/images/tags` match two GET routes: the table's order decides.
    const api = operations.flatMap((o) =>
      ['team/app', 'a/images'].map((name) => o.path.replace(/\{(\w+)\}/g, (_, param: string) => (param === 'name' ? name : 'x1'))),
    );
    const registry = ['/v2/', '/v2', '/v2/_catalog', '/v2/a/b/tags/list', `/v2/a/referrers/${digest}`, '/v2/a/manifests/b/manifests/latest'];
    const blobs = ['/v2/a/blobs/uploads/', '/v2/a/blobs/uploads', '/v2/a/blobs/uploads/u1', `/v2/a/blobs/${digest}`, '/v2/blobs/uploads/x/blobs/uploads/y'];
    const others = [
      '/',
      '/index.html',
      '/assets/app.js',
      '/console/session',
      '/console/sso/github/start',
      '/oauth2/token',
      '/oauth2/exchange',
      '/healthz',
      '/metrics',
      '/nope',
    ];
    const methods: Array<Method | 'OPTIONS'> = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
    let routed = 0;
    for (const path of [...api, ...registry, ...blobs, ...others]) {
      for (const method of methods) {
        const match = matchRoute(method, path);
        assert.deepEqual(match, scan(method, path), `${method} ${path}`);
        if (match.kind === 'route') routed++;
      }
    }
    assert.ok(routed > api.length, `${routed} of the requests were routed`);
  });

  it('answers 404 for an unknown path', () => {
    assert.deepEqual(matchRoute('GET', '/v3/'), { kind: 'not-found' });
  });

  it('derives required access from the method, plus pull on a mount source', () => {
    const match = matchRoute('POST', '/v2/team/app/blobs/uploads/');
    assert.equal(match.kind, 'route');
    if (match.kind !== 'route') return;
    const query = new URLSearchParams({ mount: digest, from: 'other/app' });
    assert.deepEqual(requiredAccess(match.route, match.params, query), [
      { type: 'repository', name: 'team/app', actions: ['pull', 'push'] },
      { type: 'repository', name: 'other/app', actions: ['pull'] },
    ]);
    for (const anonymous of [new URLSearchParams({ mount: digest }), new URLSearchParams({ mount: digest, from: '' })]) {
      assert.deepEqual(
        requiredAccess(match.route, match.params, anonymous),
        [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }],
        'a mount without `from` asks for no pull on an unnamed source',
      );
    }
    const del = matchRoute('DELETE', `/v2/team/app/manifests/${digest}`);
    if (del.kind === 'route') {
      assert.deepEqual(requiredAccess(del.route, del.params, new URLSearchParams()), [{ type: 'repository', name: 'team/app', actions: ['delete'] }]);
    }
    const cancel = matchRoute('DELETE', '/v2/team/app/blobs/uploads/0b8d7a1c-1111-4c3e-9a6f-2f1d3c4b5a69');
    assert.equal(cancel.kind, 'route');
    if (cancel.kind === 'route') {
      assert.deepEqual(requiredAccess(cancel.route, cancel.params, new URLSearchParams()), [
        { type: 'repository', name: 'team/app', actions: ['pull', 'push'] },
      ]);
    }
    const untag = matchRoute('DELETE', '/v2/team/app/manifests/v1');
    if (untag.kind === 'route') {
      assert.deepEqual(requiredAccess(untag.route, untag.params, new URLSearchParams()), [
        { type: 'repository', name: 'team/app', actions: ['metadata_write'] },
      ]);
    }
    const tags = matchRoute('GET', '/v2/team/app/tags/list');
    if (tags.kind === 'route') {
      assert.deepEqual(requiredAccess(tags.route, tags.params, new URLSearchParams()), [{ type: 'repository', name: 'team/app', actions: ['metadata_read'] }]);
    }
  });

  it('validates the repository name before anything is authorized (NAME_INVALID), and drops an invalid mount source', () => {
    const long = matchRoute('GET', `/v2/${'a-'.repeat(3000)}x/manifests/latest`);
    assert.equal(long.kind, 'route');
    if (long.kind !== 'route') return;
    assert.throws(
      () => requiredAccess(long.route, long.params, new URLSearchParams()),
      (err: unknown) => err instanceof RegistryError && err.code === 'NAME_INVALID',
    );
    const upper = matchRoute('GET', '/v2/Team/App/tags/list');
    if (upper.kind === 'route') assert.throws(() => requiredAccess(upper.route, upper.params, new URLSearchParams()), /invalid repository name/);
    const mount = matchRoute('POST', '/v2/team/app/blobs/uploads/');
    if (mount.kind !== 'route') return;
    const query = new URLSearchParams({ mount: digest, from: `${'x'.repeat(300)}` });
    assert.deepEqual(requiredAccess(mount.route, mount.params, query), [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }]);
  });
});
