/**
 * podman with Berth as a `registries.conf` mirror: pulls of `<upstream>/team/app` go to
 * `<berth>/mirror/team/app` (the mirror's location carries the rule's prefix), so the node keeps
 * its image names while Berth caches. The upstream's access log shows that only Berth fetched.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Podman } from '../support/clients.js';
import type { ReferenceRegistry } from '../support/reference-registry.js';
import type { TestServer } from '../support/server.js';
import { buildMultiArchImage, pushLayout, startCacheServer, startUpstream, type BuiltImage } from './helpers.js';

describe('pull-through cache: podman with Berth as a registries.conf mirror', () => {
  let upstream: ReferenceRegistry;
  let berth: TestServer;
  let podman: Podman;
  let image: BuiltImage;

  before(async () => {
    upstream = await startUpstream();
    berth = await startCacheServer({ rules: [{ name: 'upstream', prefix: 'mirror', upstream: { url: upstream.url } }] });
    image = await buildMultiArchImage('podman');
    await pushLayout(upstream.url, undefined, 'team/app', 'v1', image.dir, image.index.index);
    const berthHost = new URL(berth.url).host;
    podman = await Podman.create([]);
    await writeFile(
      join(podman.dir, 'registries.conf'),
      [
        'unqualified-search-registries = []',
        '',
        '[[registry]]',
        `prefix = ${JSON.stringify(upstream.host)}`,
        `location = ${JSON.stringify(upstream.host)}`,
        'insecure = true',
        '',
        '[[registry.mirror]]',
        `location = ${JSON.stringify(`${berthHost}/mirror`)}`,
        'insecure = true',
        '',
      ].join('\n'),
    );
  });

  after(async () => {
    await podman?.dispose();
    await image?.dispose();
    await berth?.stop();
    await upstream?.stop();
  });

  it('pulls by tag and by digest through the mirror, under the upstream name', async () => {
    const [indexDigest, amd64] = image.digests as [string, string, string];
    const seen = upstream.requests().length;
    const id = await podman.pull(`${upstream.host}/team/app:v1`, { os: 'linux', architecture: 'amd64' });
    assert.equal(id, image.index.images[0]?.config.digest.slice(7));
    const inspected = await podman.inspectImage(`${upstream.host}/team/app:v1`);
    assert.equal(inspected.Digest, indexDigest);

    assert.equal(await berth.app.registry.manifests.digestOfTag('mirror/team/app', 'v1'), indexDigest);
    assert.equal(await berth.app.registry.manifests.has('mirror/team/app', amd64), true);
    const during = upstream.requests().slice(seen);
    assert.ok(during.length > 0);
    assert.deepEqual(
      during.filter((r) => !r.userAgent.startsWith('berth-cache')),
      [],
      'every request to the upstream came from the cache',
    );

    // By digest, with the upstream gone: only the mirror can answer.
    await upstream.stop();
    await podman.rmi(`${upstream.host}/team/app:v1`);
    await podman.pull(`${upstream.host}/team/app@${indexDigest}`, { os: 'linux', architecture: 'amd64' });
    assert.equal(await podman.imageExists(`${upstream.host}/team/app@${indexDigest}`), true);
  });
});
