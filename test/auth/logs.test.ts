import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';
import { basic, bearer, postForm, tokenFor } from './helpers.js';

describe('logs', () => {
  const lines: string[] = [];
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ auth: true, logLines: lines });
  });
  after(async () => server.stop());

  it('never contain a password, secret, access token or refresh token, even at debug level', async () => {
    const created = await server.app.auth.principals.createPrincipal('service', undefined, { grants: [{ pattern: '**', permission: 'pull' }] });
    const secret = created.secret ?? '';
    const owner = await tokenFor(server.url, ownerName, ownerPassword, ['repository:a/b:pull,push'], true);
    const service = await tokenFor(server.url, created.principal.name, secret, ['repository:a/b:pull'], true);
    await fetch(`${server.url}/v2/a/b/tags/list`, { headers: bearer(owner['token']) });
    await fetch(`${server.url}/v2/a/b/tags/list`, { headers: bearer('forged.token.value') });
    await fetch(`${server.url}/oauth2/token?service=berth`, { headers: { Authorization: basic(ownerName, 'wrong-password-123') } });
    await postForm(server.url, '/oauth2/token', { grant_type: 'refresh_token', refresh_token: String(service['refresh_token']), service: 'berth' });
    await postForm(server.url, '/oauth2/exchange', { grant_type: 'access_token', access_token: String(owner['token']), service: 'berth' });
    await server.app.auth.principals.setDisabled(created.principal.id, true);

    const log = lines.join('');
    assert.ok(lines.length >= 6, `requests were logged at debug level (${lines.length} lines)`);
    for (const secretValue of [
      ownerPassword,
      secret,
      'wrong-password-123',
      owner['token'],
      owner['refresh_token'],
      service['token'],
      service['refresh_token'],
    ]) {
      assert.equal(log.includes(String(secretValue)), false, `a secret leaked into the log: ${String(secretValue).slice(0, 8)}…`);
    }
    assert.equal(/Basic [A-Za-z0-9+/=]{8,}/.test(log), false, 'an Authorization header leaked into the log');
  });
});
