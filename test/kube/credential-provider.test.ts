/**
 * `berth-credential-provider`, the kubelet's exec plugin, fed the CredentialProviderRequest a
 * kubelet in service-account-token mode sends: the image, a real TokenRequest token of the pod's
 * service account for the registry's audience (from a real kube-apiserver), and that account's
 * annotations. Its answer is used by skopeo the way the container runtime would use it.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { refreshTokenUser } from '../../src/remote/tokens.js';
import { REPO_ROOT } from '../support/berth-process.js';
import { described, exec, type ExecResult } from '../support/exec.js';
import { startKubeApiServer, type KubeApiServer } from '../support/kube-apiserver.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { Cluster, federatedPuller, SkopeoBox } from './helpers.js';

const provider = join(REPO_ROOT, 'src', 'bin', 'berth-credential-provider.ts');
const apiVersion = 'credentialprovider.kubelet.k8s.io/v1';

interface Response {
  apiVersion: string;
  kind: string;
  cacheKeyType: string;
  cacheDuration: string;
  auth: Record<string, { username: string; password: string }>;
}

function claims(jwt: string): { iat: number; exp: number } {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iat: number; exp: number };
}

describe('berth-credential-provider (kubelet exec plugin, service-account token mode)', () => {
  let kube: KubeApiServer;
  let berth: TestServer;
  let host = '';
  let skopeo: SkopeoBox;
  let token = '';
  const annotations = { 'berth.dev/client-id': 'node-puller' };

  const runProvider = (request: unknown, args: string[] = ['--allowed-registry', host]): Promise<ExecResult> =>
    exec(process.execPath, ['--import', 'tsx', provider, ...args], { ...process.env }, typeof request === 'string' ? request : JSON.stringify(request));

  const request = (image: string, extra: Record<string, unknown> = {}) => ({
    apiVersion,
    kind: 'CredentialProviderRequest',
    image,
    serviceAccountToken: token,
    serviceAccountAnnotations: annotations,
    ...extra,
  });

  before(async () => {
    kube = await startKubeApiServer({ anonymousDiscovery: true });
    berth = await startTestServer({ auth: true, federationIssuers: [{ issuer: kube.issuer, caFile: kube.caFile }] });
    host = new URL(berth.url).host;
    skopeo = await SkopeoBox.create('kube-credential-provider');
    await skopeo.push(host, 'team/app');
    await skopeo.push(host, 'team/other');
    await federatedPuller(berth, kube, 'node-puller', [{ pattern: 'team/app', permission: 'pull' }], 'apps', 'web');
    const cluster = new Cluster(kube);
    await cluster.namespace('apps');
    await cluster.serviceAccount('apps', 'web');
    // What the kubelet does for tokenAttributes.serviceAccountTokenAudience: the registry's audience.
    token = await kube.token('apps', 'web', [await berth.app.auth.audience.get()], 3600);
  });

  after(async () => {
    await skopeo?.dispose();
    await berth?.stop();
    await kube?.stop();
  });

  it('answers with registry credentials cached for half their lifetime, which pull the image', async () => {
    const result = await runProvider(request(`${host}/team/app:v1`));
    assert.equal(result.code, 0, described('berth-credential-provider', result));
    const response = JSON.parse(result.stdout) as Response;
    assert.equal(response.apiVersion, apiVersion);
    assert.equal(response.kind, 'CredentialProviderResponse');
    // The credentials pull team/app only: cached for this image, offered for this repository.
    assert.equal(response.cacheKeyType, 'Image');
    assert.deepEqual(Object.keys(response.auth), [`${host}/team/app`]);
    const entry = response.auth[`${host}/team/app`];
    assert.ok(entry);
    assert.equal(entry.username, refreshTokenUser);
    const { iat, exp } = claims(entry.password);
    assert.ok(exp <= claims(token).exp, 'the credentials never outlive the service-account token');
    const seconds = Number(/^(\d+)s$/.exec(response.cacheDuration)?.[1]);
    assert.ok(
      seconds > 0 && seconds * 2 <= exp - iat && seconds * 2 >= exp - iat - 60,
      `cacheDuration ${response.cacheDuration} for a lifetime of ${exp - iat} s`,
    );
    assert.equal(result.stderr, '');

    // The runtime turns username/password into Basic auth: a dockerconfigjson with `auth` does the same for skopeo.
    const auth = Buffer.from(`${entry.username}:${entry.password}`).toString('base64');
    const pulled = await skopeo.pull(host, 'team/app', { auths: { [host]: { auth } } });
    assert.equal(pulled.code, 0, pulled.stderr);
    // What a registry-wide cache entry would have handed to another image of the registry: refused.
    const other = await skopeo.pull(host, 'team/other', { auths: { [host]: { auth } } });
    assert.notEqual(other.code, 0, 'the credentials pull team/app only, so they must not be cached for the registry');
  });

  it('takes the client id from --client-id when the service account has no annotation', async () => {
    const result = await runProvider(request(`${host}/team/app@sha256:${'0'.repeat(64)}`, { serviceAccountAnnotations: {} }), [
      '--allowed-registry',
      host,
      '--client-id',
      'node-puller',
    ]);
    assert.equal(result.code, 0, described('berth-credential-provider', result));
  });

  const failures: Array<[string, () => unknown, string[] | undefined, RegExp]> = [
    ['a registry that is not allowed', () => request('registry.example.com/team/app:v1'), undefined, /registry registry\.example\.com is not allowed/],
    [
      'no service-account token (tokenAttributes not configured)',
      () => request(`${host}/team/app:v1`, { serviceAccountToken: undefined }),
      undefined,
      /no serviceAccountToken/,
    ],
    ['a repository the principal may not pull', () => request(`${host}/team/other:v1`), undefined, /does not grant repository:team\/other:pull to node-puller/],
    ['a token for another audience', () => ({ ...request(`${host}/team/app:v1`), serviceAccountToken: 'replaced-below' }), undefined, /audience/],
    ['a request that is not JSON', () => 'not json', undefined, /not a CredentialProviderRequest/],
    [
      'an unknown apiVersion',
      () => ({ ...request(`${host}/team/app:v1`), apiVersion: 'credentialprovider.kubelet.k8s.io/v2' }),
      undefined,
      /unsupported apiVersion/,
    ],
  ];
  for (const [what, build, args, message] of failures) {
    it(`fails with one line on stderr for ${what}`, async () => {
      let input = build();
      if (typeof input === 'object' && input !== null && (input as { serviceAccountToken?: string }).serviceAccountToken === 'replaced-below') {
        // The API server's default audience (its own issuer), as a projected token without tokenAttributes would carry.
        input = { ...input, serviceAccountToken: await kube.token('apps', 'web', undefined, 600) };
      }
      const result = await runProvider(input, args);
      assert.equal(result.code, 1, described('berth-credential-provider', result));
      assert.equal(result.stdout, '');
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.match(result.stderr, /^berth-credential-provider: /);
      assert.match(result.stderr, message);
    });
  }
});
