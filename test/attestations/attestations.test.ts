/**
 * Signed push attestations end to end, with real clients: a simulated CI job (a loopback OIDC
 * issuer minting GitHub-shaped tokens) logs in with its token and pushes with skopeo; Berth writes
 * the push attestation as a referrer of the image in the push's transaction; `berth verify` checks
 * it and refuses tampered, foreign-key and copied bundles; the identity-bound rules refuse pulls
 * (skopeo, podman) and pushes; a sync to a second Berth carries the attestation, which verifies
 * there with the first registry's key. Runs on both backends (`BERTH_TEST_BACKEND`).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { urls } from '../../src/api/urls.js';
import { referrerManifest, toBundle, emptyConfig } from '../../src/attestations/bundle.js';
import { signEnvelope } from '../../src/attestations/dsse.js';
import { keyHint } from '../../src/attestations/keys.js';
import { inTotoPayloadType, pushPredicateType, statementType } from '../../src/attestations/statement.js';
import { storeIdentityToken } from '../../src/client/docker-config.js';
import { ExchangeError, requireAttestationsAtBerth, type RegistryCredentials } from '../../src/kube/exchange.js';
import { bearer, postForm, tokenFor } from '../auth/helpers.js';
import { Api, runCli, type CliResult } from '../admin/helpers.js';
import { CommandError, Podman, Skopeo } from '../support/clients.js';
import { createFixtureLayout, sha256Digest, type FixtureLayout } from '../support/oci-layout.js';
import { startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';
import { loopbackEgress, pushImage, waitFor } from '../sync/helpers.js';

const bundleType = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const jwtBearer = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const releaseWorkflow = 'acme/app/.github/workflows/release.yml@refs/tags/*';

/** Rules on the first registry: acme/app's v* tags come from the release workflow; acme/locked needs any push attestation. */
const policies = [
  { name: 'release', repositories: 'acme/app', tags: 'v*', identity: { job_workflow_ref: releaseWorkflow } },
  { name: 'locked', repositories: 'acme/locked', identity: {}, enforce: { pull: true, push: false } },
];

