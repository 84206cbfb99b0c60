import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isApiError } from '../api/errors.js';
import { formatImageReference, parseImageReference, parseRepositoryReference, referenceOf, registryBaseUrl } from './reference.js';

const digest = `sha256:${'a'.repeat(64)}`;

describe('parseImageReference', () => {
  it('reads a bare name as Docker Hub library/<name> with no tag', () => {
    assert.deepEqual(parseImageReference('alpine'), { registry: 'docker.io', repository: 'library/alpine' });
    assert.equal(referenceOf(parseImageReference('alpine')), 'latest');
  });

  it('keeps a Docker Hub organisation path and normalises the Hub aliases', () => {
    assert.deepEqual(parseImageReference('bitnami/redis:7.2'), { registry: 'docker.io', repository: 'bitnami/redis', tag: '7.2' });
    assert.deepEqual(parseImageReference('index.docker.io/nginx:1'), { registry: 'docker.io', repository: 'library/nginx', tag: '1' });
    assert.deepEqual(parseImageReference('registry-1.docker.io/library/nginx'), { registry: 'docker.io', repository: 'library/nginx' });
  });

  it('takes a first component with a dot, a port or localhost as the registry', () => {
    assert.deepEqual(parseImageReference('ghcr.io/acme/app:v1'), { registry: 'ghcr.io', repository: 'acme/app', tag: 'v1' });
    assert.deepEqual(parseImageReference('127.0.0.1:5000/team/app@' + digest), { registry: '127.0.0.1:5000', repository: 'team/app', digest });
    assert.deepEqual(parseImageReference('localhost/app:1'), { registry: 'localhost', repository: 'app', tag: '1' });
    assert.deepEqual(parseImageReference('[::1]:5000/app:1'), { registry: '[::1]:5000', repository: 'app', tag: '1' });
    assert.deepEqual(parseImageReference('Registry.Example.COM/app'), { registry: 'registry.example.com', repository: 'app' });
  });

  it('keeps both tag and digest, and fetches by the digest', () => {
    const ref = parseImageReference(`quay.io/a/b:1.0@${digest}`);
    assert.deepEqual(ref, { registry: 'quay.io', repository: 'a/b', tag: '1.0', digest });
    assert.equal(referenceOf(ref), digest);
    assert.equal(formatImageReference(ref), `quay.io/a/b:1.0@${digest}`);
  });

  for (const bad of ['', 'UPPER/case', 'a//b', 'app:bad tag', `app@sha256:${'z'.repeat(64)}`, 'app@md5:abc', 'bad_host:99999999/app', '../etc/passwd']) {
    it(`refuses ${JSON.stringify(bad)} with INVALID_REQUEST`, () => {
      assert.throws(
        () => parseImageReference(bad),
        (err: unknown) => isApiError(err) && err.code === 'INVALID_REQUEST',
      );
    });
  }
});

describe('parseRepositoryReference (ACR sourceImage)', () => {
  it('parses repo:tag and repo@digest without a registry', () => {
    assert.deepEqual(parseRepositoryReference('team/app:1'), { repository: 'team/app', tag: '1' });
    assert.deepEqual(parseRepositoryReference(`team/app@${digest}`), { repository: 'team/app', digest });
  });
});

describe('registryBaseUrl', () => {
  it('maps Docker Hub to its API host, loopback to http and everything else to https', () => {
    assert.equal(registryBaseUrl('docker.io'), 'https://registry-1.docker.io');
    assert.equal(registryBaseUrl('127.0.0.1:5001'), 'http://127.0.0.1:5001');
    assert.equal(registryBaseUrl('localhost:5000'), 'http://localhost:5000');
    assert.equal(registryBaseUrl('ghcr.io'), 'https://ghcr.io');
    assert.equal(registryBaseUrl('http://10.0.0.5:5000'), 'http://10.0.0.5:5000');
    assert.equal(registryBaseUrl('https://127.0.0.1:5443/'), 'https://127.0.0.1:5443');
  });
});
