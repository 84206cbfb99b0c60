// OCI Distribution Spec v1.1 — Content Discovery: listing tags (end-8a/8b)
// with n/last pagination and Link headers, and the (Docker Registry API)
// catalog GET /v2/_catalog.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  MT,
  assertError,
  assertStatus,
  header,
  jsonBody,
  nextLink,
  prepareOciImage,
  pushManifest,
  pushOciImage,
  request,
  startTestServer,
  uniqueRepo,
} from './helpers.js';
import type { HttpResponse, TestServer } from './helpers.js';

let server: TestServer;
let repo: string;
before(async () => {
  server = await startTestServer();
  repo = uniqueRepo('tags');
  const img = await prepareOciImage(server, repo);
  for (const t of TAGS) assertStatus(await pushManifest(server, repo, t, img.manifest.bytes, MT.ociManifest), 201);
});
after(async () => {
  await server.stop();
});

// Lower-case letters and digits only: lexical (case-insensitive) order and
// ASCIIbetical order agree on these, so either ordering the spec allows passes.
const TAGS = ['v10', 'latest', 'v2', 'a', 'v1', '1.0', 'z9', 'v1.1', 'beta', '0', 'v1-rc', 'alpha'];
const SORTED = [...TAGS].sort();

interface TagList {
  name: string;
  tags: string[];
}

function tagList(res: HttpResponse): TagList {
  assertStatus(res, 200);
  const body = jsonBody(res) as Partial<TagList>;
  assert.equal(typeof body.name, 'string', `${res.request}: "name" must be a string`);
  assert.ok(Array.isArray(body.tags), `${res.request}: "tags" must be an array`);
  return body as TagList;
}

/** Asserts a Link URL points at <path> and returns the path + query to request. */
function followable(link: string, expectedPath: string): string {
  const u = new URL(link, server.url);
  assert.equal(u.pathname, expectedPath, `Link ${link} must point at ${expectedPath}`);
  return u.pathname + u.search;
}

/**
 * `n` values that are not a non-negative safe integer: negative, not a number, a fraction, one past
 * Number.MAX_SAFE_INTEGER (2^53), and far beyond it.
 */
const INVALID_N = ['-1', 'abc', '1.5', '9007199254740992', '99999999999999999999999'];

/**
 * The answer to an invalid `n`: 400 PAGINATION_NUMBER_INVALID, written on the wire as the spec code
 * UNSUPPORTED (src/oci/errors.ts `wireCode`) with its own message and the offending value (cut to 20
 * characters) as detail; nothing is listed and no Link is sent.
 */
function assertInvalidN(res: HttpResponse, n: string): void {
  assertStatus(res, 400);
  assert.match(header(res, 'content-type') ?? '', /^application\/json\b/, res.request);
  assert.deepEqual(
    jsonBody(res),
    { errors: [{ code: 'UNSUPPORTED', message: 'invalid number of results requested', detail: { n: n.slice(0, 20) } }] },
    res.request,
  );
  assert.equal(header(res, 'link'), undefined, `${res.request}: an error has no Link`);
}

describe('GET /v2/<name>/tags/list', () => {
  it('returns 200 with the repository name and every tag in lexical order', async () => {
    const list = tagList(await request(server.url, 'GET', `/v2/${repo}/tags/list`));
    assert.equal(list.name, repo);
    assert.deepEqual(list.tags, SORTED);
  });

  it('sends no Link header when all tags fit in the response', async () => {
    const res = await request(server.url, 'GET', `/v2/${repo}/tags/list`);
    assert.equal(header(res, 'link'), undefined);
  });

  it('returns a JSON Content-Type', async () => {
    const res = await request(server.url, 'GET', `/v2/${repo}/tags/list`);
    assert.match(header(res, 'content-type') ?? '', /^application\/json\b/);
  });

  it('answers a repository that does not exist with 404 NAME_UNKNOWN', async () => {
    assertError(await request(server.url, 'GET', `/v2/${uniqueRepo('ghost')}/tags/list`), 404, 'NAME_UNKNOWN');
  });

  it('returns an empty list for a repository whose manifests are all untagged', async () => {
    const r = uniqueRepo('tags');
    const img = await prepareOciImage(server, r);
    assertStatus(await pushManifest(server, r, img.manifest.digest, img.manifest.bytes, MT.ociManifest), 201);
    const list = tagList(await request(server.url, 'GET', `/v2/${r}/tags/list`));
    assert.deepEqual(list.tags, []);
  });

  it('no longer lists a deleted tag', async () => {
    const r = uniqueRepo('tags');
    await pushOciImage(server, r, 'keep');
    await pushOciImage(server, r, 'drop');
    assertStatus(await request(server.url, 'DELETE', `/v2/${r}/manifests/drop`), 202);
    assert.deepEqual(tagList(await request(server.url, 'GET', `/v2/${r}/tags/list`)).tags, ['keep']);
  });
});

