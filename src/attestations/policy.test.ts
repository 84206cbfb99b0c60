import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluatePull, evaluatePush, failedCondition, type AttestationRule, type Evidence } from './policy.js';

const release: AttestationRule = {
  name: 'release',
  repositories: 'acme/*',
  tags: 'v*',
  identity: { job_workflow_ref: 'acme/app/.github/workflows/release.yml@refs/tags/*', issuer: 'https://token.actions.githubusercontent.com' },
  keyHints: ['k-listed'],
  enforce: { pull: true, push: true },
};

const identity = {
  iss: 'https://token.actions.githubusercontent.com',
  sub: 'repo:acme/app:ref:refs/tags/v1',
  job_workflow_ref: 'acme/app/.github/workflows/release.yml@refs/tags/v1',
  aud: ['berth', 'other'],
  principal: 'ci',
};
const berth = (id: Record<string, string | string[]>): Evidence => ({ berth: true, keyHint: 'k-berth', identity: id, digest: 'sha256:att' });

describe('attestation rules', () => {
  it('conditions: globs over claims, aliases, lists match if any element does, a missing claim fails', () => {
    assert.equal(failedCondition(release.identity, identity), undefined);
    assert.equal(failedCondition({ aud: 'other' }, identity), undefined);
    assert.deepEqual(failedCondition({ ref: 'refs/tags/*' }, identity), { claim: 'ref', glob: 'refs/tags/*' });
    assert.deepEqual(failedCondition({ subject: 'repo:acme/app:ref:refs/heads/*' }, identity), {
      claim: 'subject',
      glob: 'repo:acme/app:ref:refs/heads/*',
    });
  });

  it('pull: allowed by a matching Berth attestation or a listed key; refused otherwise, naming the rule; artifacts and other repositories pass', () => {
    assert.deepEqual(evaluatePull([release], 'acme/app', true, [berth(identity)]), { allowed: true, rule: 'release', by: 'sha256:att' });
    assert.equal(evaluatePull([release], 'acme/app', true, [{ berth: false, keyHint: 'k-listed', identity: undefined, digest: 'd' }]).allowed, true);
    const wrong = evaluatePull([release], 'acme/app', true, [berth({ ...identity, job_workflow_ref: 'acme/app/.github/workflows/build.yml@refs/heads/main' })]);
    assert.equal(wrong.allowed, false);
    assert.match(wrong.allowed ? '' : wrong.reason, /^rule release requires .*none of its 1 valid attestation\(s\) matches$/);
    const none = evaluatePull([release], 'acme/app', true, []);
    assert.match(none.allowed ? '' : none.reason, /carries no valid attestation/);
    // An identity from another signer (not Berth's key) does not count as a push attestation.
    assert.equal(evaluatePull([release], 'acme/app', true, [{ ...berth(identity), berth: false, keyHint: 'k-other' }]).allowed, false);
    assert.equal(evaluatePull([release], 'acme/app', false, []).allowed, true, 'an artifact (signature, SBOM) is not an image');
    assert.equal(evaluatePull([release], 'other/app', true, []).allowed, true);
    assert.equal(evaluatePull([release], 'acme/app/deep', true, []).allowed, true, '`*` stays within one path component');
  });

  it('push: a governed tag needs the pusher to match, or an attestation already on the image; digests and other tags pass', () => {
    assert.equal(evaluatePush([release], 'acme/app', 'v1', { principal: 'ci', identity }, []).allowed, true);
    const password = evaluatePush([release], 'acme/app', 'v1', { principal: 'owner', identity: undefined }, []);
    assert.equal(password.allowed, false);
    assert.match(password.allowed ? '' : password.reason, /this push by owner does not: it is not a federated/);
    const build = evaluatePush([release], 'acme/app', 'v1', { principal: 'ci', identity: { ...identity, job_workflow_ref: 'x' } }, []);
    assert.match(build.allowed ? '' : build.reason, /job_workflow_ref does not match/);
    assert.equal(evaluatePush([release], 'acme/app', 'v1', { principal: 'sync', identity: undefined }, [berth(identity)]).allowed, true, 'a copy');
    assert.equal(evaluatePush([release], 'acme/app', 'latest', { principal: 'owner', identity: undefined }, []).allowed, true);
    assert.equal(evaluatePush([release], 'acme/app', undefined, { principal: 'owner', identity: undefined }, []).allowed, true);
    assert.equal(
      evaluatePush([{ ...release, enforce: { pull: true, push: false } }], 'acme/app', 'v1', { principal: 'o', identity: undefined }, []).allowed,
      true,
    );
  });
});