describe('signed push attestations and identity-bound policy', () => {
  let github: OidcIssuer;
  let primary: TestServer;
  let mirror: TestServer | undefined;
  let host = '';
  let dir = '';
  let skopeo: Skopeo;
  let podman: Podman;
  const layouts: Record<string, FixtureLayout> = {};
  let released = '';

  const ownerToken = async (base: string, repository: string) =>
    String((await tokenFor(base, ownerName, ownerPassword, [`repository:${repository}:pull,push`]))['token']);

  /** A registry token bought with a GitHub Actions OIDC token of `workflow` at `ref` (client credentials with a JWT assertion). */
  async function ciToken(repository: string, workflow: string, ref: string): Promise<string> {
    const oidc = await github.github({ repository: 'acme/app', ref, job_workflow_ref: `acme/app/.github/workflows/${workflow}@${ref}` });
    const res = await postForm(primary.url, '/oauth2/token', {
      grant_type: 'client_credentials',
      client_id: 'ci-pusher',
      client_assertion_type: jwtBearer,
      client_assertion: oidc,
      service: 'berth',
      scope: `repository:${repository}:pull,push`,
    });
    const body = (await res.json()) as { access_token?: string };
    assert.equal(res.status, 200, JSON.stringify(body));
    return String(body.access_token);
  }

  async function layout(name: string): Promise<FixtureLayout> {
    layouts[name] ??= await createFixtureLayout(join(dir, name), `attestations-${name}`);
    return layouts[name];
  }

  /** The attestation referrers of `repository@digest` on `base`. */
  async function referrers(base: string, repository: string, digest: string): Promise<Array<{ digest: string; artifactType?: string }>> {
    const res = await fetch(`${base}${urls.referrers(repository, digest)}`, { headers: bearer(await ownerToken(base, repository)) });
    assert.equal(res.status, 200);
    return ((await res.json()) as { manifests: Array<{ digest: string; artifactType?: string }> }).manifests.filter((m) => m.artifactType === bundleType);
  }

  async function getJson(base: string, repository: string, path: string): Promise<{ status: number; body: any }> {
    const res = await fetch(`${base}${path}`, {
      headers: { ...bearer(await ownerToken(base, repository)), Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    return { status: res.status, body: await res.json() };
  }

  /** The bundle bytes of an attestation referrer. */
  async function bundleOf(repository: string, referrer: string): Promise<Buffer> {
    const manifest = (await getJson(primary.url, repository, urls.manifest(repository, referrer))).body;
    const res = await fetch(`${primary.url}${urls.blob(repository, manifest.layers[0].digest)}`, {
      headers: bearer(await ownerToken(primary.url, repository)),
    });
    return Buffer.from(await res.arrayBuffer());
  }

  /** Attaches `bundle` to `subject` as a Sigstore-bundle referrer, pushed by the owner over the API. */
  async function attach(repository: string, subject: { digest: string; mediaType: string; size: number }, bundle: Buffer): Promise<void> {
    const token = await ownerToken(primary.url, repository);
    for (const blob of [emptyConfig, bundle]) {
      const res = await fetch(`${primary.url}${urls.uploads(repository, { digest: sha256Digest(blob) })}`, {
        method: 'POST',
        headers: { ...bearer(token), 'Content-Type': 'application/octet-stream' },
        body: blob,
      });
      assert.equal(res.status, 201, await res.text());
    }
    const manifest = referrerManifest(bundle, subject, pushPredicateType, new Date());
    const put = await fetch(`${primary.url}${urls.manifest(repository, sha256Digest(manifest))}`, {
      method: 'PUT',
      headers: { ...bearer(token), 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest,
    });
    assert.equal(put.status, 201, await put.text());
  }

  /** `berth verify` as the owner (a saved login in a fresh docker config). */
  async function verify(server: TestServer, args: string[]): Promise<CliResult> {
    const registry = new URL(server.url).host;
    const refresh = String((await tokenFor(server.url, ownerName, ownerPassword, [], true))['refresh_token']);
    const config = await mkdtemp(join(dir, 'docker-'));
    await storeIdentityToken(registry, refresh, join(config, 'config.json'));
    return runCli(['verify', ...args], { env: { DOCKER_CONFIG: config, BERTH_REGISTRY: registry } });
  }

  const denied = (err: unknown) => err instanceof CommandError && /denied/i.test(err.stderr);

  before(async () => {
    github = await startOidcIssuer();
    primary = await startTestServer({ auth: true, federationIssuers: [{ issuer: github.issuer }], config: { attestations: { policies } } });
    host = new URL(primary.url).host;
    dir = await mkdtemp(join(tmpdir(), 'berth-attestations-'));
    skopeo = await Skopeo.create([host]);
    podman = await Podman.create([host]);
    // The owner's login for the clients' pulls.
    const auth = { auths: { [host]: { auth: Buffer.from(`${ownerName}:${ownerPassword}`).toString('base64') } } };
    for (const client of [skopeo.dir, podman.dir]) await writeFile(join(client, 'auth.json'), JSON.stringify(auth));

    const owner = await Api.asOwner(primary.url);
    const created = await owner.post('/principals', { kind: 'service', name: 'ci-pusher', grants: [{ pattern: 'acme/**', permission: 'push' }] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const trusted = await owner.post('/principals/ci-pusher/federated-credentials', {
      name: 'github',
      issuer: github.issuer,
      audiences: ['berth'],
      subject: 'repo:acme/app:*',
      conditions: [{ claim: 'repository_owner_id', equals: '1234' }],
    });
    assert.equal(trusted.status, 201, JSON.stringify(trusted.body));
  });

  after(async () => {
    await Promise.all([primary?.stop(), mirror?.stop(), github?.stop(), skopeo?.dispose(), podman?.dispose()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a federated skopeo push from the release workflow gets a signed push attestation as a referrer, with the right subject', async () => {
    const image = await layout('release');
    const token = await ciToken('acme/app', 'release.yml', 'refs/tags/v1.0.0');
    released = await skopeo.copy(`oci:${image.dir}:${image.refs.image}`, `docker://${host}/acme/app:v1.0.0`, { destRegistryToken: token });
    assert.equal(released, image.image.manifest.digest);

    const found = await referrers(primary.url, 'acme/app', released);
    assert.equal(found.length, 1, 'one attestation, written with the push');
    const manifest = (await getJson(primary.url, 'acme/app', urls.manifest('acme/app', found[0]!.digest))).body;
    assert.equal(manifest.artifactType, bundleType);
    assert.equal(manifest.subject.digest, released);
    assert.equal(manifest.layers[0].mediaType, bundleType);
    assert.equal(manifest.annotations['dev.sigstore.bundle.predicateType'], pushPredicateType);

    const bundle = JSON.parse((await bundleOf('acme/app', found[0]!.digest)).toString('utf8'));
    assert.equal(bundle.mediaType, bundleType);
    assert.match(bundle.verificationMaterial.publicKey.hint, /^[0-9a-f]{64}$/);
    assert.equal(bundle.dsseEnvelope.payloadType, inTotoPayloadType);
    const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8'));
    assert.equal(statement._type, statementType);
    assert.deepEqual(statement.subject, [{ name: `${host}/acme/app`, digest: { sha256: released.slice('sha256:'.length) } }]);
    assert.equal(statement.predicateType, pushPredicateType);
    const predicate = statement.predicate;
    assert.equal(predicate.repository, 'acme/app');
    assert.equal(predicate.tag, 'v1.0.0');
    assert.equal(predicate.principal.name, 'ci-pusher');
    assert.equal(predicate.federation.issuer, github.issuer);
    assert.equal(predicate.federation.subject, 'repo:acme/app:ref:refs/tags/v1.0.0');
    assert.deepEqual(predicate.federation.audience, ['berth']);
    assert.equal(predicate.federation.claims.job_workflow_ref, 'acme/app/.github/workflows/release.yml@refs/tags/v1.0.0');

    const keys = (await (await fetch(`${primary.url}${urls.api.attestationKeys()}`)).json()) as { keys: Array<{ hint: string; retiredAt: string | null }> };
    assert.equal(keys.keys[0]?.hint, bundle.verificationMaterial.publicKey.hint, 'the signing key is published (without a login)');
    assert.equal(keys.keys[0]?.retiredAt, null);
  });

  it('berth verify passes with the registry keys or the pinned key, and checks the identity conditions', async () => {
    const image = `${host}/acme/app:v1.0.0`;
    const passed = await verify(primary, [image, '--identity', `job_workflow_ref=${releaseWorkflow}`, '--identity', 'ref=refs/tags/*']);
    assert.equal(passed.code, 0, passed.stderr);
    assert.match(passed.stdout, /verified: .*acme\/app@sha256:/);

    const pem = await (await fetch(`${primary.url}${urls.api.attestationKey('current')}`)).text();
    const keyFile = join(dir, 'berth.pub');
    await writeFile(keyFile, pem);
    const pinned = await verify(primary, [image, '--key', keyFile, '--identity', `issuer=${github.issuer}`, '--json']);
    assert.equal(pinned.code, 0, pinned.stderr);
    const result = JSON.parse(pinned.stdout);
    assert.equal(result.digest, released);
    assert.equal(result.verified, true);
    assert.deepEqual(
      result.keys.map((k: { source: string }) => k.source),
      [keyFile],
    );

    const wrongRef = await verify(primary, [image, '--identity', 'ref=refs/heads/*']);
    assert.equal(wrongRef.code, 1);
    assert.match(wrongRef.stdout, /identity: ref does not match refs\/heads\/\*/);
    assert.match(wrongRef.stderr, /is not verified/);
  });

  it('berth verify fails for a tampered bundle, a bundle signed by another key, and an attestation copied onto another digest', async () => {
    // Three images pushed by the owner's password: no attestation of their own.
    const subjects: Record<string, { digest: string; mediaType: string; size: number }> = {};
    for (const name of ['tampered', 'foreign', 'copied']) {
      const image = await layout(name);
      await pushImage(primary.url, await ownerToken(primary.url, 'acme/other'), 'acme/other', name, image.dir, image.image.manifest);
      subjects[name] = image.image.manifest;
      assert.deepEqual(await referrers(primary.url, 'acme/other', image.image.manifest.digest), [], 'a password push is not attested (sign: federated)');
    }
    const genuine = await bundleOf('acme/app', (await referrers(primary.url, 'acme/app', released))[0]!.digest);

    // Tampered: the genuine signature over a statement re-pointed at another image.
    const tampered = JSON.parse(genuine.toString('utf8'));
    const statement = JSON.parse(Buffer.from(tampered.dsseEnvelope.payload, 'base64').toString('utf8'));
    statement.subject[0].digest.sha256 = subjects['tampered']!.digest.slice('sha256:'.length);
    tampered.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
    await attach('acme/other', subjects['tampered']!, Buffer.from(JSON.stringify(tampered)));

    // Foreign: a well-formed push attestation about the image, signed by a key Berth does not hold.
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const forged = { ...statement, subject: [{ name: `${host}/acme/other`, digest: { sha256: subjects['foreign']!.digest.slice('sha256:'.length) } }] };
    const envelope = signEnvelope(inTotoPayloadType, Buffer.from(JSON.stringify(forged)), other.privateKey);
    await attach('acme/other', subjects['foreign']!, Buffer.from(JSON.stringify(toBundle(envelope, keyHint(other.publicKey)))));

    // Copied: the genuine bundle, unchanged, attached to another digest.
    await attach('acme/other', subjects['copied']!, genuine);

    const cases: Array<[string, RegExp]> = [
      ['tampered', /does not verify with key .*altered/],
      ['foreign', /not signed by a trusted key/],
      ['copied', /about another image/],
    ];
    for (const [name, reason] of cases) {
      const result = await verify(primary, [`${host}/acme/other:${name}`, '--json']);
      assert.equal(result.code, 1, `${name}: ${result.stdout}`);
      const body = JSON.parse(result.stdout);
      assert.equal(body.verified, false);
      assert.equal(body.attestations.length, 1, name);
      assert.match(body.attestations[0].error, reason, name);
    }

    // The foreign key verifies its own bundle when it is the pinned key: keys are what is trusted.
    const foreignKey = join(dir, 'foreign.pub');
    await writeFile(foreignKey, other.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    const pinned = await verify(primary, [`${host}/acme/other:foreign`, '--key', foreignKey]);
    assert.equal(pinned.code, 0, pinned.stderr);

    // The server's view agrees (what the history and the preview show).
    const view = await getJson(primary.url, 'acme/other', urls.api.imageAttestations('acme/other', { tag: 'copied' }));
    assert.equal(view.status, 200, JSON.stringify(view.body));
    assert.equal(view.body.attestations[0].valid, false);
    assert.match(view.body.attestations[0].error, /about another image/);
  });

  it('refuses pulls (skopeo, podman) of an image pushed with a password under an attested-only rule, with the reason', async () => {
    const image = await layout('locked');
    await pushImage(primary.url, await ownerToken(primary.url, 'acme/locked'), 'acme/locked', 'v1', image.dir, image.image.manifest);

    const res = await getJson(primary.url, 'acme/locked', urls.manifest('acme/locked', 'v1'));
    assert.equal(res.status, 403);
    assert.equal(res.body.errors[0].code, 'DENIED');
    assert.match(res.body.errors[0].message, /rule locked requires a valid Berth push attestation; the image carries no valid attestation/);

    await assert.rejects(skopeo.copy(`docker://${host}/acme/locked:v1`, `oci:${join(dir, 'pulled-locked')}:x`), denied);
    await assert.rejects(podman.pull(`${host}/acme/locked:v1`), denied);
    const verified = await verify(primary, [`${host}/acme/locked:v1`]);
    assert.equal(verified.code, 1);
    assert.match(verified.stderr, /carries no attestation/);

    // The same image pushed by the CI job carries its attestation and is served.
    const token = await ciToken('acme/locked', 'build.yml', 'refs/heads/main');
    const other = await layout('locked-ci');
    await skopeo.copy(`oci:${other.dir}:${other.refs.image}`, `docker://${host}/acme/locked:ci`, { destRegistryToken: token });
    await skopeo.copy(`docker://${host}/acme/locked:ci`, `oci:${join(dir, 'pulled-ci')}:x`);
    assert.match(await podman.pull(`${host}/acme/locked:ci`), /^[0-9a-f]{64}$/);
  });

  it('refuses a release tag pushed by a password or by another workflow, and serves the released one', async () => {
    const image = await layout('rogue');
    await assert.rejects(
      pushImage(primary.url, await ownerToken(primary.url, 'acme/app'), 'acme/app', 'v9.9.9', image.dir, image.image.manifest),
      /rule release requires tag v9\.9\.9 to come from a Berth push attestation with job_workflow_ref=.*not a federated/,
    );
    const build = await ciToken('acme/app', 'build.yml', 'refs/tags/v9.9.9');
    await assert.rejects(
      skopeo.copy(`oci:${image.dir}:${image.refs.image}`, `docker://${host}/acme/app:v9.9.9`, { destRegistryToken: build }),
      (err: unknown) => denied(err),
    );
    const tags = await getJson(primary.url, 'acme/app', urls.tags('acme/app'));
    assert.deepEqual(tags.body.tags, ['v1.0.0'], 'nothing of the refused pushes is tagged');
    // The released image is served to clients (its attestation satisfies the rule).
    await skopeo.copy(`docker://${host}/acme/app:v1.0.0`, `oci:${join(dir, 'pulled-release')}:x`);
    assert.match(await podman.pull(`${host}/acme/app:v1.0.0`), /^[0-9a-f]{64}$/);
  });

  it('berth history shows the verification status next to each digest', async () => {
    const res = await getJson(primary.url, 'acme/app', urls.api.history('acme/app'));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.attestations[released], { status: 'verified', identity: 'repo:acme/app:ref:refs/tags/v1.0.0' });
  });

  it('the controller and the credential provider can mint pull credentials only for repositories that require attestations', async () => {
    const minted: string[][] = [];
    const fake: RegistryCredentials = { refreshToken: 'r', issuedAt: 0, expiresAt: 1, granted: [], missing: [] };
    const exchange = requireAttestationsAtBerth(async (_server, _token, _client, scopes) => {
      minted.push(scopes);
      return fake;
    });
    assert.equal(await exchange(host, 'sa-token', undefined, ['repository:acme/locked:pull', 'repository:acme/app:pull']), fake);
    await assert.rejects(
      exchange(host, 'sa-token', undefined, ['repository:acme/app:pull', 'repository:acme/other:pull']),
      (err: unknown) => err instanceof ExchangeError && err.failure === 'refused' && /no attestation rule enforced at pull for acme\/other/.test(err.message),
    );
    assert.deepEqual(minted, [['repository:acme/locked:pull', 'repository:acme/app:pull']], 'nothing was exchanged for the refused binding');
    const answer = await (await fetch(`${primary.url}${urls.api.attestationRequirement('acme/app')}`)).json();
    assert.deepEqual(answer, { repository: 'acme/app', required: true, rules: ['release'] });
  });

  it('travels with sync and import: the copy on a second Berth verifies with the first registry key, and its rule accepts it', async () => {
    const keys = (await (await fetch(`${primary.url}${urls.api.attestationKeys()}`)).json()) as { keys: Array<{ publicKeyPem: string }> };
    const berthKey = keys.keys[0]!.publicKeyPem;
    mirror = await startTestServer({
      auth: true,
      config: {
        egress: loopbackEgress,
        sync: { workerIntervalMs: 100, minPollIntervalMs: 50 },
        // The mirror trusts the first registry's attestation key for everything it mirrors.
        attestations: { policies: [{ name: 'from-primary', repositories: 'mirror/**', keys: [berthKey] }] },
      },
    });
    const api = await Api.asOwner(mirror.url);
    const rule = await api.post('/sync/rules', {
      name: 'primary',
      source: { url: primary.url, credentials: { kind: 'basic', username: ownerName, password: ownerPassword } },
      repositories: ['acme/app'],
      destinationPrefix: 'mirror/',
      triggers: { pollIntervalMs: 200 },
    });
    assert.equal(rule.status, 201, JSON.stringify(rule.body));
    const mirrored = 'mirror/acme/app';
    await waitFor('the copy', async () => {
      const res = await fetch(`${mirror!.url}${urls.manifest(mirrored, 'v1.0.0')}`, {
        method: 'HEAD',
        headers: { ...bearer(await ownerToken(mirror!.url, mirrored)), Accept: 'application/vnd.oci.image.manifest.v1+json' },
      });
      return res.status === 200 ? true : undefined;
    });
    const copied = await referrers(mirror.url, mirrored, released);
    assert.equal(copied.length, 1, 'the attestation came along');

    const keyFile = join(dir, 'primary.pub');
    await writeFile(keyFile, berthKey);
    const verified = await verify(mirror, [
      `${new URL(mirror.url).host}/${mirrored}:v1.0.0`,
      '--key',
      keyFile,
      '--identity',
      `job_workflow_ref=${releaseWorkflow}`,
    ]);
    assert.equal(verified.code, 0, verified.stderr + verified.stdout);

    const view = await getJson(mirror.url, mirrored, urls.api.imageAttestations(mirrored, { tag: 'v1.0.0' }));
    assert.equal(view.body.attestations[0].valid, true);
    assert.equal(view.body.attestations[0].berth, false, "signed by the primary's key, not the mirror's");
    assert.deepEqual(view.body.pull, { allowed: true, rule: 'from-primary', reason: null });

    // An import without referrers asked for still brings the attestation along.
    const submitted = await api.post('/import', {
      source: { registryUri: primary.url, sourceImage: 'acme/app:v1.0.0', credentials: { username: ownerName, password: ownerPassword } },
      targetTags: ['imported/app:v1.0.0'],
      includeReferrers: false,
    });
    assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
    const job = await waitFor('the import', async () => {
      const res = await api.get(`/imports/${submitted.body.id}`);
      return res.body.status === 'succeeded' || res.body.status === 'failed' ? res.body : undefined;
    });
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    assert.equal((await referrers(mirror.url, 'imported/app', released)).length, 1);
    const imported = await verify(mirror, [`${new URL(mirror.url).host}/imported/app:v1.0.0`, '--key', keyFile]);
    assert.equal(imported.code, 0, imported.stderr + imported.stdout);
  });
});
