import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { expand, formatScope, limitAccess, missingAccess, parseScope, parseScopes, type Access, type Action } from './access.js';

describe('scopes', () => {
  it('parses names with a host:port prefix and several actions', () => {
    assert.deepEqual(parseScope('repository:localhost:5000/team/app:pull,push'), {
      type: 'repository',
      name: 'localhost:5000/team/app',
      actions: ['pull', 'push'],
    });
    assert.deepEqual(parseScope('registry:catalog:*'), { type: 'registry', name: 'catalog', actions: ['*'] });
  });

  it('drops scopes whose repository name fails the OCI grammar or its length, before anything matches them', () => {
    assert.equal(parseScope(`repository:${'a-'.repeat(3000)}x:pull`), undefined);
    assert.equal(parseScope(`repository:${'a'.repeat(256)}:pull`), undefined);
    assert.equal(parseScope('repository:Team/App:pull'), undefined);
    assert.equal(parseScope('repository:a//b:pull'), undefined);
    assert.equal(parseScope('repository:../etc:pull'), undefined);
    assert.equal(parseScope(`registry:${'c'.repeat(100)}:*`), undefined);
    assert.deepEqual(parseScope(`repository:${'a'.repeat(255)}:pull`)?.actions, ['pull']);
    assert.deepEqual(parseScopes([`repository:${'x-'.repeat(5000)}:pull repository:ok:pull`]).map(formatScope), ['repository:ok:pull']);
  });

  it('drops unknown types and actions, and splits space-separated lists', () => {
    assert.equal(parseScope('bogus:x:pull'), undefined);
    assert.equal(parseScope('repository:pull'), undefined);
    assert.deepEqual(parseScopes(['repository:a:pull repository:b:push,fly', 'repository:c:delete']).map(formatScope), [
      'repository:a:pull',
      'repository:b:push',
      'repository:c:delete',
    ]);
  });

  it('computes what a grant lacks, honouring implied actions', () => {
    const granted = [{ type: 'repository' as const, name: 'a', actions: ['pull' as const] }];
    assert.deepEqual(missingAccess(granted, [{ type: 'repository', name: 'a', actions: ['metadata_read'] }]), []);
    assert.deepEqual(missingAccess(granted, [{ type: 'repository', name: 'a', actions: ['pull', 'push'] }]), [
      { type: 'repository', name: 'a', actions: ['push'] },
    ]);
    assert.deepEqual(missingAccess(granted, [{ type: 'repository', name: 'b', actions: ['pull'] }]), [{ type: 'repository', name: 'b', actions: ['pull'] }]);
  });

  it('computes what is missing exactly as the set definition does, for any grants and requests', () => {
    // The definition missingAccess implements without allocating: per required entry, the actions
    // that no granted entry for the same resource implies; an entry with no actions needs some grant.
    const definition = (granted: readonly Access[], required: readonly Access[]): Access[] =>
      required.flatMap((need) => {
        const have = expand(granted.filter((g) => g.type === need.type && g.name === need.name).flatMap((g) => g.actions));
        const lacking = need.actions.filter((action) => !have.has(action));
        return lacking.length > 0 || (need.actions.length === 0 && have.size === 0) ? [{ type: need.type, name: need.name, actions: lacking }] : [];
      });
    const action = fc.constantFrom<Action>('pull', 'push', 'delete', 'metadata_read', 'metadata_write', '*');
    const access = fc.record({
      type: fc.constantFrom<Access['type']>('repository', 'registry'),
      name: fc.constantFrom('a', 'b', 'catalog'),
      actions: fc.array(action, { maxLength: 4 }),
    });
    fc.assert(
      fc.property(fc.array(access, { maxLength: 5 }), fc.array(access, { maxLength: 3 }), (granted, required) => {
        assert.deepEqual(missingAccess(granted, required), definition(granted, required));
      }),
      { numRuns: 2000 },
    );
  });

  it('limits access to a ceiling, narrowing broad actions to what it allows', () => {
    const limit = (access: string, ceiling: string) => limitAccess(parseScopes([access]), parseScopes([ceiling])).map(formatScope);
    assert.deepEqual(limit('repository:a:pull,push repository:b:pull', 'repository:a:pull'), ['repository:a:pull']);
    assert.deepEqual(limit('repository:a:*', 'repository:a:pull'), ['repository:a:pull']);
    assert.deepEqual(limit('repository:a:pull', 'repository:a:metadata_read'), ['repository:a:metadata_read']);
    assert.deepEqual(limit('repository:a:delete', 'repository:a:*'), ['repository:a:delete']);
    assert.deepEqual(limit('registry:catalog:*', 'repository:a:pull'), []);
    assert.deepEqual(limitAccess(parseScopes(['repository:a:pull']), []), []);
  });
});
