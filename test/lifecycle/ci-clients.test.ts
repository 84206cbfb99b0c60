/**
 * Release tags bound to CI identity, with real clients: simulated GitHub Actions jobs (OIDC tokens
 * from the loopback issuer, shaped like Actions' own) log in to Berth as docker does (the service
 * principal's client id, the job's OIDC token as the password) and push with skopeo and podman. A
 * job built from a tag creates the release tag, a rerun of it succeeds, a branch build is refused
 * with the rule's reason, and another image for an existing release tag is refused naming the run
 * that pushed it first.
 */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeLowercaseTempDir } from '../e2e/harness.js';
import { CommandError, Podman, Skopeo } from '../support/clients.js';
import { createFixtureLayout, type FixtureLayout } from '../support/oci-layout.js';
import { startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.js';
import type { TestServer } from '../support/server.js';
import { Api, RegistryClient, startLifecycleServer } from './helpers.js';

describe('release tags bound to CI identity, pushed by skopeo and podman', () => {
  let issuer: OidcIssuer;
  let server: TestServer;
  let host: string;
  let dir: string;
  let one: FixtureLayout;
  let two: FixtureLayout;
  let skopeo: Skopeo;
  let podman: Podman;

  before(async () => {
    issuer = await startOidcIssuer();
    server = await startLifecycleServer({ federationIssuers: [{ issuer: issuer.issuer }] });
    host = new URL(server.url).host;
    const api = await Api.asOwner(server.url);
    const created = await api.post('/principals', {
      kind: 'service',
      name: 'ci-bot',
      grants: [
        { pattern: 'app/**', permission: 'push' },
        { pattern: 'app/**', permission: 'pull' },
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
    const rule = await api.put('/lifecycle/immutability/releases', {
      repositories: ['app/**'],
      tags: { include: ['v*'] },
      writers: [{ conditions: [{ claim: 'ref', glob: 'refs/tags/v*' }] }],
    });
    assert.equal(rule.status, 201, JSON.stringify(rule.body));
    // podman names an image pulled from a layout after its directory: lower case only.
    dir = await makeLowercaseTempDir('lifecycle-ci');
    one = await createFixtureLayout(join(dir, 'one'), 'release-one');
    two = await createFixtureLayout(join(dir, 'two'), 'release-two');
    skopeo = await Skopeo.create([host]);
    podman = await Podman.create([host]);
  });
  after(async () => {
    await skopeo?.dispose();
    await podman?.dispose();
    await server?.stop();
    await issuer?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The job's login, as `docker login -u ci-bot -p $OIDC_TOKEN` leaves it in the client's auth file. */
  async function ciJob(client: { dir: string }, claims: { ref: string; run_id: string }): Promise<void> {
    const token = await issuer.github({ repository: 'acme/app', ...claims, audience: await server.app.auth.audience.get() });
    await writeFile(join(client.dir, 'auth.json'), JSON.stringify({ auths: { [host]: { auth: Buffer.from(`ci-bot:${token}`).toString('base64') } } }));
  }

  async function refused(action: Promise<unknown>): Promise<string> {
    try {
      await action;
    } catch (err) {
      if (err instanceof CommandError) return err.stderr;
      throw err;
    }
    assert.fail('the push succeeded');
  }

  it('lets the tag build push the release tag, and a rerun of it', async () => {
    await ciJob(skopeo, { ref: 'refs/tags/v1.0.0', run_id: '101' });
    const digest = await skopeo.copy(`oci:${one.dir}:${one.refs.image}`, `docker://${host}/app/web:v1.0.0`);
    assert.equal(digest, one.image.manifest.digest);
    assert.equal(await skopeo.copy(`oci:${one.dir}:${one.refs.image}`, `docker://${host}/app/web:v1.0.0`), digest, 'a rerun pushes the same bytes: allowed');
  });

  it('refuses a branch build’s release tag with the rule’s reason (skopeo)', async () => {
    await ciJob(skopeo, { ref: 'refs/heads/main', run_id: '102' });
    const stderr = await refused(skopeo.copy(`oci:${two.dir}:${two.refs.image}`, `docker://${host}/app/web:v1.0.1`));
    assert.match(stderr, /denied/i);
    assert.match(stderr, /may be created only by the writers of immutability rule releases/);
    assert.match(stderr, /ref=refs\/heads\/main/);
    // The branch build may push its own tags.
    await skopeo.copy(`oci:${two.dir}:${two.refs.image}`, `docker://${host}/app/web:main-102`);
  });

  it('refuses another image for an existing release tag, naming the run that pushed it (podman)', async () => {
    const id = await podman.pull(`oci:${two.dir}:${two.refs.image}`);
    await ciJob(podman, { ref: 'refs/tags/v1.0.0', run_id: '103' });
    const stderr = await refused(podman.push(id, `${host}/app/web:v1.0.0`));
    assert.match(stderr, /denied/i);
    assert.match(stderr, /tag v1\.0\.0 of app\/web is immutable \(rule releases\)/);
    assert.match(stderr, /run_id=101/);
    // A new release from its own tag build goes through.
    await ciJob(podman, { ref: 'refs/tags/v1.1.0', run_id: '104' });
    await podman.push(id, `${host}/app/web:v1.1.0`);
  });

  it('leaves the tags as the allowed pushes set them', async () => {
    const registry = new RegistryClient(server.url);
    assert.deepEqual(await registry.tags('app/web'), ['main-102', 'v1.0.0', 'v1.1.0']);
    assert.equal((await registry.get('app/web', 'v1.0.0')).headers.get('docker-content-digest'), one.image.manifest.digest);
  });
});