describe('GET /v2/<name>/tags/list?n=<int>', () => {
  it('returns the first n tags in order with a Link rel="next" when more remain', async () => {
    const res = await request(server.url, 'GET', `/v2/${repo}/tags/list?n=3`);
    const list = tagList(res);
    assert.deepEqual(list.tags, SORTED.slice(0, 3));
    const link = nextLink(res);
    assert.ok(link !== undefined, 'a Link header with rel="next" is expected when more tags remain');
    const u = new URL(link, server.url);
    assert.equal(u.pathname, `/v2/${repo}/tags/list`);
    assert.equal(u.searchParams.get('last'), SORTED[2]);
    assert.equal(u.searchParams.get('n'), '3');
  });

  it('yields every tag exactly once when following Link headers to the end', async () => {
    const seen: string[] = [];
    let target: string | undefined = `/v2/${repo}/tags/list?n=5`;
    for (let page = 0; target !== undefined; page++) {
      assert.ok(page < 20, 'pagination does not terminate');
      const res: HttpResponse = await request(server.url, 'GET', target);
      const list = tagList(res);
      assert.ok(list.tags.length <= 5, `page ${page} has ${list.tags.length} > n tags`);
      seen.push(...list.tags);
      const link = nextLink(res);
      target = link === undefined ? undefined : followable(link, `/v2/${repo}/tags/list`);
    }
    assert.deepEqual(seen, SORTED);
  });

  it('returns all tags and no Link when n exceeds the number of tags', async () => {
    const res = await request(server.url, 'GET', `/v2/${repo}/tags/list?n=1000`);
    assert.deepEqual(tagList(res).tags, SORTED);
    assert.equal(header(res, 'link'), undefined);
  });

  it('returns exactly n tags and no Link when n equals the number of tags', async () => {
    const res = await request(server.url, 'GET', `/v2/${repo}/tags/list?n=${SORTED.length}`);
    assert.deepEqual(tagList(res).tags, SORTED);
    assert.equal(header(res, 'link'), undefined);
  });

  it('returns an empty list and no Link for n=0', async () => {
    const res = await request(server.url, 'GET', `/v2/${repo}/tags/list?n=0`);
    assert.deepEqual(tagList(res).tags, []);
    assert.equal(header(res, 'link'), undefined);
  });

  it('returns every tag and no Link for the largest n accepted (Number.MAX_SAFE_INTEGER)', async () => {
    const res = await request(server.url, 'GET', `/v2/${repo}/tags/list?n=${Number.MAX_SAFE_INTEGER}`);
    assert.deepEqual(tagList(res).tags, SORTED);
    assert.equal(header(res, 'link'), undefined);
  });

  for (const bad of INVALID_N) {
    it(`answers n=${bad} with 400 UNSUPPORTED (PAGINATION_NUMBER_INVALID), with or without last, and lists nothing`, async () => {
      assertInvalidN(await request(server.url, 'GET', `/v2/${repo}/tags/list?n=${bad}`), bad);
      assertInvalidN(await request(server.url, 'GET', `/v2/${repo}/tags/list?n=${bad}&last=beta`), bad);
      assert.deepEqual(tagList(await request(server.url, 'GET', `/v2/${repo}/tags/list`)).tags, SORTED, 'the tags are unchanged');
    });
  }
});

