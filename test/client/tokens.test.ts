/** The client half of token auth (remote/): reading challenges, naming registries, and where credentials may go. */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { bearerChallenge as parseChallenge } from '../../src/remote/challenge.js';
import { registryHost, registryUrl } from '../../src/remote/reference.js';
import { discover, exchangeEndpoint, LoginError, requestTokens, tokenTimes } from '../../src/remote/tokens.js';

describe('bearerChallenge', () => {
  it('reads realm, service and scope from a Bearer challenge', () => {
    assert.deepEqual(parseChallenge('Bearer realm="http://127.0.0.1:5000/oauth2/token",service="berth",scope="repository:a/b:pull,push"'), {
      realm: 'http://127.0.0.1:5000/oauth2/token',
      service: 'berth',
      scope: 'repository:a/b:pull,push',
    });
  });

  it('accepts any parameter order, extra parameters and a case-insensitive scheme', () => {
    const challenge = parseChallenge('bearer error="invalid_token",scope="registry:catalog:*",realm="https://auth.example.com/token"');
    assert.deepEqual(challenge, { realm: 'https://auth.example.com/token', service: undefined, scope: 'registry:catalog:*' });
  });

  it('keeps a scope holding several space-separated resources whole', () => {
    assert.equal(parseChallenge('Bearer realm="https://r/t",scope="repository:a:pull repository:b:pull"')?.scope, 'repository:a:pull repository:b:pull');
  });

  it('yields undefined for no header, Basic challenges and a Bearer challenge without realm', () => {
    assert.equal(parseChallenge(null), undefined);
    assert.equal(parseChallenge('Basic realm="registry"'), undefined);
    assert.equal(parseChallenge('Bearer service="berth"'), undefined);
  });
});

describe('registryHost', () => {
  it('is HOST[:PORT] however the registry is written, as docker keys config.json', () => {
    assert.equal(registryHost('127.0.0.1:5000'), '127.0.0.1:5000');
    assert.equal(registryHost('http://127.0.0.1:5000/'), '127.0.0.1:5000');
    assert.equal(registryHost('https://Registry.Example.com/v2/'), 'registry.example.com');
    assert.equal(registryHost('registry.example.com/team/app'), 'registry.example.com');
    assert.equal(registryHost('[::1]:5000'), '[::1]:5000');
  });

  it('rejects what is not an address with a message showing the expected form', () => {
    assert.throws(() => registryHost(''), LoginError);
    assert.throws(() => registryHost('user@host:5000'), /expected HOST\[:PORT\]/);
  });
});

describe('registryUrl', () => {
  it('uses plain HTTP only for loopback hosts (or when told), HTTPS otherwise', () => {
    assert.equal(registryUrl('127.0.0.1:5000'), 'http://127.0.0.1:5000');
    assert.equal(registryUrl('localhost:5000'), 'http://localhost:5000');
    assert.equal(registryUrl('registry.example.com'), 'https://registry.example.com');
    assert.equal(registryUrl('https://127.0.0.1:5000/'), 'https://127.0.0.1:5000');
  });
});

describe('tokenTimes', () => {
  const jwt = (claims: object) => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;

  it('reads iat and exp (in ms) without verifying', () => {
    assert.deepEqual(tokenTimes(jwt({ iat: 100, exp: 160 })), { issuedAt: 100_000, expiresAt: 160_000 });
    assert.deepEqual(tokenTimes(jwt({ exp: 160 })), { issuedAt: undefined, expiresAt: 160_000 });
  });

  it('is undefined for opaque tokens and JWTs without exp', () => {
    assert.equal(tokenTimes('opaque-refresh-token'), undefined);
    assert.equal(tokenTimes(jwt({ iat: 1 })), undefined);
    assert.equal(tokenTimes('a.!!!.c'), undefined);
  });
});

describe('exchangeEndpoint', () => {
  it('sits beside the token realm, as in ACR', () => {
    assert.equal(exchangeEndpoint('https://r.example.com/oauth2/token'), 'https://r.example.com/oauth2/exchange');
  });
});

describe('discover', () => {
  /** A loopback "registry" whose /v2/ answers with whatever the test sets. */
  let server: Server;
  let base = '';
  let answer: { status: number; challenge?: string } = { status: 200 };
  const posts: string[] = [];
  before(async () => {
    server = createServer((req, res) => {
      if (req.method === 'POST') posts.push(req.url ?? '');
      if (answer.challenge) res.setHeader('WWW-Authenticate', answer.challenge);
      res.statusCode = answer.status;
      res.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => new Promise<void>((resolve) => server.close(() => resolve())));

  it('yields undefined when /v2/ answers 200 (no auth)', async () => {
    answer = { status: 200 };
    assert.equal(await discover(base), undefined);
  });

  it('returns the challenge of a 401', async () => {
    answer = { status: 401, challenge: `Bearer realm="${base}/oauth2/token",service="berth"` };
    assert.deepEqual(await discover(base), { realm: `${base}/oauth2/token`, service: 'berth', scope: undefined });
  });

  it('refuses a realm that would take credentials over plain HTTP off loopback, before sending any', async () => {
    answer = { status: 401, challenge: 'Bearer realm="http://auth.example.com/token",service="berth"' };
    await assert.rejects(discover(base), /refusing to send credentials to http:\/\/auth\.example\.com\/token over plain HTTP; serve the registry over HTTPS/);
    await assert.rejects(
      requestTokens({ realm: 'http://auth.example.com/token', service: 'berth', scope: undefined }, { username: 'u', password: 'p' }, [], true),
      /refusing to send credentials/,
    );
    assert.deepEqual(posts, []);
  });

  it("reads the audience the registry advertises for OIDC tokens (Berth's audience auth-param)", async () => {
    answer = { status: 401, challenge: `Bearer realm="${base}/oauth2/token",service="berth",audience="urn:berth:reg-a"` };
    assert.deepEqual(await discover(base), { realm: `${base}/oauth2/token`, service: 'berth', scope: undefined, audience: 'urn:berth:reg-a' });
  });

  it('refuses a token realm on another host than the registry (credentials and identity tokens go nowhere else)', async () => {
    const port = new URL(base).port;
    for (const realm of [`http://localhost:${port}/oauth2/token`, 'https://auth.example.com/token', `http://127.0.0.1:${Number(port) + 1}/oauth2/token`]) {
      answer = { status: 401, challenge: `Bearer realm="${realm}",service="berth"` };
      await assert.rejects(discover(base), (err: Error) => {
        assert.ok(err instanceof LoginError);
        assert.equal(err.reason, 'insecure');
        assert.match(
          err.message,
          new RegExp(`^127\\.0\\.0\\.1:${port} names a token service on another host \\(${new URL(realm).host.replace(/\./g, '\\.')}\\)`),
        );
        return true;
      });
    }
    assert.deepEqual(posts, []);
  });

  it('explains a 401 without a Bearer challenge and an unreachable address in one line each', async () => {
    answer = { status: 401, challenge: 'Basic realm="x"' };
    await assert.rejects(discover(base), /answered 401 without a Bearer challenge; is this an OCI registry\?/);
    const closed = await closedPort();
    await assert.rejects(discover(`http://127.0.0.1:${closed}`), (err: Error) => {
      assert.ok(err instanceof LoginError);
      assert.equal(err.message, `cannot reach http://127.0.0.1:${closed}: ECONNREFUSED; check the address and that the registry is running`);
      return true;
    });
  });
});

/** A loopback port nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
