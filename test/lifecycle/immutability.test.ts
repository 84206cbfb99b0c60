/**
 * Tag immutability over the registry API: write-once tags (a byte-identical re-push succeeds, another
 * digest is DENIED naming the rule and who first pushed it), tag-parameter pushes refused as a whole,
 * two pushes racing to create one tag (exactly one wins), fallback tags exempt, and tags bound to CI
 * identity (a federated login whose `ref` or `environment` a rule names).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { urls } from '../../src/api/urls.js';
import { startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.js';
import type { TestServer } from '../support/server.js';
import { Api, RegistryClient, sha256, startLifecycleServer } from './helpers.js';

describe('tag immutability', () => {
  let server: TestServer;
  let api: Api;
  let registry: RegistryClient;
  let issuer: OidcIssuer;

  before(async () => {
    issuer = await startOidcIssuer();
    server = await startLifecycleServer({ federationIssuers: [{ issuer: issuer.issuer }] });
    api = await Api.asOwner(server.url);
    registry = new RegistryClient(server.url);
    assert.equal(
      (await api.put('/lifecycle/immutability/releases', { repositories: ['imm/**'], tags: { include: ['v*', '*'], exclude: ['latest', 'dev-*'] } })).status,
      201,
    );
  });
  after(async () => {
    await server?.stop();
    await issuer?.stop();
  });

  it('lets a tag be created and re-pushed byte for byte, and refuses another digest with the rule and the first push', async () => {
    const first = await registry.image('imm/app', 'v1');
    const again = await registry.putManifest('imm/app', 'v1', first.bytes);
    assert.equal(again.status, 201, 'a CI rerun pushing the same bytes succeeds');
    const other = await registry.prepare('imm/app');
    const refused = await registry.putManifest('imm/app', 'v1', other.bytes);
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.equal(refused.body.errors[0].code, 'DENIED');
    assert.match(
      refused.body.errors[0].message,
      new RegExp(`tag v1 of imm/app is immutable \\(rule releases\\): it points at ${first.digest}, first pushed \\d{4}-.* by owner`),
    );
    assert.equal((await registry.get('imm/app', 'v1')).headers.get('docker-content-digest'), first.digest);
    // Excluded tags move freely.
    await registry.putManifest('imm/app', 'latest', first.bytes);
    assert.equal((await registry.putManifest('imm/app', 'latest', other.bytes)).status, 201);
  });

  it('refuses a push with tag parameters as a whole when one tag is immutable elsewhere', async () => {
    const one = await registry.image('imm/params', 'v2');
    const two = await registry.prepare('imm/params');
    const refused = await registry.putManifest('imm/params', two.digest, two.bytes, { tags: ['latest', 'v2', 'v3'] });
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.match(refused.body.errors[0].message, /tag v2 of imm\/params is immutable/);
    assert.deepEqual(await registry.tags('imm/params'), ['v2']);
    assert.equal((await registry.get('imm/params', two.digest)).status, 404);
    assert.equal((await registry.get('imm/params', 'v2')).headers.get('docker-content-digest'), one.digest);
  });

  it('lets exactly one of several pushes racing to create a tag win', async () => {
    const candidates = await Promise.all(Array.from({ length: 6 }, () => registry.prepare('imm/race')));
    const answers = await Promise.all(candidates.map((c) => registry.putManifest('imm/race', 'v9', c.bytes)));
    const won = answers.map((a, i) => (a.status === 201 ? i : -1)).filter((i) => i >= 0);
    assert.equal(won.length, 1, JSON.stringify(answers.map((a) => a.status)));
    for (const [i, answer] of answers.entries()) {
      if (i === won[0]) continue;
      assert.equal(answer.status, 403, JSON.stringify(answer.body));
      assert.match(answer.body.errors[0].message, /tag v9 of imm\/race is immutable \(rule releases\)/);
    }
    const winner = candidates[won[0]!]!;
    assert.equal((await registry.get('imm/race', 'v9')).headers.get('docker-content-digest'), winner.digest);
    // The losers' manifests were not written either (their transaction rolled back).
    for (const [i, c] of candidates.entries()) if (i !== won[0]) assert.equal((await registry.get('imm/race', c.digest)).status, 404);
  });

  it('re-checks write-once tags inside the push’s transaction (a push that passed the first check but lost the race)', async () => {
    const manifests = server.app.metadata.manifests;
    const row = (content: string) => ({
      repository: 'imm/direct',
      digest: sha256(content),
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      content: Buffer.from(content),
      blobs: [],
      manifests: [],
      tags: ['v1', 'other'],
      writeOnceTags: ['v1'],
    });
    assert.deepEqual(await manifests.put(row('{"first":1}'), Date.now()), { missing: [] });
    assert.deepEqual(await manifests.put(row('{"first":1}'), Date.now()), { missing: [] }, 'the same digest again');
    assert.deepEqual(await manifests.put(row('{"second":2}'), Date.now()), { missing: [], conflicts: ['v1'] });
    assert.equal(await manifests.getByDigest('imm/direct', sha256('{"second":2}')), undefined, 'nothing of the losing push was written');
    assert.equal((await manifests.getByTag('imm/direct', 'other'))?.digest, sha256('{"first":1}'), 'not even its other tags');
  });

  it('exempts fallback tags (cosign signatures, the referrers tag schema) unless a rule names them', async () => {
    const image = await registry.image('imm/signed', 'v1');
    const sig = `sha256-${image.digest.slice('sha256:'.length)}.sig`;
    await registry.image('imm/signed', sig);
    await registry.image('imm/signed', sig); // re-signing replaces the signature manifest
    assert.equal((await api.put('/lifecycle/immutability/signatures', { repositories: ['imm/signed'], tags: { include: ['sha256-*.sig'] } })).status, 201);
    const refused = await registry.putManifest('imm/signed', sig, (await registry.prepare('imm/signed')).bytes);
    assert.equal(refused.status, 403);
    assert.match(refused.body.errors[0].message, /rule signatures/);
    assert.equal((await api.delete('/lifecycle/immutability/signatures')).status, 204);
  });

  describe('bound to CI identity', () => {
    let ciToken: (claims: Record<string, unknown>) => Promise<RegistryClient>;

    before(async () => {
      const created = await api.post('/principals', {
        kind: 'service',
        name: 'ci-bot',
        grants: [
          { pattern: 'bound/**', permission: 'push' },
          { pattern: 'bound/**', permission: 'pull' },
        ],
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const trust = await api.post('/principals/ci-bot/federated-credentials', {
        name: 'github',
        preset: 'github',
        repository: 'acme/app',
        issuer: issuer.issuer,
      });
      assert.equal(trust.status, 201, JSON.stringify(trust.body));
      assert.equal(
        (
          await api.put('/lifecycle/immutability/release-tags', {
            repositories: ['bound/**'],
            tags: { include: ['v*'] },
            writers: [{ conditions: [{ claim: 'ref', glob: 'refs/tags/*' }] }, { conditions: [{ claim: 'environment', equals: 'production' }] }],
          })
        ).status,
        201,
      );
      // A CI job logs in as docker does: the client id and the job's OIDC token as the password.
      ciToken = async (claims) =>
        new RegistryClient(server.url, {
          user: 'ci-bot',
          password: await issuer.github({ repository: 'acme/app', ...claims, audience: await server.app.auth.audience.get() }),
        });
    });

    it('lets a job built from a tag create a release tag, and refuses a branch build with the reason', async () => {
      const fromBranch = await ciToken({ ref: 'refs/heads/main', run_id: '7' });
      const image = await fromBranch.prepare('bound/app');
      const refused = await fromBranch.putManifest('bound/app', 'v1.0.0', image.bytes);
      assert.equal(refused.status, 403, JSON.stringify(refused.body));
      assert.equal(
        refused.body.errors[0].message,
        'tag v1.0.0 of bound/app may be created only by the writers of immutability rule release-tags: (ref matches refs/tags/*) or (environment=production); ' +
          'this push is by ci-bot (repository=acme/app, ref=refs/heads/main, workflow=build, run_id=7, run_attempt=1, sha=a1b2c3d4e5f60718293a4b5c6d7e8f9012345678)',
      );
      // The branch build may push other tags.
      assert.equal((await fromBranch.putManifest('bound/app', 'main-7', image.bytes)).status, 201);

      const fromTag = await ciToken({ ref: 'refs/tags/v1.0.0', run_id: '8' });
      assert.equal((await fromTag.putManifest('bound/app', 'v1.0.0', image.bytes)).status, 201);
      const history = await registry.call('bound/app', 'GET', urls.api.history('bound/app', { tag: 'v1.0.0' }));
      assert.equal(history.body.pushes[0].provenance.ref, 'refs/tags/v1.0.0');

      // A deployment environment is another way in; but the tag is write-once now.
      const production = await ciToken({ ref: 'refs/heads/main', environment: 'production', run_id: '9' });
      const other = await production.prepare('bound/app');
      const moved = await production.putManifest('bound/app', 'v1.0.0', other.bytes);
      assert.equal(moved.status, 403);
      assert.match(
        moved.body.errors[0].message,
        /is immutable \(rule release-tags\): it points at sha256:[0-9a-f]{64}, first pushed .* by ci-bot \(repository=acme\/app, ref=refs\/tags\/v1\.0\.0, workflow=build, run_id=8/,
      );
      assert.equal((await production.putManifest('bound/app', 'v1.0.1', other.bytes)).status, 201);
      // A rerun of the tag build is idempotent; the owner's password login is not a writer.
      assert.equal((await fromTag.putManifest('bound/app', 'v1.0.0', image.bytes)).status, 201);
      assert.equal((await registry.putManifest('bound/app', 'v2.0.0', image.bytes)).status, 403);
    });
  });
});
