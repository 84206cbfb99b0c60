/**
 * Scenarios every supported client can perform, written once and registered
 * per client: the registry scenarios by skopeo.test.ts and podman.test.ts, the
 * login scenarios (Berth with auth on) by auth-clients.test.ts for skopeo,
 * podman, and `berth login` / docker-credential-berth followed by either.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Skopeo } from '../support/clients.js';
import { MEDIA_TYPES } from '../support/oci-layout.js';
import type { ImageFixture } from '../support/oci-layout.js';
import type { ClientDriver, DriverFactory, LoginDriver, LoginDriverFactory, PulledImage, Transfer } from './client-drivers.js';
import type { ExecResult } from '../support/exec.js';
import { described } from '../support/exec.js';
import type { FixtureLayout } from '../support/oci-layout.js';
import { describeResponse, getManifest, httpGet, sha256, uniqueRepo } from './harness.js';
import type { E2eContext, Target } from './harness.js';

export function describeSharedClientScenarios(factory: DriverFactory, ctx: () => E2eContext): void {
  describeSingleImageRoundTrip(factory, ctx);
  describeMultiArchPull(factory, ctx);
}

/** Push from a layout, pull back by digest, list tags, copy to another tag and repository. */
function describeSingleImageRoundTrip(factory: DriverFactory, ctx: () => E2eContext): void {
  describe(`${factory.name}: a single-platform image`, () => {
    let client: ClientDriver | undefined;
    const repo = uniqueRepo(factory.name, 'single');
    const otherRepo = uniqueRepo(factory.name, 'single-copy');
    /** Set by the push test; later tests in this suite build on it. */
    let pushed: string | undefined;

    before(async () => {
      client = await factory.create(ctx().target.host);
    });
    after(async () => {
      await client?.dispose();
    });
    const use = (): { client: ClientDriver; target: Target; image: ImageFixture; digest: string } => {
      assert.ok(client, 'client driver was not created');
      assert.ok(pushed, 'depends on the push test, which did not complete');
      return { client, target: ctx().target, image: ctx().fixtures.image, digest: pushed };
    };

    it('is pushed from an OCI layout, and the registry serves the tag with the digest the client reported', async () => {
      assert.ok(client);
      const { target, fixtures } = ctx();
      pushed = await client.pushFromLayout(fixtures.dir, fixtures.refs.image, `${target.host}/${repo}:v1`);
      assert.match(pushed, /^sha256:[a-f0-9]{64}$/);
      if (client.preservesManifestBytes) assert.equal(pushed, fixtures.image.manifest.digest);

      const head = await getManifest(target, repo, 'v1', 'HEAD');
      assert.equal(head.status, 200, describeResponse(`HEAD /v2/${repo}/manifests/v1`, head));
      assert.equal(head.headers.get('docker-content-digest'), pushed);
      await assertManifestByDigest(target, repo, pushed, fixtures.image.config.digest);
    });

    it('is pulled back by digest with the same manifest digest and the same config (image ID)', async () => {
      const { client, target, image, digest } = use();
      const pulled = await client.pull(`${target.host}/${repo}@${digest}`);
      assert.ok(pulled.manifestDigests.includes(digest), `pulled ${pulled.manifestDigests.join(', ')}, want ${digest}`);
      assert.equal(pulled.configDigest, image.config.digest);
    });

    it('is tagged again within the repository, and both tags are listed', async () => {
      const { client, target, image, digest } = use();
      await client.copyWithinRegistry(`${target.host}/${repo}@${digest}`, `${target.host}/${repo}:v2`);
      const v2 = await resolveTag(target, repo, 'v2', image.config.digest);
      if (client.preservesManifestBytes) assert.equal(v2, digest);
      assert.deepEqual((await client.listTags(`${target.host}/${repo}`)).sort(), ['v1', 'v2']);
    });

    it('is copied into a second repository of the same registry and resolves there to the same image', async () => {
      const { client, target, image, digest } = use();
      await client.copyWithinRegistry(`${target.host}/${repo}@${digest}`, `${target.host}/${otherRepo}:copy`);
      const copied = await resolveTag(target, otherRepo, 'copy', image.config.digest);
      if (client.preservesManifestBytes) assert.equal(copied, digest);
      assert.deepEqual(await client.listTags(`${target.host}/${otherRepo}`), ['copy']);
    });
  });
}

