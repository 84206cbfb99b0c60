import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLoopbackHost, isLoopbackHostname, isLoopbackUrl } from './loopback.js';

describe('loopback', () => {
  it('accepts localhost, 127.0.0.0/8 and ::1, with or without a port', () => {
    for (const host of ['localhost', 'LOCALHOST:5000', '127.0.0.1', '127.1.2.3:443', '[::1]', '[::1]:5000', '::1']) assert.ok(isLoopbackHost(host), host);
    assert.ok(isLoopbackUrl(new URL('http://[::1]:8080/x')));
    assert.ok(isLoopbackUrl(new URL('http://127.0.0.1/')));
  });

  it('refuses everything else, including names that only look local', () => {
    for (const host of ['example.com', '10.0.0.1', '128.0.0.1', '127.0.0.1.nip.io', 'localhost.example.com', '[::2]', '0.0.0.0', '']) {
      assert.ok(!isLoopbackHost(host), host);
    }
    assert.ok(!isLoopbackHostname('127.0.0.1.evil'));
    assert.ok(!isLoopbackUrl(new URL('http://localhost.evil.com/')));
  });
});
