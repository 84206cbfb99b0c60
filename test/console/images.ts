/** Pushing real images, indexes and referrers over `/v2` with an access token (for the console tests). */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { bearer } from '../auth/helpers.js';

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

async function pushBlob(base: string, token: string, repository: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const res = await fetch(`${base}/v2/${repository}/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: bearer(token), body: bytes });
  assert.equal(res.status, 201, await res.text());
  return digest;
}

async function putManifest(
  base: string,
  token: string,
  repository: string,
  reference: string,
  manifest: unknown,
  mediaType: string,
): Promise<{ digest: string; size: number }> {
  const bytes = Buffer.from(JSON.stringify(manifest));
  const res = await fetch(`${base}/v2/${repository}/manifests/${reference}`, {
    method: 'PUT',
    headers: { ...bearer(token), 'Content-Type': mediaType },
    body: bytes,
  });
  assert.equal(res.status, 201, await res.text());
  return { digest: sha256(bytes), size: bytes.length };
}

export interface ImageOptions {
  os?: string;
  architecture?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  layerBytes?: number;
}

/** An OCI image (config + one layer) tagged `tag` (or by digest when `tag` is undefined). */
export async function pushImage(base: string, token: string, repository: string, tag: string | undefined, options: ImageOptions = {}) {
  const config = Buffer.from(
    JSON.stringify({
      os: options.os ?? 'linux',
      architecture: options.architecture ?? 'amd64',
      created: '2026-01-02T03:04:05Z',
      config: { Entrypoint: ['/app'], Env: ['PATH=/usr/bin'], Labels: options.labels ?? {} },
      rootfs: { type: 'layers', diff_ids: [] },
      history: [{ created_by: 'COPY app /app' }],
    }),
  );
  const layer = randomBytes(options.layerBytes ?? 2048);
  const configDigest = await pushBlob(base, token, repository, config);
  const layerDigest = await pushBlob(base, token, repository, layer);
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length }],
    ...(options.annotations ? { annotations: options.annotations } : {}),
  };
  const put = await putManifest(base, token, repository, tag ?? sha256(Buffer.from(JSON.stringify(manifest))), manifest, manifest.mediaType);
  return { ...put, configSize: config.length, layerSize: layer.length };
}

/** An index of two platform images, tagged `tag`. */
export async function pushIndex(base: string, token: string, repository: string, tag: string) {
  const amd = await pushImage(base, token, repository, undefined, { architecture: 'amd64' });
  const arm = await pushImage(base, token, repository, undefined, { architecture: 'arm64' });
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: amd.digest, size: amd.size, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: arm.digest, size: arm.size, platform: { os: 'linux', architecture: 'arm64' } },
    ],
  };
  return { index: await putManifest(base, token, repository, tag, index, index.mediaType), amd, arm };
}

/** An artifact whose subject is `subject` (a signature, an SBOM), with annotations. */
export async function pushReferrer(
  base: string,
  token: string,
  repository: string,
  subject: { digest: string; size: number },
  artifactType: string,
  annotations: Record<string, string> = {},
) {
  const empty = Buffer.from('{}');
  const emptyDigest = await pushBlob(base, token, repository, empty);
  const blob = randomBytes(64);
  const blobDigest = await pushBlob(base, token, repository, blob);
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: empty.length },
    layers: [{ mediaType: 'application/octet-stream', digest: blobDigest, size: blob.length }],
    subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: subject.digest, size: subject.size },
    annotations,
  };
  return putManifest(base, token, repository, sha256(Buffer.from(JSON.stringify(manifest))), manifest, manifest.mediaType);
}
