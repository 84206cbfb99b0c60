/**
 * The deploy manifests agree with each other and with the controller: the CEL variant of the CRD is
 * the CRD plus rules, the CRD's patterns accept and refuse what the controller's validation does,
 * and the names the Deployment, RBAC and admission policy use are the same. (The CRD and RBAC are
 * also applied to a real API server by the other tests in this folder.)
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { SpecError, validateSpec } from '../../src/kube/validation.js';
import type { PullBindingSpec } from '../../src/kube/types.js';
import { deployDir } from './helpers.js';

type Json = Record<string, unknown>;

async function docs(file: string): Promise<Json[]> {
  return parseAllDocuments(await readFile(join(deployDir, file), 'utf8')).map((d) => d.toJS() as Json);
}

function withoutCel(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutCel);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => k !== 'x-kubernetes-validations')
        .map(([k, v]) => [k, withoutCel(v)]),
    );
  }
  return value;
}

function at(obj: unknown, ...path: string[]): Json {
  let current = obj;
  for (const key of path) current = (current as Json)[key];
  return current as Json;
}

describe('deploy/kubernetes', () => {
  it('optional/crd-cel.yaml is crd.yaml plus CEL rules', async () => {
    const [crd] = await docs('crd.yaml');
    const [cel] = await docs('optional/crd-cel.yaml');
    assert.deepEqual(withoutCel(cel), crd);
    assert.notDeepEqual(cel, crd);
  });

  it("the CRD's patterns and the controller's validation agree", async () => {
    const [crd] = await docs('crd.yaml');
    const spec = at(crd, 'spec', 'versions', '0', 'schema', 'openAPIV3Schema', 'properties', 'spec', 'properties');
    const serverPattern = new RegExp(String(at(spec, 'registry', 'properties', 'server')['pattern']));
    const scopePattern = new RegExp(String(at(spec, 'registry', 'properties', 'scopes', 'items')['pattern']));
    const accepted = (server: string, scope: string) => {
      try {
        validateSpec({ registry: { server, scopes: [scope] }, auth: { workloadIdentity: { serviceAccountRef: 'sa' } } } as PullBindingSpec);
        return true;
      } catch (err) {
        if (err instanceof SpecError) return false;
        throw err;
      }
    };
    const servers = [
      'registry.example.com',
      'registry.example.com:5000',
      '127.0.0.1:5000',
      '[::1]:5000',
      'localhost',
      'http://registry.example.com',
      'registry.example.com/x',
      '-bad.example.com',
      'a..b',
      '',
    ];
    for (const server of servers) {
      assert.equal(serverPattern.test(server), accepted(server, 'repository:team/app:pull'), `server ${JSON.stringify(server)}`);
    }
    const scopes = [
      'repository:team/app:pull',
      'repository:a/b/c-d_e.f__g:pull',
      'repository:team/*:pull',
      'repository:team/app:push',
      'repository:team/app:pull,push',
      'repository:Team/app:pull',
      'registry:catalog:*',
      'repository::pull',
      'repository:a//b:pull',
    ];
    for (const scope of scopes) {
      assert.equal(scopePattern.test(scope), accepted('registry.example.com', scope), `scope ${JSON.stringify(scope)}`);
    }
  });

  it('the Deployment, RBAC and the admission policy name the same service account and audience', async () => {
    const rbac = await docs('rbac.yaml');
    const [deployment] = await docs('deployment.yaml');
    const sa = rbac.find((d) => d['kind'] === 'ServiceAccount');
    const binding = rbac.find((d) => d['kind'] === 'ClusterRoleBinding');
    const saName = String(at(sa, 'metadata')['name']);
    const saNamespace = String(at(sa, 'metadata')['namespace']);
    assert.equal(at(deployment, 'metadata')['namespace'], saNamespace);
    assert.equal(at(deployment, 'spec', 'template', 'spec')['serviceAccountName'], saName);
    assert.deepEqual(at(binding, 'subjects', '0'), { kind: 'ServiceAccount', name: saName, namespace: saNamespace });
    const [policy] = await docs('optional/token-audience-policy.yaml');
    const match = at(policy, 'spec', 'matchConditions', '0')['expression'];
    assert.match(String(match), new RegExp(`system:serviceaccount:${saNamespace}:${saName}`));
    const [kubelet] = await docs('kubelet-credential-provider.yaml');
    assert.equal(at(kubelet, 'providers', '0', 'tokenAttributes')['serviceAccountTokenAudience'], 'berth');
    const kustomization = parse(await readFile(join(deployDir, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
    for (const file of kustomization.resources) await readFile(join(deployDir, file));
  });
});
