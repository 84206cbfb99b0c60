/**
 * A CLI command that runs longer than an access token lives (`berth sync run`, an import it
 * follows) gets a new token with the same login and goes on, instead of failing with "refused the
 * token" half-way.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { urls } from '../../src/api/urls.js';
import { apiCall, connectRegistry, adminScope } from '../../src/cli/admin-client.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';

describe('management sessions', () => {
  let server: TestServer;

  before(async () => {
    // Owners' access tokens live one second here, so the test can outlive one without sleeping long.
    server = await startTestServer({ auth: true, config: { auth: { lifetimes: { user: { accessMs: 1000, refreshMs: 3_600_000 } } } } });
  });
  after(() => server.stop());

  it('renews an expired access token once and repeats the request', async () => {
    const session = await connectRegistry({ registry: new URL(server.url).host, username: ownerName, passwordStdin: true }, [adminScope], {
      readStdin: async () => ownerPassword,
    });
    const first = session.accessToken;
    assert.ok(first);
    // Wait for the state, not a duration: the first token is refused once it has expired.
    for (;;) {
      const res = await fetch(`${server.url}${urls.api.principals({})}`, { headers: { authorization: `Bearer ${first}` } });
      await res.body?.cancel();
      if (res.status === 401) break;
      await new Promise((ok) => setTimeout(ok, 100));
    }
    const answer = await apiCall<{ principals: Array<{ name: string }> }>(session, 'GET', urls.api.principals({}));
    assert.ok(answer.principals.some((p) => p.name === ownerName));
    assert.notEqual(session.accessToken, first, 'the session now carries the new token');
  });
});
