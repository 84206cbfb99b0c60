import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { source } from './history.js';

describe('berth history: the SOURCE column', () => {
  const cases: Array<[string, Record<string, unknown> | null, string]> = [
    ['a password push', null, '-'],
    [
      'a GitHub Actions run',
      { repository: 'acme/app', sha: '0123456789abcdef', workflow: 'release', run_id: '42', run_attempt: '2' },
      'acme/app@0123456 workflow release run 42 (attempt 2)',
    ],
    ['a GitLab pipeline', { project_path: 'group/app', sha: 'abcdef0123', pipeline_id: 7 }, 'group/app@abcdef0 pipeline 7'],
    [
      'a Kubernetes pod',
      { 'kubernetes.io': { namespace: 'prod', pod: { name: 'web-1' }, serviceaccount: { name: 'web' } } },
      'pod prod/web-1 (service account web)',
    ],
    ['an import job', { import: { job: 'j-1', source: 'registry.example/team/app@sha256:ab' } }, 'import j-1 from registry.example/team/app@sha256:ab'],
    [
      'a sync rule',
      { sync: { rule: 'vendor', source: 'https://vendor.example', repository: 'tripinsights/api', tag: 'v1' } },
      'sync vendor from https://vendor.example tripinsights/api',
    ],
    [
      'the pull-through cache',
      { proxy: { rule: 'hub', upstream: 'https://registry-1.docker.io', repository: 'library/alpine', reference: '3.20', digest: 'sha256:ab12' } },
      'proxy:hub from registry-1.docker.io/library/alpine@sha256:ab12',
    ],
    ['another issuer', { sub: 'spiffe://cluster/ns/x' }, 'spiffe://cluster/ns/x'],
  ];
  for (const [name, provenance, expected] of cases) {
    it(name, () => assert.equal(source(provenance), expected));
  }
});
