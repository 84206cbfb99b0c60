import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Action } from './access.js';
import { grantAccess, isPermission, isValidPattern, matchesPattern, readableRepository, type Grant, type Permission } from './permissions.js';

describe('repository patterns', () => {
  const cases: Array<[string, string, boolean]> = [
    ['team-a/*', 'team-a/app', true],
    ['team-a/*', 'team-a/app/sub', false],
    ['team-a/*', 'team-b/app', false],
    ['vendor/**', 'vendor/a/b/c', true],
    ['vendor/**', 'vendor', false],
    ['**', 'anything/at/all', true],
    ['app', 'app', true],
    ['app', 'app2', false],
    ['*-svc', 'pay-svc', true],
    ['a.b', 'axb', false],
  ];
  for (const [pattern, repository, expected] of cases) {
    it(`${pattern} ${expected ? 'matches' : 'does not match'} ${repository}`, () => assert.equal(matchesPattern(pattern, repository), expected));
  }
  it('matches only names that pass the OCI grammar and length (no pattern runs over an unvalidated name)', () => {
    const long = 'a-'.repeat(3000) + 'prod';
    assert.equal(matchesPattern('*-*-*-*-prod', long), false);
    assert.equal(matchesPattern('**', long), false);
    assert.equal(matchesPattern('**', 'Team/App'), false);
    assert.equal(matchesPattern('*-*-*-*-prod', 'a-b-c-d-prod'), true);
    assert.deepEqual(grantAccess([{ pattern: '**', permission: 'pull' }], [{ type: 'repository', name: long, actions: ['pull'] }]), []);
    assert.equal(readableRepository([{ pattern: '**', permission: 'pull' }], long), false);
  });
  it('knows the permissions by name only (no inherited object keys)', () => {
    assert.equal(isPermission('content/read'), true);
    assert.equal(isPermission('owner'), true);
    assert.equal(isPermission('constructor'), false);
    assert.equal(isPermission('toString'), false);
    assert.equal(isPermission('__proto__'), false);
  });
  it('validates pattern syntax', () => {
    assert.equal(isValidPattern('team-a/*'), true);
    assert.equal(isValidPattern('vendor/**'), true);
    assert.equal(isValidPattern('../x'), false);
    assert.equal(isValidPattern('Team/*'), false);
  });
});

describe('the scope matrix: permission x requested action x repository', () => {
  // [permission on pattern, requested action on repository, granted actions]
  const matrix: Array<[Permission, string, string, Action, Action[]]> = [
    ['pull', 'team-a/*', 'team-a/app', 'pull', ['pull']],
    ['pull', 'team-a/*', 'team-a/app', 'push', []],
    ['pull', 'team-a/*', 'team-a/app', 'delete', []],
    ['pull', 'team-a/*', 'team-b/app', 'pull', []],
    ['push', 'team-a/*', 'team-a/app', 'pull', ['pull']],
    ['push', 'team-a/*', 'team-a/app', 'push', ['push']],
    ['push', 'team-a/*', 'team-a/app', 'delete', []],
    ['push', 'team-a/*', 'other/app', 'push', []],
    ['delete', 'vendor/**', 'vendor/x/y', 'delete', ['delete']],
    ['delete', 'vendor/**', 'vendor/x/y', 'pull', []],
    ['owner', '**', 'any/repo', 'pull', ['pull']],
    ['owner', '**', 'any/repo', 'push', ['push']],
    ['owner', '**', 'any/repo', 'delete', ['delete']],
    ['owner', '**', 'any/repo', '*', ['*']],
    ['content/read', 'app', 'app', 'pull', ['pull']],
    ['content/read', 'app', 'app', 'push', []],
    ['content/write', 'app', 'app', 'push', ['push']],
    ['content/write', 'app', 'app', 'pull', []],
    ['content/delete', 'app', 'app', 'delete', ['delete']],
    ['metadata/read', 'app', 'app', 'pull', ['metadata_read']],
    ['metadata/write', 'app', 'app', 'delete', ['metadata_write']],
    ['metadata/write', 'app', 'app', 'push', []],
  ];
  for (const [permission, pattern, repository, action, expected] of matrix) {
    it(`${permission} on ${pattern}, asking ${action} on ${repository}, grants [${expected.join(',')}]`, () => {
      const grants: Grant[] = [{ pattern, permission }];
      const granted = grantAccess(grants, [{ type: 'repository', name: repository, actions: [action] }]);
      assert.deepEqual(
        granted.flatMap((g) => g.actions),
        expected,
      );
    });
  }

  it('grants the whole catalog with a read or owner grant at registry scope, a filtered one (metadata_read) with a read grant elsewhere', () => {
    const catalog = [{ type: 'registry' as const, name: 'catalog', actions: ['*' as const] }];
    assert.deepEqual(grantAccess([{ pattern: '**', permission: 'pull' }], catalog)[0]?.actions, ['*']);
    assert.deepEqual(grantAccess([{ pattern: 'team-a/*', permission: 'owner' }], catalog)[0]?.actions, ['metadata_read']);
    assert.deepEqual(grantAccess([{ pattern: 'team-a/*', permission: 'metadata/read' }], catalog)[0]?.actions, ['metadata_read']);
    assert.equal(grantAccess([{ pattern: 'team-a/*', permission: 'delete' }], catalog).length, 0);
    assert.equal(grantAccess([{ pattern: 'team-a/*', permission: 'content/write' }], catalog).length, 0);
  });

  it('a filtered catalog shows the repositories the grants can read', () => {
    const grants = [
      { pattern: 'team-a/*', permission: 'pull' as const },
      { pattern: 'team-b/**', permission: 'delete' as const },
    ];
    assert.equal(readableRepository(grants, 'team-a/app'), true);
    assert.equal(readableRepository(grants, 'team-a/app/cache'), false);
    assert.equal(readableRepository(grants, 'team-b/app'), false);
  });

  it('intersects several scopes independently', () => {
    const granted = grantAccess(
      [
        { pattern: 'a', permission: 'push' },
        { pattern: 'b', permission: 'pull' },
      ],
      [
        { type: 'repository', name: 'a', actions: ['pull', 'push'] },
        { type: 'repository', name: 'b', actions: ['pull', 'push'] },
        { type: 'repository', name: 'c', actions: ['pull'] },
      ],
    );
    assert.deepEqual(granted, [
      { type: 'repository', name: 'a', actions: ['pull', 'push'] },
      { type: 'repository', name: 'b', actions: ['pull'] },
    ]);
  });
});
