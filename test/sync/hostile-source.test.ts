/**
 * A sync source names, in its manifest, the digest of a private layer this registry stores for
 * another repository, without having the bytes. Linking the stored blob on the strength of that
 * manifest would let the mirror's readers pull the private layer; the copy must instead download
 * the blob (which this source cannot serve) and fail.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bearerFor, makeImage, pushImage } from '../import/fixtures.js';
import { startHostileRegistry, type HostileRegistry } from '../import/hostile-registry.js';
import { ownerName, ownerPassword, type TestServer } from '../support/server.js';
import { Api, imageStatus, startBerth, waitFor } from './helpers.js';

describe('sync from a source that names a digest it cannot serve', () => {
  let customer: TestServer;
  let hostile: HostileRegistry;

  before(async () => {
    [customer, hostile] = await Promise.all([startBerth(), startHostileRegistry()]);
  });
  after(async () => Promise.all([customer?.stop(), hostile?.stop()]));

  it('does not link the stored private layer into the mirror: the image fails to copy', async () => {
    const secret = makeImage({ platforms: 0, layers: 1 });
    const push = await bearerFor(customer.url, ownerName, ownerPassword, 'repository:private/app:pull,push');
    await pushImage(customer.url, 'private/app', 'v1', secret, push);
    const privateLayer = secret.blobs[1]!;
    const bait = makeImage({ platforms: 0, layers: 1, shared: [privateLayer] });
    hostile.serve('bait/app', bait, ['v1']);

    const api = await Api.asOwner(customer.url);
    const created = await api.post('/sync/rules', { name: 'bait', source: { url: hostile.url }, repositories: ['bait/app'], destinationPrefix: 'mirror' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    // One image on demand (this source lists no tags).
    assert.equal((await api.post('/sync/rules/bait/run', { repository: 'bait/app', tag: 'v1' })).status, 202);
    const image = await waitFor('the failed copy', async () => {
      const found = (await imageStatus(api, 'bait')).get('bait/app:v1');
      return found?.lastError ? found : undefined;
    });
    assert.match(image.lastError, /not found|does not exist|UPSTREAM_NOT_FOUND/i, image.lastError);
    assert.equal(image.copies, 0);

    const pull = await bearerFor(customer.url, ownerName, ownerPassword, 'repository:mirror/bait/app:pull');
    const res = await fetch(`${customer.url}/v2/mirror/bait/app/blobs/${privateLayer.digest}`, { headers: { Authorization: pull } });
    assert.equal(res.status, 404, 'the private layer is not readable through the mirror');
    assert.equal(await customer.app.metadata.blobs.getInRepository('mirror/bait/app', privateLayer.digest), undefined);
  });
});
