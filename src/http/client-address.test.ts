import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { clientAddressResolver } from './client-address.js';

function request(peer: string, forwardedFor?: string | string[]): IncomingMessage {
  return { socket: { remoteAddress: peer }, headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } } as unknown as IncomingMessage;
}

describe('client address', () => {
  it('is the peer without trusted proxies, whatever X-Forwarded-For says', () => {
    const of = clientAddressResolver([]);
    assert.equal(of(request('203.0.113.7', '198.51.100.1')), '203.0.113.7');
    assert.equal(of(request('::ffff:203.0.113.7')), '203.0.113.7');
    assert.equal(of(request('2001:db8::1')), '2001:db8::1');
  });

  it('behind trusted proxies, is the rightmost X-Forwarded-For hop that is not a trusted proxy', () => {
    const of = clientAddressResolver(['10.0.0.0/8', '192.0.2.10']);
    // The client wrote the first entry itself; the proxies appended the rest.
    assert.equal(of(request('10.1.2.3', '6.6.6.6, 198.51.100.9, 192.0.2.10')), '198.51.100.9');
    assert.equal(of(request('10.1.2.3', ['6.6.6.6', '198.51.100.9'])), '198.51.100.9');
    // Every hop trusted: the leftmost one.
    assert.equal(of(request('10.1.2.3', '10.9.9.9, 192.0.2.10')), '10.9.9.9');
    // No header: the proxy itself.
    assert.equal(of(request('10.1.2.3')), '10.1.2.3');
    // Garbage stops the walk at the last well-formed hop.
    assert.equal(of(request('10.1.2.3', 'evil, not-an-ip')), '10.1.2.3');
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', () => {
    const of = clientAddressResolver(['10.0.0.0/8']);
    assert.equal(of(request('198.51.100.20', '10.0.0.1')), '198.51.100.20');
  });

  it('reads IPv6 ranges', () => {
    const of = clientAddressResolver(['2001:db8::/32']);
    assert.equal(of(request('2001:db8::5', '2001:db9::1')), '2001:db9::1');
  });
});
