// Lists are never cut silently: a catalog or tag list longer than one page (no `n`, or an `n`
// above the largest page) ends its page with a `Link` to the next, and following the links
// yields every entry once. Also: `n` is a plain decimal integer, and the tags of an unknown
// repository are NAME_UNKNOWN even for `n=0`.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { urls } from '../../src/api/urls.js';
import { mediaTypes } from '../../src/oci/media-types.js';
import { largestPage } from '../../src/registry/reads.js';
import { startTestServer, type TestServer } from '../support/server.js';

/** A manifest that references nothing, so it can be put without blobs. */
const emptyIndex = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: [] }));
const count = largestPage + 7;
const pad = (i: number) => String(i).padStart(5, '0');

async function getJson(base: string, path: string): Promise<{ status: number; link: string | null; body: Record<string, unknown> }> {
  const res = await fetch(`${base}${path}`);
  return { status: res.status, link: res.headers.get('link'), body: (await res.json()) as Record<string, unknown> };
}

/** Follows `Link: <…>; rel="next"` from `first`, returning every entry of `field` and the pages read. */
async function followAll(base: string, first: string, field: string): Promise<{ items: string[]; pages: number }> {
  const items: string[] = [];
  let path: string | undefined = first;
  let pages = 0;
  while (path !== undefined) {
    const page = await getJson(base, path);
    assert.equal(page.status, 200);
    items.push(...(page.body[field] as string[]));
    pages++;
    path = page.link ? /^<([^>]+)>; rel="next"$/.exec(page.link)?.[1] : undefined;
    assert.ok(pages < 100, 'the links must end');
  }
  return { items, pages };
}

describe('lists are never silently truncated', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer();
    const manifests = server.app.registry.manifests;
    for (let i = 0; i < count; i++) {
      await manifests.put('many/tags', { kind: 'tag', tag: `t${pad(i)}` }, emptyIndex, mediaTypes.ociIndex);
      await manifests.put(`repo${pad(i)}`, { kind: 'tag', tag: 'v1' }, emptyIndex, mediaTypes.ociIndex);
    }
  });
  after(() => server.stop());

  it('tags/list without n gives a full page and a Link to the rest', async () => {
    const first = await getJson(server.url, urls.tags('many/tags'));
    assert.equal((first.body['tags'] as string[]).length, largestPage);
    assert.match(first.link ?? '', /rel="next"/);
    const all = await followAll(server.url, urls.tags('many/tags'), 'tags');
    assert.equal(all.items.length, count);
    assert.equal(new Set(all.items).size, count);
    assert.equal(all.pages, 2);
  });

  it('an n above the largest page is served as the largest page, with a Link', async () => {
    const path = urls.tags('many/tags', { n: 5000 });
    const first = await getJson(server.url, path);
    assert.equal((first.body['tags'] as string[]).length, largestPage);
    assert.match(first.link ?? '', /rel="next"/);
    assert.equal((await followAll(server.url, path, 'tags')).items.length, count);
  });

  it('the catalog without n gives a full page and a Link to the rest', async () => {
    const first = await getJson(server.url, urls.catalog());
    assert.equal((first.body['repositories'] as string[]).length, largestPage);
    assert.match(first.link ?? '', /rel="next"/);
    const all = await followAll(server.url, urls.catalog(), 'repositories');
    assert.equal(all.items.length, count + 1); // every repoNNNNN and many/tags
  });

  it('n is a plain decimal integer: hex, exponents, signs and spaces are refused', async () => {
    for (const bad of ['0x10', '1e2', ' 3', '3 ', '+3', '-0', '1.0', '0b1', 'Infinity']) {
      const res = await getJson(server.url, `${urls.tags('many/tags')}?n=${encodeURIComponent(bad)}`);
      assert.equal(res.status, 400, `n=${JSON.stringify(bad)}`);
      assert.equal((res.body['errors'] as Array<{ code: string }>)[0]?.code, 'UNSUPPORTED');
    }
    assert.equal((await getJson(server.url, `${urls.tags('many/tags')}?n=007`)).status, 200);
  });

  it('tags/list?n=0 of a repository that does not exist is 404 NAME_UNKNOWN', async () => {
    const res = await getJson(server.url, urls.tags('no/such/repository', { n: 0 }));
    assert.equal(res.status, 404);
    assert.equal((res.body['errors'] as Array<{ code: string }>)[0]?.code, 'NAME_UNKNOWN');
    const known = await getJson(server.url, urls.tags('many/tags', { n: 0 }));
    assert.equal(known.status, 200);
    assert.deepEqual(known.body['tags'], []);
    assert.equal(known.link, null);
  });
});
