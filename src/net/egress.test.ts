import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { compilePolicy, createEgress, EgressRefused, refusalReason } from './egress.js';

describe('refusalReason', () => {
  const strict = compilePolicy({ allowPrivateNetworks: false, allow: [] });
  const cases: Array<[string, string | undefined]> = [
    ['93.184.216.34', undefined],
    ['2606:4700::1111', undefined],
    ['127.0.0.1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['::1', 'loopback'],
    ['fe80::1', 'linkLocal'],
    ['fd00::1', 'uniqueLocal'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:169.254.169.254', 'linkLocal'],
  ];
  for (const [address, reason] of cases) {
    test(`${address} -> ${reason ?? 'allowed'}`, () => assert.equal(refusalReason(strict, address), reason));
  }

  test('allow entries open exactly their ranges', () => {
    const policy = compilePolicy({ allowPrivateNetworks: false, allow: ['10.1.0.0/16', '::1/128', '192.168.5.5'] });
    assert.equal(refusalReason(policy, '10.1.200.3'), undefined);
    assert.equal(refusalReason(policy, '10.2.0.1'), 'private');
    assert.equal(refusalReason(policy, '::1'), undefined);
    assert.equal(refusalReason(policy, '127.0.0.1'), 'loopback');
    assert.equal(refusalReason(policy, '192.168.5.5'), undefined);
    assert.equal(refusalReason(compilePolicy({ allowPrivateNetworks: true, allow: [] }), '127.0.0.1'), undefined);
  });

  test('a bad CIDR is a configuration error', () => {
    assert.throws(() => compilePolicy({ allowPrivateNetworks: false, allow: ['10.0.0.0/99'] }), /not a valid CIDR/);
  });
});

describe('the dispatcher and check() against real loopback servers', () => {
  let target: Server;
  let redirector: Server;
  let targetPort = 0;
  let redirectorPort = 0;

  before(async () => {
    target = createServer((_req, res) => res.end('secret'));
    redirector = createServer((_req, res) => res.writeHead(302, { location: `http://127.0.0.1:${targetPort}/` }).end());
    await Promise.all([target, redirector].map((s) => new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok))));
    targetPort = (target.address() as AddressInfo).port;
    redirectorPort = (redirector.address() as AddressInfo).port;
  });
  after(() => {
    target.close();
    redirector.close();
  });

  test('loopback is refused by default, for IP literals and names', async () => {
    const egress = createEgress({ allowPrivateNetworks: false, allow: [] });
    try {
      for (const host of ['127.0.0.1', 'localhost', '[::ffff:127.0.0.1]']) {
        const url = `http://${host}:${targetPort}/`;
        await assert.rejects(request(url, { dispatcher: egress.dispatcher }), (err: unknown) => {
          assert.ok(err instanceof EgressRefused, `${url}: ${String(err)}`);
          assert.match(err.message, /loopback addresses are not allowed by the egress policy/);
          return true;
        });
        await assert.rejects(egress.check(url), /loopback addresses are not allowed/);
      }
    } finally {
      await egress.close();
    }
  });

  test('an allowed CIDR opens the connection', async () => {
    const egress = createEgress({ allowPrivateNetworks: false, allow: ['127.0.0.1/32'] });
    try {
      const res = await request(`http://127.0.0.1:${targetPort}/`, { dispatcher: egress.dispatcher });
      assert.equal(await res.body.text(), 'secret');
      await egress.check(`http://127.0.0.1:${targetPort}/`);
    } finally {
      await egress.close();
    }
  });

  test('a redirect from an allowed host into a refused one is not followed', async () => {
    // Only the redirector's host:port is allowed; the redirect points at another loopback port.
    const egress = createEgress({ allowPrivateNetworks: false, allow: [`127.0.0.1:${redirectorPort}`] });
    try {
      await egress.check(`http://127.0.0.1:${redirectorPort}/`);
      await assert.rejects(
        request(`http://127.0.0.1:${redirectorPort}/`, { dispatcher: egress.dispatcher, maxRedirections: 3 }),
        (err: unknown) => err instanceof EgressRefused,
      );
    } finally {
      await egress.close();
    }
  });

  test('check() refuses other schemes and unparseable URLs', async () => {
    const egress = createEgress({ allowPrivateNetworks: true, allow: [] });
    await assert.rejects(egress.check('file:///etc/passwd'), /file: URLs are not allowed/);
    await assert.rejects(egress.check('not a url'), /not a valid URL/);
    await egress.close();
  });
});