/** A multi-arch index is seeded with skopeo (`--all`); each client pulls one platform out of it. */
function describeMultiArchPull(factory: DriverFactory, ctx: () => E2eContext): void {
  describe(`${factory.name}: one platform of a multi-arch index`, () => {
    let client: ClientDriver | undefined;
    const repo = uniqueRepo(factory.name, 'multiarch');

    before(async () => {
      const { target, fixtures } = ctx();
      client = await factory.create(target.host);
      const seeder = await Skopeo.create([target.host]);
      try {
        const src = `oci:${fixtures.dir}:${fixtures.refs.index}`;
        await seeder.copy(src, `docker://${target.host}/${repo}:multi`, { all: true });
      } finally {
        await seeder.dispose();
      }
    });
    after(async () => {
      await client?.dispose();
    });

    for (const arch of ['amd64', 'arm64']) {
      it(`is pulled by the index digest for linux/${arch}, yielding that platform's manifest and config`, async () => {
        assert.ok(client);
        const { target, fixtures } = ctx();
        const image = fixtures.index.images.find((img) => img.platform.architecture === arch);
        assert.ok(image, `fixture has no ${arch} image`);
        const indexDigest = fixtures.index.index.digest;
        const pulled = await client.pull(`${target.host}/${repo}@${indexDigest}`, image.platform);
        assert.ok(
          pulled.manifestDigests.includes(image.manifest.digest),
          `pulled ${pulled.manifestDigests.join(', ')}, want the ${arch} manifest ${image.manifest.digest}`,
        );
        assert.equal(pulled.configDigest, image.config.digest);
      });
    }
  });
}

// ---------------------------------------------------------------------------
// Logins to Berth with auth on

/** A Berth process with auth on, and who may do what there (set up by auth-clients.test.ts). */
export interface LoginContext {
  /** `127.0.0.1:<port>` */
  host: string;
  layout: FixtureLayout;
  owner: { name: string; password: string };
  /** A refresh token of the owner (`berth token --expose`): the password of the null-GUID user. */
  refreshToken: string;
  /** A user granted pull on both seeded repositories, nothing else. */
  puller: { name: string; password: string };
  /** A token granted pull on `seeded.granted` only. */
  repoToken: { name: string; password: string };
  /** Repositories holding the fixture image (pushed as the owner). */
  seeded: { granted: string; other: string };
}

/** The null-GUID user: its password is a refresh token. */
export const refreshTokenUser = '00000000-0000-0000-0000-000000000000';

/** What a client prints when the registry refuses it the repository. */
const accessDenied = /requested access to the resource is denied/;

/**
 * Log in, push, pull, log out and be refused, for one way of logging in. Each test gets a fresh
 * driver (its own config, auth files and storage), so no test depends on another.
 */
export function describeSharedLoginScenarios(factory: LoginDriverFactory, ctx: () => LoginContext): void {
  describe(`${factory.name}: logins against Berth with auth on`, () => {
    const drivers: LoginDriver[] = [];
    after(async () => {
      await Promise.all(drivers.map((d) => d.dispose()));
    });
    const loggedIn = async (username: string, password: string): Promise<LoginDriver> => {
      const driver = await factory.create(ctx().host);
      drivers.push(driver);
      const result = await driver.login(username, password);
      assert.equal(result.code, 0, described(`${factory.name} login as ${username}`, result));
      assert.equal(result.stdout, driver.says.loggedIn);
      assert.ok((await driver.stored()) !== undefined, `${factory.name} login stored nothing`);
      return driver;
    };
    const repo = (what: string) => uniqueRepo('auth', factory.label, what);

    it('logs in with a password, then pushes and pulls the image', async () => {
      const { host, layout, owner } = ctx();
      const driver = await loggedIn(owner.name, owner.password);
      await assertPushAndPull(driver, layout, `${host}/${repo('password')}:v1`);
    });

    it('logs in as the null-GUID user with a refresh token as password, then pushes and pulls the image', async () => {
      const { host, layout, refreshToken } = ctx();
      const driver = await loggedIn(refreshTokenUser, refreshToken);
      await assertPushAndPull(driver, layout, `${host}/${repo('null-guid')}:v1`);
    });

    it('refuses a wrong password: the login fails, says so, and stores nothing', async () => {
      const { host, owner } = ctx();
      const driver = await factory.create(host);
      drivers.push(driver);
      const result = await driver.login(owner.name, `not-${owner.password}`);
      assert.equal(result.code, driver.says.failureExit, described(`${factory.name} login with a wrong password`, result));
      assert.match(result.stderr, driver.says.refused);
      assert.equal(result.stdout, '');
      assert.equal(await driver.stored(), undefined, 'a refused login was stored');
    });

    it('logs out: the login is gone, a pull and a push are refused, and a second logout says there is no login', async () => {
      const { host, layout, owner, seeded } = ctx();
      const driver = await loggedIn(owner.name, owner.password);
      const logout = await driver.logout();
      assert.equal(logout.code, 0, described(`${factory.name} logout`, logout));
      assert.equal(logout.stdout, driver.says.loggedOut);
      assert.equal(await driver.stored(), undefined, 'the login is still stored');
      const pulled = await driver.pull(`${host}/${seeded.granted}:v1`);
      assert.notEqual(pulled.result.code, 0, 'pulled a private repository after logout');
      assert.match(pulled.result.stderr, accessDenied);
      const push = await driver.push(layout, `${host}/${repo('logged-out')}:v1`);
      assert.notEqual(push.code, 0, 'pushed after logout');
      assert.match(push.stderr, accessDenied);
      const again = await driver.logout();
      assert.match(again.stdout + again.stderr, driver.says.notLoggedIn);
    });

    it('a pull-only user pulls, and its push is refused (insufficient scope)', async () => {
      const { host, layout, puller, seeded } = ctx();
      const driver = await loggedIn(puller.name, puller.password);
      assertImage(driver, layout, (await pulledImage(driver, `${host}/${seeded.granted}:v1`)).image);
      const push = await driver.push(layout, `${host}/${repo('by-puller')}:v1`);
      assert.notEqual(push.code, 0, 'a pull-only user pushed');
      assert.match(push.stderr, accessDenied);
    });

    it('a token for one repository pulls it, and its pull of another is refused (insufficient scope)', async () => {
      const { host, layout, repoToken, seeded } = ctx();
      const driver = await loggedIn(repoToken.name, repoToken.password);
      assertImage(driver, layout, (await pulledImage(driver, `${host}/${seeded.granted}:v1`)).image);
      const other = await driver.pull(`${host}/${seeded.other}:v1`);
      assert.notEqual(other.result.code, 0, 'a token for one repository pulled another');
      assert.match(other.result.stderr, accessDenied);
    });
  });
}

