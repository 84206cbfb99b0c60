// Names an attacker chooses never reach a pattern unvalidated: a 6,000-character repository name
// against the anonymous-pull glob `*-*-*-*-prod` (which a backtracking RegExp matches in time n^4)
// is refused with 400 NAME_INVALID before any authorization, and the same name in a token `scope`
// is dropped. The event loop is never blocked for long meanwhile.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { urls } from '../../src/api/urls.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { loopDelayBoundMs, withLoopDelay } from './helpers.js';

const hostile = 'a-'.repeat(3000); // 6,000 characters, every `-` a place for `*-` to try

describe('attacker-chosen names against patterns', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer({ auth: true });
    await server.app.metadata.auth.anonymousPull.replace(['*-*-*-*-prod'], Date.now());
  });
  after(() => server.stop());

  it('a 6,000-character repository name is refused before authorization, without stalling the server', async () => {
    const { value: responses, maxDelayMs } = await withLoopDelay(() =>
      Promise.all(
        [urls.manifest(hostile, 'latest'), urls.tags(hostile), urls.blob(hostile, `sha256:${'0'.repeat(64)}`)].map(async (path) => {
          const res = await fetch(`${server.url}${path}`);
          return { status: res.status, body: (await res.json()) as { errors: Array<{ code: string }> } };
        }),
      ),
    );
    for (const res of responses) {
      assert.equal(res.status, 400);
      assert.equal(res.body.errors[0]?.code, 'NAME_INVALID');
    }
    assert.ok(maxDelayMs < loopDelayBoundMs, `event loop blocked for ${maxDelayMs} ms`);
  });

  it('the anonymous-pull glob still serves valid names', async () => {
    const res = await fetch(`${server.url}${urls.tags('team-app-eu-1-prod')}`);
    // No token needed (the glob covers it); the repository does not exist.
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'NAME_UNKNOWN');
  });

  it('the same name in a token scope is dropped, not matched', async () => {
    const { value, maxDelayMs } = await withLoopDelay(async () => {
      const query = new URLSearchParams({ service: 'berth', scope: `repository:${hostile}:pull` });
      query.append('scope', 'repository:team-app-eu-1-prod:pull');
      const res = await fetch(`${server.url}${urls.token()}?${query.toString()}`);
      return { status: res.status, body: (await res.json()) as { scope?: string } };
    });
    assert.equal(value.status, 200);
    assert.equal(value.body.scope, 'repository:team-app-eu-1-prod:pull');
    assert.ok(maxDelayMs < loopDelayBoundMs, `event loop blocked for ${maxDelayMs} ms`);
  });
});
