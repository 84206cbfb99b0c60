import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nextLink, parseRetryAfter } from './http.js';

describe('nextLink', () => {
  const base = 'https://r.example.com';

  it('resolves the rel="next" target against the base', () => {
    assert.equal(nextLink('</v2/_catalog?n=2&last=b>; rel="next"', base)?.toString(), 'https://r.example.com/v2/_catalog?n=2&last=b');
    assert.equal(nextLink('<https://cdn.example.com/p2>;rel=next', base)?.toString(), 'https://cdn.example.com/p2');
  });

  it('finds next among several links, relation lists and other parameters, with commas inside <> and quotes', () => {
    const header = '</a,b>; rel="prev"; title="x, y", </c?d=1,2>; title="z"; rel="last next"';
    assert.equal(nextLink(header, base)?.toString(), 'https://r.example.com/c?d=1,2');
  });

  it('is undefined without a next link or with a malformed header', () => {
    assert.equal(nextLink(undefined, base), undefined);
    assert.equal(nextLink('</p2>; rel="prev"', base), undefined);
    assert.equal(nextLink('</p2; rel="next"', base), undefined);
    assert.equal(nextLink('rel="next"', base), undefined);
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and HTTP dates', () => {
    assert.equal(parseRetryAfter('120'), 120_000);
    assert.equal(parseRetryAfter(' 0 '), 0);
    assert.equal(parseRetryAfter(new Date(Date.now() - 5000).toUTCString()), 0);
    const ahead = parseRetryAfter(new Date(Date.now() + 3_600_000).toUTCString()) ?? 0;
    assert.ok(ahead > 3_500_000 && ahead <= 3_600_000, String(ahead));
  });

  it('is undefined for nothing or nonsense', () => {
    assert.equal(parseRetryAfter(undefined), undefined);
    assert.equal(parseRetryAfter('soon'), undefined);
  });
});
