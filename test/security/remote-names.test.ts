// Names and tags a remote source lists are validated before any filter sees them: the one registry
// client (remote/client.ts) drops catalog entries and tags that fail the OCI grammar, so a hostile
// source cannot feed a sync rule's globs or regular expressions text of its choosing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RemoteRegistry } from '../../src/remote/client.js';
import { startHostileRegistry, type HostileRegistry } from '../import/hostile-registry.js';

describe('names a remote source lists', () => {
  let source: HostileRegistry;

  before(async () => {
    source = await startHostileRegistry();
    source.intercept = (_req, res, path) => {
      const body =
        path === '/v2/_catalog'
          ? { repositories: ['team/app', `${'a-'.repeat(3000)}x`, 'Team/App', '../etc', 'team/other'] }
          : path === '/v2/team/app/tags/list'
            ? { name: 'team/app', tags: ['v1', 'x'.repeat(6000), '-bad', 'a/b', 'v2', 'latest'] }
            : undefined;
      if (!body) return false;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
      return true;
    };
  });
  after(() => source.stop());

  it('drops catalog entries that are not valid repository names', async () => {
    const remote = new RemoteRegistry({ baseUrl: source.url, credentials: { kind: 'anonymous' } });
    assert.deepEqual(await remote.listRepositories(), ['team/app', 'team/other']);
  });

  it('drops tags that are not valid tags', async () => {
    const remote = new RemoteRegistry({ baseUrl: source.url, credentials: { kind: 'anonymous' } });
    assert.deepEqual(await remote.listTags('team/app'), ['v1', 'v2', 'latest']);
  });
});
