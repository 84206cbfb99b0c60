// Fuzzing a real server (fast-check): registry routes with arbitrary names, references, paging
// parameters, bodies and bearer tokens, and token requests with arbitrary scopes and credentials,
// against a server with the token service on (anonymous pull by globs an attacker would aim at)
// and one with it off (every handler reached). No request may get a 5xx, and the event loop is
// never blocked for long while they run.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { urls } from '../../src/api/urls.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { loopDelayBoundMs, withLoopDelay } from './helpers.js';

const validName = fc
  .array(fc.string({ unit: fc.constantFrom('a', 'b', '0', '-', '.', '_'), minLength: 1, maxLength: 10 }), { minLength: 1, maxLength: 4 })
  .map((parts) => parts.join('/'));
const name = fc.oneof(
  validName,
  fc.constantFrom('team-app-eu-1-prod', 'public/app', 'library/alpine'),
  fc.integer({ min: 100, max: 6000 }).map((n) => `${'a-'.repeat(Math.ceil(n / 2))}x`.slice(0, n)),
  fc.string({ unit: fc.constantFrom('a', 'A', '-', '/', '.', '..', '%2e', '%2F', '_', ':', '\u00e9', ' ', '*'), minLength: 1, maxLength: 300 }),
);
const digest = fc.oneof(
  fc.string({ unit: fc.constantFrom('0', 'a', 'f'), minLength: 64, maxLength: 64 }).map((hex) => `sha256:${hex}`),
  fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 100 }),
);
const reference = fc.oneof(digest, fc.string({ unit: fc.constantFrom('v', '1', '.', '-', '_', 'A', '/', '%'), minLength: 1, maxLength: 200 }));
const nParam = fc.oneof(
  fc.nat({ max: 5000 }).map(String),
  fc.constantFrom('0x10', '1e2', ' 3', '-1', '99999999999999999999', ''),
  fc.string({ maxLength: 10 }),
);
const bearer = fc.option(fc.oneof(fc.string({ maxLength: 300 }), fc.constant('e30.e30.e30')), { nil: undefined });

interface Probe {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

const enc = (s: string) => s.split('/').map(encodeURIComponent).join('/');

const registryProbe: fc.Arbitrary<Probe> = fc
  .tuple(
    fc.constantFrom('GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'),
    name,
    fc.constantFrom('manifests', 'blobs', 'tags', 'uploads', 'upload', 'referrers'),
    reference,
    nParam,
    fc.string({ maxLength: 50 }),
    bearer,
    fc.option(fc.string({ maxLength: 2000 }), { nil: undefined }),
  )
  .map(([method, repo, kind, ref, n, last, token, body]) => {
    const r = enc(repo);
    const path =
      kind === 'manifests'
        ? `/v2/${r}/manifests/${encodeURIComponent(ref)}`
        : kind === 'blobs'
          ? `/v2/${r}/blobs/${encodeURIComponent(ref)}`
          : kind === 'tags'
            ? `/v2/${r}/tags/list?n=${encodeURIComponent(n)}&last=${encodeURIComponent(last)}`
            : kind === 'uploads'
              ? `/v2/${r}/blobs/uploads/?mount=${encodeURIComponent(ref)}&from=${enc(last)}`
              : kind === 'upload'
                ? `/v2/${r}/blobs/uploads/${encodeURIComponent(ref)}`
                : `/v2/${r}/referrers/${encodeURIComponent(ref)}`;
    const headers: Record<string, string> = {};
    if (token !== undefined) headers['Authorization'] = `Bearer ${token.replace(/[^\x21-\x7e]/g, 'x')}`;
    const probe: Probe = { method, path, headers };
    if (body !== undefined && method !== 'GET' && method !== 'HEAD') {
      probe.body = body;
      headers['Content-Type'] = kind === 'manifests' ? 'application/vnd.oci.image.manifest.v1+json' : 'application/octet-stream';
    }
    return probe;
  });

const scope = fc.oneof(
  name.map((n) => `repository:${n}:pull`),
  name.map((n) => `repository:${n}:pull,push,*`),
  fc.constant('registry:catalog:*'),
  fc.string({ unit: 'grapheme-ascii', maxLength: 300 }),
);

const tokenProbe: fc.Arbitrary<Probe> = fc
  .tuple(
    fc.array(scope, { maxLength: 8 }),
    fc.option(fc.tuple(fc.string({ maxLength: 200 }), fc.string({ maxLength: 100 })), { nil: undefined }),
    fc.boolean(),
    fc.option(fc.constantFrom('password', 'refresh_token', 'client_credentials', 'bogus', 'urn:ietf:params:oauth:grant-type:token-exchange'), {
      nil: undefined,
    }),
    nParam,
  )
  .map(([scopes, credentials, post, grantType, n]) => {
    const headers: Record<string, string> = {};
    if (credentials) headers['Authorization'] = `Basic ${Buffer.from(`${credentials[0]}:${credentials[1]}`).toString('base64')}`;
    if (post) {
      const form = new URLSearchParams({ service: 'berth' });
      if (grantType) form.set('grant_type', grantType);
      for (const s of scopes) form.append('scope', s);
      form.set('refresh_token', n);
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      return { method: 'POST', path: urls.token(), headers, body: form.toString() };
    }
    const query = new URLSearchParams({ service: 'berth' });
    for (const s of scopes) query.append('scope', s);
    return { method: 'GET', path: `${urls.token()}?${query.toString()}`, headers };
  });

const catalogProbe: fc.Arbitrary<Probe> = fc.tuple(nParam, fc.string({ maxLength: 300 }), bearer).map(([n, last, token]) => ({
  method: 'GET',
  path: `/v2/_catalog?n=${encodeURIComponent(n)}&last=${encodeURIComponent(last)}`,
  headers: token === undefined ? {} : { Authorization: `Bearer ${token.replace(/[^\x21-\x7e]/g, 'x')}` },
}));

const probe = fc.oneof(registryProbe, registryProbe, tokenProbe, catalogProbe);

async function send(server: TestServer, p: Probe): Promise<number> {
  const res = await fetch(`${server.url}${p.path}`, { method: p.method, headers: p.headers, ...(p.body !== undefined ? { body: p.body } : {}) });
  await res.arrayBuffer();
  return res.status;
}

describe('fuzzing the server', () => {
  const servers: Record<'auth' | 'open', TestServer | undefined> = { auth: undefined, open: undefined };

  before(async () => {
    servers.auth = await startTestServer({ auth: true });
    await servers.auth.app.metadata.auth.anonymousPull.replace(['*-*-*-*-prod', 'public/**', '**/alpine'], Date.now());
    servers.open = await startTestServer();
  });
  after(async () => {
    await servers.auth?.stop();
    await servers.open?.stop();
  });

  for (const which of ['auth', 'open'] as const) {
    it(`no 5xx and no stall, token service ${which === 'auth' ? 'on' : 'off'}`, async () => {
      const server = servers[which] as TestServer;
      const { maxDelayMs } = await withLoopDelay(() =>
        fc.assert(
          fc.asyncProperty(probe, async (p) => {
            const status = await send(server, p);
            assert.ok(status < 500, `${p.method} ${p.path.slice(0, 200)} answered ${status}`);
          }),
          { numRuns: 250 },
        ),
      );
      assert.ok(maxDelayMs < loopDelayBoundMs, `event loop blocked for ${maxDelayMs} ms`);
    });
  }
});
