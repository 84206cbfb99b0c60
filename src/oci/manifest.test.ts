import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RegistryError } from './errors.js';
import { parseManifest } from './manifest.js';
import { mediaTypes } from './media-types.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const image = {
  schemaVersion: 2,
  mediaType: mediaTypes.ociManifest,
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('a'), size: 2 },
  layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('b'), size: 10 }],
};
const isInvalid = (err: unknown) => err instanceof RegistryError && err.code === 'MANIFEST_INVALID';

describe('parseManifest', () => {
  it('lists config and layers as required blobs', () => {
    const parsed = parseManifest(json(image), mediaTypes.ociManifest);
    assert.deepEqual(
      parsed.blobs.map((b) => b.digest),
      [d('a'), d('b')],
    );
    assert.equal(parsed.artifactType, 'application/vnd.oci.image.config.v1+json');
  });

  it('takes artifactType and subject', () => {
    const parsed = parseManifest(
      json({ ...image, artifactType: 'application/x.sbom', subject: { mediaType: mediaTypes.ociManifest, digest: d('c'), size: 3 } }),
      undefined,
    );
    assert.equal(parsed.artifactType, 'application/x.sbom');
    assert.equal(parsed.subject?.digest, d('c'));
  });

  it('lists an index entries as child manifests', () => {
    const parsed = parseManifest(
      json({ schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: [{ mediaType: mediaTypes.ociManifest, digest: d('d'), size: 5 }] }),
      mediaTypes.ociIndex,
    );
    assert.deepEqual(
      parsed.manifests.map((m) => m.digest),
      [d('d')],
    );
    assert.deepEqual(parsed.blobs, []);
  });

  it('does not require foreign layers that carry urls', () => {
    const foreign = { mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: d('e'), size: 1, urls: ['https://example.invalid/l'] };
    const parsed = parseManifest(json({ ...image, mediaType: mediaTypes.dockerManifest, layers: [foreign] }), mediaTypes.dockerManifest);
    assert.deepEqual(
      parsed.blobs.map((b) => b.digest),
      [d('a')],
    );
  });

  it('infers OCI types from the shape when Content-Type is generic', () => {
    const { mediaType: _omit, ...bare } = image;
    assert.equal(parseManifest(json(bare), 'application/json').mediaType, mediaTypes.ociManifest);
  });

  const bad: Array<[string, Buffer, string | undefined]> = [
    ['invalid JSON', Buffer.from('{nope'), mediaTypes.ociManifest],
    ['a JSON array', json([]), mediaTypes.ociManifest],
    ['schemaVersion 1', json({ ...image, schemaVersion: 1 }), mediaTypes.ociManifest],
    ['a mediaType that contradicts Content-Type', json(image), mediaTypes.dockerManifest],
    ['an unknown mediaType', json({ ...image, mediaType: 'text/plain' }), undefined],
    ['a layer with a bad digest', json({ ...image, layers: [{ mediaType: 'x', digest: 'sha256:zz', size: 1 }] }), undefined],
    ['a negative size', json({ ...image, config: { ...image.config, size: -1 } }), undefined],
    ['an index without manifests', json({ schemaVersion: 2, mediaType: mediaTypes.ociIndex }), undefined],
    ['a Docker manifest without mediaType', json({ schemaVersion: 2, config: image.config, layers: image.layers }), mediaTypes.dockerManifest],
  ];
  for (const [what, bytes, contentType] of bad) {
    it(`refuses ${what} with MANIFEST_INVALID`, () => assert.throws(() => parseManifest(bytes, contentType), isInvalid));
  }
});
