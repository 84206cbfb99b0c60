import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bearerChallenge, parseChallenges } from './challenge.js';

describe('parseChallenges', () => {
  it('reads the parameters of one challenge, names lower-cased, values unquoted', () => {
    assert.deepEqual(parseChallenges('Bearer Realm="https://auth.example.com/token",SERVICE="registry.example.com",scope="repository:a/b:pull,push"'), [
      { scheme: 'bearer', params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push' } },
    ]);
  });

  it('keeps commas, spaces and escaped quotes inside quoted strings', () => {
    const [challenge] = parseChallenges('Bearer realm="https://r/t", scope="repository:a:pull repository:b:pull,push", error="say \\"no\\", twice"');
    assert.equal(challenge?.params['scope'], 'repository:a:pull repository:b:pull,push');
    assert.equal(challenge?.params['error'], 'say "no", twice');
  });

  it('accepts tokens as values and whitespace around "=" (BWS)', () => {
    assert.deepEqual(parseChallenges('Basic realm = registry , charset=UTF-8'), [{ scheme: 'basic', params: { realm: 'registry', charset: 'UTF-8' } }]);
  });

  it('splits several challenges in one header and across headers', () => {
    const parsed = parseChallenges(['Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"', 'Bearer realm="https://r/t"']);
    assert.deepEqual(
      parsed.map((c) => [c.scheme, c.params]),
      [
        ['newauth', { realm: 'apps', type: '1', title: 'Login to "apps"' }],
        ['basic', { realm: 'simple' }],
        ['bearer', { realm: 'https://r/t' }],
      ],
    );
  });

  it('reads token68 and bare schemes', () => {
    assert.deepEqual(parseChallenges('Negotiate, Custom abc+/def==, Basic realm="x"'), [
      { scheme: 'negotiate', params: {} },
      { scheme: 'custom', params: {}, token68: 'abc+/def==' },
      { scheme: 'basic', params: { realm: 'x' } },
    ]);
  });

  it('keeps the first of a repeated parameter', () => {
    assert.equal(parseChallenges('Bearer realm="https://first/t", realm="https://second/t"')[0]?.params['realm'], 'https://first/t');
  });

  it('drops a malformed challenge and what follows it, keeping what came before', () => {
    assert.deepEqual(parseChallenges('Basic realm="a", Bearer realm="unterminated'), [{ scheme: 'basic', params: { realm: 'a' } }]);
    assert.deepEqual(parseChallenges('Bearer realm=https://not-a-token/t'), []);
    assert.deepEqual(parseChallenges('Bearer realm="a\u0000b"'), []);
    assert.deepEqual(parseChallenges('"quoted" realm="x"'), []);
    assert.deepEqual(parseChallenges(''), []);
    assert.deepEqual(parseChallenges(null), []);
  });

  it('takes a parameter named __proto__ as data', () => {
    const [challenge] = parseChallenges('Bearer __proto__="x", realm="r"');
    assert.equal(Object.getPrototypeOf(challenge?.params), Object.prototype);
    assert.equal(challenge?.params['__proto__' as string], 'x');
    assert.equal(challenge?.params['realm'], 'r');
  });

  it('reads long input with many parameters and escapes (one linear scan)', () => {
    const long = `Bearer ${'a=b,'.repeat(50_000)}realm="${'\\"'.repeat(50_000)}"`;
    const [challenge] = parseChallenges(long);
    assert.equal(challenge?.params['realm'], '"'.repeat(50_000));
  });
});

describe('bearerChallenge', () => {
  it('reads realm, service and scope, case-insensitively and in any order', () => {
    assert.deepEqual(bearerChallenge('bearer error="invalid_token",scope="registry:catalog:*",realm="https://auth.example.com/token"'), {
      realm: 'https://auth.example.com/token',
      service: undefined,
      scope: 'registry:catalog:*',
    });
  });

  it('finds the Bearer challenge among others', () => {
    assert.equal(bearerChallenge('Basic realm="x", Bearer realm="https://r/t",service="s"')?.service, 's');
  });

  it('is undefined without a header, for Basic only, and for a Bearer challenge without realm', () => {
    assert.equal(bearerChallenge(undefined), undefined);
    assert.equal(bearerChallenge('Basic realm="registry"'), undefined);
    assert.equal(bearerChallenge('Bearer service="berth"'), undefined);
  });
});
