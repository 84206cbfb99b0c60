/**
 * The import API's rules: who may import (an owner, or push on every target repository), who sees
 * which job, what bad input gets, NoForce before copying, the egress policy at submission, and
 * source credentials that are used but never shown.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertError } from '../admin/helpers.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';
import { bearerFor, makeImage, pushImage } from './fixtures.js';
import { Api, apiAs, importOk, ownerApi, startImportServer, submit, waitForJob } from './helpers.js';
import { startHostileRegistry, type HostileRegistry } from './hostile-registry.js';

describe('/api/v1/import', () => {
  let source: HostileRegistry;
  let target: TestServer;
  let owner: Api;
  let teamPusher: Api;
  const image = makeImage({ platforms: 2, layers: 1 });

  const body = (targetTags: string[], extra: Record<string, unknown> = {}) => ({
    source: { registryUri: source.host, sourceImage: 'vendor/app:1.0' },
    targetTags,
    ...extra,
  });

  before(async () => {
    source = await startHostileRegistry();
    source.serve('vendor/app', image, ['1.0']);
    target = await startImportServer({ auth: true });
    owner = await ownerApi(target);
    await target.app.auth.principals.createPrincipal('user', 'team-ci', { grants: [{ pattern: 'team/**', permission: 'push' }], secret: 'team-ci-password' });
    teamPusher = await apiAs(target, 'team-ci', 'team-ci-password', ['repository:team/app:pull,push', 'repository:other/app:pull,push', 'registry:admin:*']);
  });
  after(async () => {
    await source.stop();
    await target.stop();
  });

  describe('authorization', () => {
    it('needs a token: 401 with a Bearer challenge without one', async () => {
      const res = await new Api(target.url, undefined).post('/import', body(['team/app:1.0']));
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm=/);
    });

    it('lets a principal with push on the target import, and records it as the pusher', async () => {
      const job = await importOk(teamPusher, body(['team/app:1.0']));
      assert.equal(job.requestedBy?.name, 'team-ci');
      const [push] = await target.app.metadata.manifests.history('team/app', { tag: '1.0', limit: 1 });
      assert.equal(push?.principalName, 'team-ci');
      assert.deepEqual(push?.provenance, { import: { job: job.id, source: `${source.host}/vendor/app@${image.root.digest}` } });
    });

    it('refuses with 403 DENIED a target the principal may not push to, before queuing anything', async () => {
      const res = await teamPusher.post('/import', body(['team/app:2.0', 'other/app:1.0']));
      assertError(res, 403, 'DENIED', /team-ci may not push to other\/app/);
      assert.deepEqual(
        (await teamPusher.get('/imports')).body.imports.map((j: { targets: Array<{ repository: string }> }) => j.targets[0]?.repository),
        ['team/app'],
      );
    });

    it('refuses a token without push scope on the target even when the principal has the grant', async () => {
      const pullOnly = await apiAs(target, 'team-ci', 'team-ci-password', ['repository:team/app:pull']);
      assertError(await pullOnly.post('/import', body(['team/app:3.0'])), 403, 'DENIED');
    });

    it('shows a principal only its own jobs; owners see all', async () => {
      const mine = await importOk(owner, body(['owned/app:1.0']));
      assertError(await teamPusher.get(`/imports/${mine.id}`), 404, 'NAME_UNKNOWN');
      assertError(await teamPusher.post(`/imports/${mine.id}/retry`, {}), 404, 'NAME_UNKNOWN');
      const listed = (await teamPusher.get('/imports')).body.imports as Array<{ requestedBy: { name: string } }>;
      assert.ok(listed.length > 0 && listed.every((j) => j.requestedBy.name === 'team-ci'));
      const all = (await owner.get('/imports?limit=50')).body.imports as Array<{ requestedBy: { name: string } }>;
      assert.ok(all.some((j) => j.requestedBy.name === 'owner') && all.some((j) => j.requestedBy.name === 'team-ci'));
      const audit = await target.app.metadata.auth.audit.list({ limit: 20 });
      assert.ok(audit.some((e) => e.event === 'import.created' && JSON.stringify(e.detail).includes(mine.id)));
    });
  });

  describe('bad input', () => {
    // Built before the source starts: validation fails before anything is fetched.
    const body = (targetTags: string[], extra: Record<string, unknown> = {}) => ({
      source: { registryUri: 'registry.example.com', sourceImage: 'vendor/app:1.0' },
      targetTags,
      ...extra,
    });
    const cases: Array<[string, unknown, RegExp]> = [
      ['a body that is not JSON', '{nope', /not valid JSON/],
      ['an unknown field', { ...body(['x/app:1']), extra: true }, /extra/],
      ['a missing sourceImage', { source: { registryUri: 'example.com' } }, /sourceImage/],
      ['an invalid source reference', { source: { registryUri: 'example.com', sourceImage: 'Bad Name:1' } }, /invalid/],
      ['an invalid registry', { source: { registryUri: 'not a host', sourceImage: 'a:1' } }, /registry address/],
      ['a target tag with a digest', body([`x/app@sha256:${'a'.repeat(64)}`]), /digest/],
      ['an unknown mode', body(['x/app:1'], { mode: 'Sometimes' }), /mode/],
      ['credentials without a password', { source: { registryUri: 'example.com', sourceImage: 'a:1', credentials: { username: 'u' } } }, /credentials/],
    ];
    for (const [what, input, message] of cases) {
      it(`refuses ${what} with 400 INVALID_REQUEST`, async () => {
        assertError(await owner.post('/import', input), 400, 'UNSUPPORTED', message);
      });
    }

    it('answers 404 for an unknown job and 400 for an unknown status filter', async () => {
      assertError(await owner.get('/imports/00000000-0000-4000-8000-000000000000'), 404, 'NAME_UNKNOWN');
      assertError(await owner.get('/imports/not-a-job'), 404, 'NAME_UNKNOWN');
      assertError(await owner.get('/imports?status=dancing'), 400, 'UNSUPPORTED');
    });
  });

  describe('NoForce and Force', () => {
    it('NoForce fails with TAG_EXISTS before copying anything when a target tag points elsewhere', async () => {
      const mine = makeImage({ platforms: 0 });
      await pushImage(target.url, 'held/app', '1.0', mine, await bearerFor(target.url, ownerName, ownerPassword, 'repository:held/app:pull,push'));
      const before = source.count('GET', `/v2/vendor/app/blobs/${image.blobs[0]!.digest}`);
      const job = await waitForJob(owner, (await submit(owner, body(['held/app:1.0', 'fresh/app:1.0']))).id);
      assert.equal(job.status, 'failed');
      assert.equal(job.error?.code, 'TAG_EXISTS');
      assert.match(job.error?.message ?? '', /held\/app:1\.0 already exists.*Force/);
      assert.equal(source.count('GET', `/v2/vendor/app/blobs/${image.blobs[0]!.digest}`), before, 'no blob was downloaded');
      assert.equal(await target.app.metadata.repositories.exists('fresh/app'), false, 'not even the other target');
      assert.equal((await target.app.metadata.manifests.getByTag('held/app', '1.0'))?.digest, mine.root.digest);

      const forced = await importOk(owner, body(['held/app:1.0'], { mode: 'Force' }));
      assert.equal(forced.mode, 'Force');
      assert.equal((await target.app.metadata.manifests.getByTag('held/app', '1.0'))?.digest, image.root.digest);
    });

    it('NoForce accepts a tag that already points at the image (a repeated import is idempotent)', async () => {
      await importOk(owner, body(['same/app:1.0']));
      const again = await importOk(owner, body(['same/app:1.0']));
      assert.equal(again.result?.blobsCopied, 0);
    });
  });

  describe('source credentials', () => {
    it('keeps them only for the job, never shows them, and takes new ones on retry', async () => {
      const auth = `Basic ${Buffer.from('vendor:right-password').toString('base64')}`;
      source.requireAuthorization = auth;
      try {
        const submitted = await owner.post(
          '/import',
          body(['creds/app:1.0'], {
            source: { registryUri: source.host, sourceImage: 'vendor/app:1.0', credentials: { username: 'vendor', password: 'wrong-password' } },
          }),
        );
        assert.equal(submitted.status, 202);
        assert.equal(JSON.stringify(submitted.body).includes('wrong-password'), false);
        const failed = await waitForJob(owner, submitted.body.id);
        assert.equal(failed.error?.code, 'UPSTREAM_DENIED');
        assert.equal(failed.credentials, 'request', 'kept for a retry');
        const listed = await owner.get('/imports');
        assert.equal(JSON.stringify(listed.body).includes('wrong-password'), false);

        assertError(await owner.post(`/imports/${failed.id}/retry`, { credentials: { username: 'vendor' } }), 400, 'UNSUPPORTED');
        const retried = await owner.post(`/imports/${failed.id}/retry`, { credentials: { username: 'vendor', password: 'right-password' } });
        assert.equal(retried.status, 202, JSON.stringify(retried.body));
        const done = await waitForJob(owner, failed.id);
        assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
        assert.equal(done.credentials, 'server', 'forgotten after success');
      } finally {
        source.requireAuthorization = undefined;
      }
    });
  });

  it('refuses a loopback source with 400 EGRESS_REFUSED unless the egress policy allows it', async () => {
    const strict = await startTestServer({ auth: true });
    try {
      const api = await ownerApi(strict);
      assertError(await api.post('/import', body(['x/app:1.0'])), 400, 'DENIED', /loopback/);
      assert.deepEqual((await api.get('/imports')).body.imports, [], 'nothing was queued');
    } finally {
      await strict.stop();
    }
  });
});
