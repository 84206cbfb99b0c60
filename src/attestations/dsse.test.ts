import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { dsse } from '@sigstore/core';
import { toBundle } from './bundle.js';
import { preAuthEncoding, signEnvelope } from './dsse.js';
import { keyHint } from './keys.js';
import { pushPredicate, pushStatement } from './statement.js';
import { verifyBundle } from './verify.js';

const digest = `sha256:${'ab'.repeat(32)}`;

describe('DSSE signing and bundle verification', () => {
  it("the hand-written PAE is the spec's and @sigstore/core's", () => {
    const payload = Buffer.from('hello world');
    assert.equal(preAuthEncoding('http://example.com/HelloWorld', payload).toString(), 'DSSEv1 29 http://example.com/HelloWorld 11 hello world');
    assert.deepEqual(preAuthEncoding('application/vnd.in-toto+json', payload), dsse.preAuthEncoding('application/vnd.in-toto+json', payload));
  });

  it('a signed push statement verifies; the subject digest and every byte are checked', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const key = { hint: keyHint(publicKey), publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
    const predicate = pushPredicate({
      registry: 'registry.example',
      repository: 'acme/app',
      tag: 'v1',
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      pusher: {
        principalId: 'p1',
        principalName: 'ci',
        provenance: { iss: 'https://issuer', sub: 'repo:acme/app:ref:refs/tags/v1', aud: 'berth', ref: 'refs/tags/v1' },
      },
      now: 0,
    });
    const statement = pushStatement(predicate, digest);
    const envelope = signEnvelope('application/vnd.in-toto+json', Buffer.from(JSON.stringify(statement)), privateKey);
    const bundle = Buffer.from(JSON.stringify(toBundle(envelope, key.hint)));
    const verified = await verifyBundle(bundle, [key], digest);
    assert.equal(verified.keyHint, key.hint);
    assert.equal(verified.push?.federation?.claims['ref'], 'refs/tags/v1');
    assert.deepEqual(verified.push?.federation?.audience, ['berth']);

    await assert.rejects(verifyBundle(bundle, [key], `sha256:${'cd'.repeat(32)}`), /about another image/);
    const altered = JSON.parse(bundle.toString());
    altered.dsseEnvelope.payloadType = 'application/json';
    await assert.rejects(verifyBundle(Buffer.from(JSON.stringify(altered)), [key], digest), /does not verify/);
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    await assert.rejects(
      verifyBundle(bundle, [{ hint: keyHint(other), publicKeyPem: other.export({ type: 'spki', format: 'pem' }).toString() }], digest),
      /not signed by a trusted key/,
    );
    await assert.rejects(verifyBundle(Buffer.from('{"mediaType":"x"}'), [key], digest), /not a Sigstore bundle/);
  });
});