describe('GET /v2/<name>/tags/list?n=<int>&last=<tagname>', () => {
  it('returns up to n tags lexically after <last>, excluding <last>', async () => {
    const res = await request(server.url, 'GET', `/v2/${repo}/tags/list?n=2&last=${encodeURIComponent('beta')}`);
    const i = SORTED.indexOf('beta');
    assert.deepEqual(tagList(res).tags, SORTED.slice(i + 1, i + 3));
  });

  it('returns every tag after <last> when n is omitted', async () => {
    const res = await request(server.url, 'GET', `/v2/${repo}/tags/list?last=v1`);
    const i = SORTED.indexOf('v1');
    assert.deepEqual(tagList(res).tags, SORTED.slice(i + 1));
  });

  it('treats <last> as a tag value, not an index, even when it is not itself a tag', async () => {
    const res = await request(server.url, 'GET', `/v2/${repo}/tags/list?last=b`);
    assert.deepEqual(
      tagList(res).tags,
      SORTED.filter((t) => t > 'b'),
    );
  });

  it('returns an empty list when <last> is the last tag', async () => {
    const res = await request(server.url, 'GET', `/v2/${repo}/tags/list?n=5&last=${SORTED[SORTED.length - 1] ?? ''}`);
    assert.deepEqual(tagList(res).tags, []);
    assert.equal(header(res, 'link'), undefined);
  });

  it('returns an empty list when <last> sorts after every tag without being one', async () => {
    const res = await request(server.url, 'GET', `/v2/${repo}/tags/list?n=5&last=zz`);
    assert.deepEqual(tagList(res).tags, []);
    assert.equal(header(res, 'link'), undefined);
  });

  it('starts from the first tag when <last> sorts before every tag, or is empty', async () => {
    for (const last of ['-', '']) {
      const res = await request(server.url, 'GET', `/v2/${repo}/tags/list?n=2&last=${encodeURIComponent(last)}`);
      assert.deepEqual(tagList(res).tags, SORTED.slice(0, 2), res.request);
    }
  });

  it('links the next page from the last tag of this one, keeping n, when more remain after <last>', async () => {
    const res = await request(server.url, 'GET', `/v2/${repo}/tags/list?n=2&last=beta`);
    const i = SORTED.indexOf('beta');
    assert.deepEqual(tagList(res).tags, SORTED.slice(i + 1, i + 3));
    const link = nextLink(res);
    assert.ok(link !== undefined, 'a Link header with rel="next" is expected when more tags remain');
    const u = new URL(link, server.url);
    assert.equal(u.pathname, `/v2/${repo}/tags/list`);
    assert.deepEqual([u.searchParams.get('n'), u.searchParams.get('last')], ['2', SORTED[i + 2]]);
  });

  it('returns an empty list and no Link for n=0, whatever <last> is', async () => {
    const res = await request(server.url, 'GET', `/v2/${repo}/tags/list?n=0&last=beta`);
    assert.deepEqual(tagList(res).tags, []);
    assert.equal(header(res, 'link'), undefined);
  });
});

