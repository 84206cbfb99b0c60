// OCI Distribution Spec v1.1 — "Determining Support" (end-1) and the generic
// error-response rules ("Error Codes"), plus routing (unknown routes, methods).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { assertError, assertStatus, header, pushOciImage, randomBlob, request, sha256, startTestServer, uniqueRepo } from './helpers.js';
import type { TestServer } from './helpers.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.stop();
});

describe('GET /v2/', () => {
  it('returns 200 OK, signalling that the registry implements the specification', async () => {
    const res = await request(server.url, 'GET', '/v2/');
    assertStatus(res, 200);
  });

  it('sets Docker-Distribution-API-Version: registry/2.0', async () => {
    const res = await request(server.url, 'GET', '/v2/');
    assert.equal(header(res, 'docker-distribution-api-version'), 'registry/2.0');
  });

  it('answers /v2 (without the trailing slash) with 200 or a redirect, never an error', async () => {
    const res = await request(server.url, 'GET', '/v2');
    assert.ok([200, 301, 302, 307, 308].includes(res.status), `GET /v2 got ${res.status}`);
  });
});

describe('unknown routes', () => {
  for (const target of ['/', '/v1/', '/v3/', '/v2/foo/bar/unknown', '/v2/foo/blobs', '/v2/foo/manifests/', '/v2/foo/tags', '/favicon.ico']) {
    it(`answers GET ${target} with 404 and a JSON error body`, async () => {
      const res = await request(server.url, 'GET', target);
      assertError(res, 404);
    });
  }
});

describe('unsupported methods on known routes', () => {
  const digest = sha256('does-not-matter');
  const cases: Array<[string, string]> = [
    ['DELETE', '/v2/'],
    ['POST', '/v2/'],
    ['POST', '/v2/base/repo/manifests/latest'],
    ['PATCH', '/v2/base/repo/manifests/latest'],
    ['POST', `/v2/base/repo/blobs/${digest}`],
    ['PUT', `/v2/base/repo/blobs/${digest}`],
    ['PATCH', `/v2/base/repo/blobs/${digest}`],
    ['PUT', '/v2/base/repo/blobs/uploads/'],
    ['DELETE', '/v2/base/repo/tags/list'],
    ['PUT', '/v2/base/repo/tags/list'],
    ['POST', `/v2/base/repo/referrers/${digest}`],
    ['DELETE', `/v2/base/repo/referrers/${digest}`],
    ['POST', '/v2/_catalog'],
    ['DELETE', '/v2/_catalog'],
  ];
  for (const [method, target] of cases) {
    it(`answers ${method} ${target} with 405 UNSUPPORTED and an Allow header`, async () => {
      const res = await request(server.url, method, target);
      assertError(res, 405, 'UNSUPPORTED');
      assert.ok(header(res, 'allow') !== undefined, `${res.request}: a 405 response must carry Allow (RFC 9110 §15.5.6)`);
    });
  }
});

describe('HEAD wherever GET', () => {
  // RFC 9110, section 9.3.2: a general-purpose server answers HEAD where it answers GET, with the
  // same header fields and no content. Distribution does, and clients probe `/v2/` with either.
  it('answers HEAD /v2/ with 200, the API version header and no body', async () => {
    const res = await request(server.url, 'HEAD', '/v2/');
    assertStatus(res, 200);
    assert.equal(header(res, 'docker-distribution-api-version'), 'registry/2.0');
    assert.equal(res.body.length, 0);
  });

  it("answers HEAD on the tags list with GET's headers and length, without the content", async () => {
    const repo = uniqueRepo();
    await pushOciImage(server, repo, 'v1');
    const get = await request(server.url, 'GET', `/v2/${repo}/tags/list`);
    const head = await request(server.url, 'HEAD', `/v2/${repo}/tags/list`);
    assertStatus(head, 200);
    assert.equal(header(head, 'content-type'), header(get, 'content-type'));
    assert.equal(header(head, 'content-length'), String(get.body.length));
    assert.equal(head.body.length, 0);
  });

  it('names HEAD in the Allow header of a route that answers GET', async () => {
    const res = await request(server.url, 'POST', '/v2/_catalog');
    assertError(res, 405, 'UNSUPPORTED');
    const allow = (header(res, 'allow') ?? '').split(/,\s*/);
    assert.ok(allow.includes('GET') && allow.includes('HEAD'), `Allow: ${allow.join(', ')}`);
  });
});

describe('connections after an error', () => {
  const keepAlive = { headers: { Connection: 'keep-alive' } };
  it('keeps the connection open after an error to a request that sent no body', async () => {
    for (const [method, target] of [
      ['GET', '/v3/'],
      ['DELETE', '/v2/'],
      ['POST', '/v2/'],
    ] as const) {
      const res = await request(server.url, method, target, keepAlive);
      assert.ok(res.status === 404 || res.status === 405, `${res.request}: ${res.status}`);
      assert.notEqual(header(res, 'connection'), 'close', `${res.request}: no body is left to skip, so the connection can stay`);
    }
  });

  it('closes the connection after an error to a request whose body it did not read', async () => {
    const res = await request(server.url, 'POST', '/v2/', { headers: { Connection: 'keep-alive' }, body: 'unread body' });
    assertError(res, 405, 'UNSUPPORTED');
    assert.equal(header(res, 'connection'), 'close');
  });
});

describe('error responses', () => {
  it('use the {"errors":[{"code","message","detail"}]} JSON format with a spec error code', async () => {
    const repo = uniqueRepo();
    await pushOciImage(server, repo, 'v1');
    const cases = [
      await request(server.url, 'GET', `/v2/${repo}/blobs/${randomBlob(8).digest}`),
      await request(server.url, 'GET', `/v2/${repo}/manifests/nope`),
      await request(server.url, 'GET', '/v2/never/pushed/tags/list'),
      await request(server.url, 'GET', `/v2/${repo}/blobs/uploads/00000000-0000-0000-0000-000000000000`),
    ];
    for (const res of cases) {
      assert.ok(res.status >= 400 && res.status < 500, `${res.request}: ${res.status}`);
      assertError(res, res.status);
    }
  });

  it('never answer HEAD with a body', async () => {
    const res = await request(server.url, 'HEAD', `/v2/${uniqueRepo()}/manifests/missing`);
    assertStatus(res, 404);
    assert.equal(res.body.length, 0);
  });
});
