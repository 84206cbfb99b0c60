import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { tokenFor } from '../auth/helpers.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';
import { assertError, assertStatus, blobOf, descriptorOf, header, jsonBody, MT, ociManifest, request, uniqueRepo, withQuery } from '../integration/helpers.js';

/**
 * Three stateless replicas over one metadata database and one blob store, as a load balancer
 * would spread a client's requests: every request of a push may land on another replica. With
 * `BERTH_TEST_BACKEND=postgres+s3` (scripts/test.sh) they share a PostgreSQL database and an S3
 * bucket; on the defaults, one SQLite file and one directory.
 */
describe('replicas sharing metadata and storage', () => {
  let replicas: TestServer[] = [];

  before(async () => {
    const first = await startTestServer({ auth: true });
    const others = await Promise.all([1, 2].map(() => startTestServer({ auth: true, dataDir: first.dataDir })));
    replicas = [first, ...others];
  });

  after(async () => {
    // The first owns the data directory: stop it last.
    for (const replica of [...replicas].reverse()) await replica.stop();
  });

  const on = (i: number) => replicas[i % replicas.length] as TestServer;
  const bearerFor = async (i: number, repository: string) => ({
    Authorization: `Bearer ${String((await tokenFor(on(i).url, ownerName, ownerPassword, [`repository:${repository}:pull,push,delete`]))['token'])}`,
  });

  it('a chunked upload whose PATCHes land on different replicas commits with its digest verified', async () => {
    const repo = uniqueRepo('replicas');
    const headers = await bearerFor(0, repo);
    // Chunks of 6 MiB, 5 MiB and a tail: above and below S3's 5 MiB part minimum.
    const chunks = [randomBytes(6 * 1024 * 1024), randomBytes(5 * 1024 * 1024), randomBytes(123_457)];
    const blob = blobOf(Buffer.concat(chunks));

    const post = await request(on(0).url, 'POST', `/v2/${repo}/blobs/uploads/`, { headers: { ...headers, 'Content-Length': '0' } });
    assertStatus(post, 202);
    let location = header(post, 'location') as string;
    let offset = 0;
    for (const [i, chunk] of chunks.entries()) {
      const res = await request(on(i + 1).url, 'PATCH', location, {
        headers: { ...headers, 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${offset + chunk.length - 1}` },
        body: chunk,
      });
      assertStatus(res, 202);
      offset += chunk.length;
      assert.equal(header(res, 'range'), `0-${offset - 1}`);
      location = header(res, 'location') as string;
      // Every replica reports the same progress.
      const status = await request(on(i + 2).url, 'GET', location, { headers });
      assertStatus(status, 204);
      assert.equal(header(status, 'range'), `0-${offset - 1}`);
    }
    const put = await request(on(1).url, 'PUT', withQuery(location, { digest: blob.digest }), { headers });
    assertStatus(put, 201);

    for (let i = 0; i < replicas.length; i++) {
      const got = await request(on(i).url, 'GET', `/v2/${repo}/blobs/${blob.digest}`, { headers });
      assertStatus(got, 200);
      assert.equal(got.body.length, blob.data.length);
      assert.ok(got.body.equals(blob.data), `replica ${i} serves the same bytes`);
    }
  });

  it('a wrong digest at the end is refused, whichever replica gets it, and nothing becomes visible', async () => {
    const repo = uniqueRepo('replicas');
    const headers = await bearerFor(1, repo);
    const data = randomBytes(64 * 1024);
    const post = await request(on(1).url, 'POST', `/v2/${repo}/blobs/uploads/`, { headers: { ...headers, 'Content-Length': '0' } });
    const patched = await request(on(2).url, 'PATCH', header(post, 'location') as string, {
      headers: { ...headers, 'Content-Type': 'application/octet-stream' },
      body: data,
    });
    assertStatus(patched, 202);
    const claimed = blobOf(randomBytes(16));
    assertError(
      await request(on(0).url, 'PUT', withQuery(header(patched, 'location') as string, { digest: claimed.digest }), { headers }),
      400,
      'DIGEST_INVALID',
    );
    for (let i = 0; i < replicas.length; i++) {
      assertError(await request(on(i).url, 'HEAD', `/v2/${repo}/blobs/${claimed.digest}`, { headers }), 404);
      assertError(await request(on(i).url, 'HEAD', `/v2/${repo}/blobs/${blobOf(data).digest}`, { headers }), 404);
    }
  });

  it('a manifest pushed on one replica is served, listed, tagged and deleted through the others', async () => {
    const repo = uniqueRepo('replicas');
    const headers = await bearerFor(2, repo);
    const config = blobOf(JSON.stringify({ architecture: 'amd64', os: 'linux', seed: randomBytes(8).toString('hex') }));
    const layer = blobOf(randomBytes(4096));
    for (const [i, b] of [config, layer].entries()) {
      const post = await request(on(i).url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${b.digest}`, {
        headers: { ...headers, 'Content-Type': 'application/octet-stream' },
        body: b.data,
      });
      assertStatus(post, 201);
    }
    const manifest = ociManifest({ config: descriptorOf(MT.ociConfig, config), layers: [descriptorOf(MT.ociLayer, layer)] });
    const put = await request(on(0).url, 'PUT', `/v2/${repo}/manifests/v1`, { headers: { ...headers, 'Content-Type': MT.ociManifest }, body: manifest.bytes });
    assertStatus(put, 201);

    const got = await request(on(1).url, 'GET', `/v2/${repo}/manifests/v1`, { headers: { ...headers, Accept: MT.ociManifest } });
    assertStatus(got, 200);
    assert.equal(header(got, 'docker-content-digest'), manifest.digest);
    const tags = await request(on(2).url, 'GET', `/v2/${repo}/tags/list`, { headers });
    assert.deepEqual((jsonBody(tags) as { tags: string[] }).tags, ['v1']);

    assertStatus(await request(on(2).url, 'DELETE', `/v2/${repo}/manifests/${manifest.digest}`, { headers }), 202);
    for (let i = 0; i < replicas.length; i++) {
      assertError(await request(on(i).url, 'GET', `/v2/${repo}/manifests/v1`, { headers: { ...headers, Accept: MT.ociManifest } }), 404, 'MANIFEST_UNKNOWN');
    }
  });

  it('concurrent pushes of one tag through every replica leave one consistent answer everywhere', async () => {
    const repo = uniqueRepo('replicas');
    const headers = await bearerFor(0, repo);
    const config = blobOf(JSON.stringify({ architecture: 'amd64', os: 'linux' }));
    const post = await request(on(0).url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${config.digest}`, {
      headers: { ...headers, 'Content-Type': 'application/octet-stream' },
      body: config.data,
    });
    assertStatus(post, 201);
    const manifests = Array.from({ length: 9 }, (_, i) =>
      ociManifest({ config: descriptorOf(MT.ociConfig, config), layers: [], annotations: { n: String(i) } }),
    );
    const answers = await Promise.all(
      manifests.map((m, i) =>
        request(on(i).url, 'PUT', `/v2/${repo}/manifests/latest`, { headers: { ...headers, 'Content-Type': MT.ociManifest }, body: m.bytes }),
      ),
    );
    for (const answer of answers) assertStatus(answer, 201);
    const seen = new Set<string | undefined>();
    for (let i = 0; i < replicas.length; i++) {
      const head = await request(on(i).url, 'HEAD', `/v2/${repo}/manifests/latest`, { headers: { ...headers, Accept: MT.ociManifest } });
      assertStatus(head, 200);
      seen.add(header(head, 'docker-content-digest'));
    }
    assert.equal(seen.size, 1, 'every replica resolves the tag to the same digest');
    assert.ok(manifests.some((m) => seen.has(m.digest)));
  });

  it('a token issued by one replica is accepted by the others, and a refresh token from one is redeemed at another', async () => {
    const repo = uniqueRepo('replicas');
    const headers = await bearerFor(1, repo);
    const pushed = await request(on(1).url, 'POST', `/v2/${repo}/blobs/uploads/?digest=${blobOf('token').digest}`, {
      headers: { ...headers, 'Content-Type': 'application/octet-stream' },
      body: 'token',
    });
    assertStatus(pushed, 201);
    for (let i = 0; i < replicas.length; i++) assertStatus(await request(on(i).url, 'HEAD', `/v2/${repo}/blobs/${blobOf('token').digest}`, { headers }), 200);

    const form = (fields: Record<string, string>) => ({
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields),
    });
    const issued = await fetch(
      `${on(1).url}/oauth2/token`,
      form({
        grant_type: 'password',
        username: ownerName,
        password: ownerPassword,
        service: 'berth',
        scope: `repository:${repo}:pull`,
        access_type: 'offline',
        client_id: 'replicas-test',
      }),
    );
    assert.equal(issued.status, 200, await issued.clone().text());
    const refresh = ((await issued.json()) as { refresh_token?: string }).refresh_token;
    assert.ok(refresh, 'a refresh token');
    const redeemed = await fetch(
      `${on(2).url}/oauth2/token`,
      form({ grant_type: 'refresh_token', refresh_token: refresh, service: 'berth', scope: `repository:${repo}:pull`, client_id: 'replicas-test' }),
    );
    assert.equal(redeemed.status, 200, await redeemed.clone().text());
    const access = ((await redeemed.json()) as { access_token: string }).access_token;
    assertStatus(await request(on(0).url, 'HEAD', `/v2/${repo}/blobs/${blobOf('token').digest}`, { headers: { Authorization: `Bearer ${access}` } }), 200);
  });
});
