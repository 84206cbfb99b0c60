import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RegistryError } from '../oci/errors.js';
import { matchRoute, requiredAccess } from './routes.js';

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