describe('GET /v2/_catalog', () => {
  let cat: TestServer;
  const repos = ['alpha/one', 'alpha/two', 'beta', 'gamma/x/y', 'delta-1', 'delta.2', 'epsilon_3'];
  const sortedRepos = [...repos].sort();
  before(async () => {
    cat = await startTestServer();
  });
  after(async () => {
    await cat.stop();
  });

  function catalog(res: HttpResponse): string[] {
    assertStatus(res, 200);
    const body = jsonBody(res) as { repositories?: unknown };
    assert.ok(Array.isArray(body.repositories), `${res.request}: "repositories" must be an array`);
    return body.repositories as string[];
  }

  it('returns an empty list on an empty registry', async () => {
    const res = await request(cat.url, 'GET', '/v2/_catalog');
    assert.deepEqual(catalog(res), []);
  });

  it('lists every repository that has content, in lexical order', async () => {
    for (const r of repos) await pushOciImage(cat, r, 'latest');
    assert.deepEqual(catalog(await request(cat.url, 'GET', '/v2/_catalog')), sortedRepos);
  });

  it('returns the first n repositories with a Link rel="next" when more remain', async () => {
    const res = await request(cat.url, 'GET', '/v2/_catalog?n=2');
    assert.deepEqual(catalog(res), sortedRepos.slice(0, 2));
    const link = nextLink(res);
    assert.ok(link !== undefined, 'a Link header with rel="next" is expected');
    const u = new URL(link, cat.url);
    assert.equal(u.pathname, '/v2/_catalog');
    assert.equal(u.searchParams.get('last'), sortedRepos[1]);
  });

  it('yields every repository exactly once when following Link headers', async () => {
    const seen: string[] = [];
    let target: string | undefined = '/v2/_catalog?n=3';
    for (let page = 0; target !== undefined; page++) {
      assert.ok(page < 20, 'pagination does not terminate');
      const res: HttpResponse = await request(cat.url, 'GET', target);
      const list = catalog(res);
      assert.ok(list.length <= 3);
      seen.push(...list);
      const link = nextLink(res);
      if (link === undefined) target = undefined;
      else {
        const u = new URL(link, cat.url);
        assert.equal(u.pathname, '/v2/_catalog');
        target = u.pathname + u.search;
      }
    }
    assert.deepEqual(seen, sortedRepos);
  });

  it('returns an empty list and no Link for n=0', async () => {
    const res = await request(cat.url, 'GET', '/v2/_catalog?n=0');
    assert.deepEqual(catalog(res), []);
    assert.equal(header(res, 'link'), undefined);
  });

  it('returns repositories after <last>', async () => {
    const res = await request(cat.url, 'GET', `/v2/_catalog?n=100&last=${encodeURIComponent('beta')}`);
    assert.deepEqual(
      catalog(res),
      sortedRepos.filter((r) => r > 'beta'),
    );
    assert.equal(header(res, 'link'), undefined);
  });

  it('treats <last> as a name, not an index: a prefix of a repository lists that repository', async () => {
    // 'alpha' is no repository; 'alpha/one' sorts after it.
    const res = await request(cat.url, 'GET', `/v2/_catalog?last=alpha`);
    assert.deepEqual(catalog(res), sortedRepos);
    const after = await request(cat.url, 'GET', `/v2/_catalog?last=${encodeURIComponent('alpha/one')}`);
    assert.deepEqual(catalog(after), sortedRepos.slice(1));
  });

  it('returns an empty list and no Link when <last> is the last repository, or sorts after all of them', async () => {
    for (const last of [sortedRepos[sortedRepos.length - 1] ?? '', 'zz']) {
      const res = await request(cat.url, 'GET', `/v2/_catalog?n=5&last=${encodeURIComponent(last)}`);
      assert.deepEqual(catalog(res), [], res.request);
      assert.equal(header(res, 'link'), undefined, res.request);
    }
  });

  it('starts from the first repository when <last> is empty', async () => {
    assert.deepEqual(catalog(await request(cat.url, 'GET', '/v2/_catalog?n=2&last=')), sortedRepos.slice(0, 2));
  });

  it('links the next page from the last repository of this one, keeping n, when more remain after <last>', async () => {
    const res = await request(cat.url, 'GET', '/v2/_catalog?n=2&last=beta');
    const i = sortedRepos.indexOf('beta');
    assert.deepEqual(catalog(res), sortedRepos.slice(i + 1, i + 3));
    const link = nextLink(res);
    assert.ok(link !== undefined, 'a Link header with rel="next" is expected');
    const u = new URL(link, cat.url);
    assert.equal(u.pathname, '/v2/_catalog');
    assert.deepEqual([u.searchParams.get('n'), u.searchParams.get('last')], ['2', sortedRepos[i + 2]]);
  });

  it('returns every repository and no Link for the largest n accepted (Number.MAX_SAFE_INTEGER)', async () => {
    const res = await request(cat.url, 'GET', `/v2/_catalog?n=${Number.MAX_SAFE_INTEGER}`);
    assert.deepEqual(catalog(res), sortedRepos);
    assert.equal(header(res, 'link'), undefined);
  });

  for (const bad of INVALID_N) {
    it(`answers n=${bad} with 400 UNSUPPORTED (PAGINATION_NUMBER_INVALID), with or without last, and lists nothing`, async () => {
      assertInvalidN(await request(cat.url, 'GET', `/v2/_catalog?n=${bad}`), bad);
      assertInvalidN(await request(cat.url, 'GET', `/v2/_catalog?n=${bad}&last=beta`), bad);
      assert.deepEqual(catalog(await request(cat.url, 'GET', '/v2/_catalog')), sortedRepos, 'the catalog is unchanged');
    });
  }
});
