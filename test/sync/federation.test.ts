import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.js';
import { startTestServer, type TestServer } from '../support/server.js';
import {
  Api,
  buildMultiArchImage,
  fastSync,
  headDigest,
  loopbackEgress,
  pullToken,
  pushImage,
  pushToken,
  startBerth,
  waitFor,
  type BuiltImage,
} from './helpers.js';

/**
 * A sync rule that holds no vendor secret at all: the customer's Berth logs in to the vendor's
 * Berth as a service principal with an OIDC token from a file (a projected Kubernetes
 * service-account token, say), which the vendor's federated credential trusts.
 */
describe('sync with federated source credentials', () => {
  let issuer: OidcIssuer;
  let vendor: TestServer;
  let customer: TestServer;
  let image: BuiltImage;
  let dir = '';

  before(async () => {
    issuer = await startOidcIssuer();
    // The token files live in the directory the customer's operator allows rules to read from.
    dir = await mkdtemp(join(tmpdir(), 'berth-sync-oidc-'));
    [vendor, customer] = await Promise.all([
      startTestServer({ auth: true, federationIssuers: [{ issuer: issuer.issuer }], config: { egress: loopbackEgress, sync: fastSync } }),
      startBerth({ secrets: { fileDir: dir } }),
    ]);
    const { principals } = vendor.app.auth;
    const service = await principals.createPrincipal('service', 'customer-sync', {
      grants: [{ pattern: 'tripinsights/**', permission: 'pull' }],
      withoutSecret: true,
    });
    await vendor.app.metadata.auth.federatedCredentials.put({
      id: 'fc-sync',
      principalId: service.principal.id,
      name: 'customer-cluster',
      issuer: issuer.issuer,
      audiences: ['berth'],
      subject: 'system:serviceaccount:registry:berth',
      conditions: [],
      createdAt: Date.now(),
    });
    image = await buildMultiArchImage('federation');
    await pushImage(vendor.url, await pushToken(vendor.url, 'tripinsights/api'), 'tripinsights/api', '1.0', image.dir, image.index.index);
  });

  after(async () => {
    await Promise.all([vendor?.stop(), customer?.stop(), issuer?.stop()]);
    await image?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('backfills with a token read from a file, and the rule shows where the token comes from, nothing secret', async () => {
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, await issuer.kubernetes({ namespace: 'registry', serviceAccount: 'berth' }));
    const api = await Api.asOwner(customer.url);
    const created = await api.post('/sync/rules', {
      name: 'federated',
      source: { url: vendor.url, credentials: { kind: 'oidc', clientId: 'customer-sync', tokenFile } },
      repositories: ['tripinsights/api'],
      triggers: { pollIntervalMs: 60_000 },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(created.body.rule.source.credentials, { kind: 'oidc', clientId: 'customer-sync', tokenFile });

    const token = await pullToken(customer.url, 'tripinsights/api');
    assert.equal(await waitFor('the backfill', () => headDigest(customer.url, token, 'tripinsights/api', '1.0')), image.index.index.digest);
    const status = (await api.get('/sync/rules/federated/status')).body;
    assert.equal(status.images[0].copies, 1);
    assert.equal(status.rule.state.lastError, null);
  });

  it("a token the vendor does not trust fails the sync with the vendor's refusal in the status", async () => {
    const tokenFile = join(dir, 'wrong-token');
    await writeFile(tokenFile, await issuer.kubernetes({ namespace: 'elsewhere', serviceAccount: 'intruder' }));
    const api = await Api.asOwner(customer.url);
    assert.equal(
      (
        await api.post('/sync/rules', {
          name: 'untrusted',
          source: { url: vendor.url, credentials: { kind: 'oidc', clientId: 'customer-sync', tokenFile } },
          repositories: ['tripinsights/api'],
          destinationPrefix: 'untrusted',
          triggers: { pollIntervalMs: 60_000 },
        })
      ).status,
      201,
    );
    const rule = await waitFor('the failed backfill', async () => {
      const body = (await api.get('/sync/rules/untrusted')).body;
      return body.state.lastReconcileError ? body : undefined;
    });
    assert.match(rule.state.lastReconcileError, /refused the OIDC token of client "customer-sync"/);
    assert.equal(rule.state.backfilledAt, null);
  });
});