async function pulledImage(driver: Transfer, ref: string): Promise<{ result: ExecResult; image: PulledImage | undefined }> {
  const pulled = await driver.pull(ref);
  assert.equal(pulled.result.code, 0, described(`${driver.name}: pull ${ref}`, pulled.result));
  return pulled;
}

/** The pulled image is the fixture image: same config (image ID), and same manifest where bytes are kept. */
export function assertImage(driver: Transfer, layout: FixtureLayout, image: PulledImage | undefined): void {
  assert.ok(image, `${driver.name} pulled no image`);
  assert.equal(image.configDigest, layout.image.config.digest);
  if (driver.preservesManifestBytes) assert.deepEqual(image.manifestDigests, [layout.image.manifest.digest]);
}

/** `driver` pushes the fixture image to `ref` and pulls it back from the registry. */
export async function assertPushAndPull(driver: Transfer, layout: FixtureLayout, ref: string): Promise<void> {
  const push = await driver.push(layout, ref);
  assert.equal(push.code, 0, described(`${driver.name}: push ${ref}`, push));
  assertImage(driver, layout, (await pulledImage(driver, ref)).image);
}

// ---------------------------------------------------------------------------

/**
 * GET the manifest by digest: 200, body hashes to the digest, OCI content
 * type, and its config blob is served with the expected digest.
 */
export async function assertManifestByDigest(target: Target, repo: string, digest: string, configDigest: string): Promise<void> {
  const res = await getManifest(target, repo, digest);
  const label = `GET /v2/${repo}/manifests/${digest}`;
  assert.equal(res.status, 200, describeResponse(label, res));
  assert.equal(sha256(res.body), digest, `${label}: body does not hash to its digest`);
  assert.equal(res.headers.get('content-type'), MEDIA_TYPES.imageManifest, describeResponse(label, res));
  const manifest = JSON.parse(res.body.toString('utf8')) as { config: { digest: string } };
  assert.equal(manifest.config.digest, configDigest);

  const blob = await httpGet(`${target.url}/v2/${repo}/blobs/${configDigest}`, '*/*');
  assert.equal(blob.status, 200, describeResponse(`GET /v2/${repo}/blobs/${configDigest}`, blob));
  assert.equal(sha256(blob.body), configDigest);
}

/** HEAD a tag, check its manifest's config, and return the digest it resolves to. */
async function resolveTag(target: Target, repo: string, tag: string, configDigest: string): Promise<string> {
  const head = await getManifest(target, repo, tag, 'HEAD');
  assert.equal(head.status, 200, describeResponse(`HEAD /v2/${repo}/manifests/${tag}`, head));
  const digest = head.headers.get('docker-content-digest');
  assert.ok(digest, describeResponse(`HEAD /v2/${repo}/manifests/${tag} has no Docker-Content-Digest`, head));
  await assertManifestByDigest(target, repo, digest, configDigest);
  return digest;
}
