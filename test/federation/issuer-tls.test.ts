import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { postForm } from '../auth/helpers.js';
import { startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { loopbackCertificate } from '../support/tls.js';

const tokenExchange = 'urn:ietf:params:oauth:grant-type:token-exchange';

describe('an HTTPS issuer with a private CA (federation.issuers[].caFile)', () => {
  let dir = '';
  let issuer: OidcIssuer;
  const servers: TestServer[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-issuer-tls-'));
    const { cert, key } = await loopbackCertificate(dir, 'issuer');
    issuer = await startOidcIssuer({ tls: { cert: await readFile(cert, 'utf8'), key: await readFile(key, 'utf8') } });
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await issuer.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function exchangeAt(caFile: string | undefined): Promise<Response> {
    const server = await startTestServer({ auth: true, federationIssuers: [{ issuer: issuer.issuer, ...(caFile ? { caFile } : {}) }] });
    servers.push(server);
    const sp = await server.app.auth.principals.createPrincipal('service', 'cluster-app', {
      grants: [{ pattern: '**', permission: 'pull' }],
      withoutSecret: true,
    });
    await server.app.metadata.auth.federatedCredentials.put({
      id: randomUUID(),
      principalId: sp.principal.id,
      name: 'k8s',
      issuer: issuer.issuer,
      audiences: ['berth'],
      subject: 'system:serviceaccount:prod:*',
      conditions: [],
      createdAt: Date.now(),
    });
    const token = await issuer.kubernetes({ namespace: 'prod', serviceAccount: 'web' });
    return postForm(server.url, '/oauth2/token', {
      grant_type: tokenExchange,
      subject_token: token,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      service: 'berth',
    });
  }

  it('trusts the issuer through its CA bundle', async () => {
    const res = await exchangeAt(join(dir, 'issuer.crt'));
    assert.equal(res.status, 200, await res.clone().text());
  });

  it('refuses it without the CA bundle (the certificate does not verify)', async () => {
    const res = await exchangeAt(undefined);
    assert.equal(res.status, 401);
    assert.match(((await res.json()) as { error_description: string }).error_description, /issuer's signing keys could not be fetched/);
    // The caller is told the check in general terms; the audit log says why.
    const server = servers.at(-1);
    const [entry] = (await server?.app.metadata.auth.audit.list({ limit: 1, event: 'login.failed' })) ?? [];
    assert.match(String((entry?.detail as { reason?: unknown } | undefined)?.reason), /unavailable: .*certificate/i);
  });
});
