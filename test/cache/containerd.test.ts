/**
 * containerd (`ctr`, Debian's package: what kubelets pull with) pulling through Berth configured as
 * a mirror in a `hosts.toml`, with no image renames: containerd asks Berth for the upstream's own
 * repository names and says which upstream in `?ns=` (containerd docs/hosts.md), and Berth serves
 * them from the rule that mirrors that host. The upstream's access log shows that only Berth
 * fetched from it; with the upstream stopped, the node still pulls what Berth cached.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { urls } from '../../src/api/urls.js';
import { startContainerd, writeMirrorHosts, type Containerd } from '../support/containerd.js';
import { described } from '../support/exec.js';
import type { ReferenceRegistry } from '../support/reference-registry.js';
import { ownerName, ownerPassword, type TestServer } from '../support/server.js';
import { buildMultiArchImage, pushLayout, startCacheServer, startUpstream, type BuiltImage } from './helpers.js';

describe('pull-through cache: containerd with Berth as its mirror (hosts.toml)', () => {
  let upstream: ReferenceRegistry;
  let berth: TestServer;
  let containerd: Containerd;
  let image: BuiltImage;
  let hostsDir: string;

  before(async () => {
    upstream = await startUpstream();
    // Auth on: containerd gets a token from Berth's realm for the scope Berth's challenge names.
    berth = await startCacheServer({ auth: true, rules: [{ name: 'upstream', prefix: 'mirror', upstream: { url: upstream.url } }] });
    containerd = await startContainerd();
    image = await buildMultiArchImage('containerd');
    await pushLayout(upstream.url, undefined, 'team/app', 'v1', image.dir, image.index.index);
    hostsDir = join(containerd.dir, 'certs.d');
    // Pulls of <upstream>/… try Berth first (with ?ns=<upstream>), then the upstream itself.
    await writeMirrorHosts(hostsDir, upstream.host, upstream.url, berth.url);
  });

  after(async () => {
    await containerd?.stop();
    await image?.dispose();
    await berth?.stop();
    await upstream?.stop();
  });

  it('pulls the upstream image through Berth, which keeps it under the rule prefix', async () => {
    const ref = `${upstream.host}/team/app:v1`;
    const seen = upstream.requests().length;
    const pulled = await containerd.pull(ref, { hostsDir, user: `${ownerName}:${ownerPassword}`, platform: 'linux/amd64' });
    assert.equal(pulled.code, 0, described('ctr images pull', pulled));
    const [indexDigest, amd64, arm64] = image.digests as [string, string, string];
    const listed = await containerd.ctr(['images', 'ls']);
    assert.match(listed.stdout, new RegExp(`${ref.replace(/[.]/g, '\\.')}\\s+\\S+\\s+${indexDigest}`), listed.stdout);

    // Berth fetched it, under its prefix; containerd never went to the upstream itself.
    assert.equal(await berth.app.registry.manifests.digestOfTag('mirror/team/app', 'v1'), indexDigest);
    assert.equal(await berth.app.registry.manifests.has('mirror/team/app', amd64), true);
    assert.equal(await berth.app.registry.manifests.has('mirror/team/app', arm64), false, 'only the platform pulled');
    const during = upstream.requests().slice(seen);
    assert.deepEqual(
      during.filter((r) => !r.userAgent.startsWith('berth-cache')),
      [],
      'every request to the upstream came from the cache',
    );
    assert.ok(during.some((r) => r.path === urls.manifest('team/app', amd64)));
  });

  it('keeps pulling what Berth cached when the upstream is down', async () => {
    await upstream.stop();
    const removed = await containerd.ctr(['images', 'rm', `${upstream.host}/team/app:v1`]);
    assert.equal(removed.code, 0, described('ctr images rm', removed));
    await containerd.ctr(['content', 'prune', 'references']);
    const pulled = await containerd.pull(`${upstream.host}/team/app:v1`, { hostsDir, user: `${ownerName}:${ownerPassword}`, platform: 'linux/amd64' });
    assert.equal(pulled.code, 0, described('ctr images pull (upstream down)', pulled));
  });
});
