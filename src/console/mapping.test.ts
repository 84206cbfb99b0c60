import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { grantsForClaims, rulesProblem, type ClaimRule } from './mapping.js';

const rules: ClaimRule[] = [
  { claims: [{ claim: 'groups', equals: 'platform' }], grants: [{ pattern: '**', permission: 'owner' }] },
  {
    claims: [
      { claim: 'email', glob: '*@example.com' },
      { claim: 'groups', oneOf: ['dev', 'qa'] },
    ],
    grants: [{ pattern: 'team/*', permission: 'push' }],
  },
  {
    claims: [{ claim: 'email_verified', equals: 'true' }],
    grants: [
      { pattern: 'public/**', permission: 'pull' },
      { pattern: 'team/*', permission: 'push' },
    ],
  },
];

describe('single sign-on claim rules', () => {
  it('grants the union of every rule whose conditions all hold, without duplicates, in rule order', () => {
    const { grants, matched } = grantsForClaims(rules, { email: 'ada@example.com', email_verified: true, groups: ['dev'] });
    assert.deepEqual(matched, [1, 2]);
    assert.deepEqual(grants, [
      { pattern: 'team/*', permission: 'push' },
      { pattern: 'public/**', permission: 'pull' },
    ]);
  });

  it('matches a list claim when any entry meets the condition, and a scalar claim as text', () => {
    assert.deepEqual(grantsForClaims(rules, { groups: ['sales', 'platform'] }).matched, [0]);
    assert.deepEqual(grantsForClaims(rules, { groups: 'platform' }).matched, [0]);
    assert.deepEqual(
      grantsForClaims([{ claims: [{ claim: 'level', equals: '3' }], grants: [{ pattern: 'x', permission: 'pull' }] }], { level: 3 }).matched,
      [0],
    );
  });

  it('needs every condition of a rule; a missing claim or an object never matches', () => {
    assert.deepEqual(grantsForClaims(rules, { email: 'ada@example.com', groups: ['sales'] }).grants, []);
    assert.deepEqual(grantsForClaims(rules, { email: 'mallory@example.com.evil', groups: ['dev'] }).grants, []);
    assert.deepEqual(grantsForClaims(rules, { groups: [{ name: 'platform' }] }).grants, []);
    assert.deepEqual(grantsForClaims(rules, {}).grants, []);
  });

  it('refuses rule sets with an unknown permission or a bad pattern', () => {
    assert.equal(rulesProblem(rules), undefined);
    assert.match(rulesProblem([{ claims: [], grants: [{ pattern: 'a', permission: 'admin' }] }]) ?? '', /unknown role or action "admin"/);
    assert.match(rulesProblem([{ claims: [], grants: [{ pattern: 'A//b', permission: 'pull' }] }]) ?? '', /invalid repository pattern/);
  });
});
