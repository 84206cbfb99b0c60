/**
 * Test images pushed over the real registry API (HTTP) to any registry: Berth, Distribution, or
 * the hostile test registry. Content is random per seed, so nothing is shared between tests
 * unless a test shares it on purpose.
 */
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'undici';
import { urls } from '../../src/api/urls.js';
import { fetchToken } from '../../src/remote/tokens.js';

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

export const sbomType = 'application/vnd.example.sbom+json';

export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export interface Blob {
  digest: string;
  size: number;
  bytes: Buffer;
  mediaType: string;
}

export interface Manifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

export interface TestImage {
  /** The index (or the single manifest) to import. */
  root: Manifest;
  /** Platform manifests (empty for a single-manifest image). */
  children: Manifest[];
  blobs: Blob[];
  /** The SBOM artifact whose subject is the root, when made with `referrer`. */
  referrer?: Manifest;
  referrerBlobs: Blob[];
  totalBytes: number;
}

function blob(mediaType: string, bytes: Buffer): Blob {
  return { digest: sha256(bytes), size: bytes.length, bytes, mediaType };
}

function manifest(mediaType: string, doc: unknown): Manifest {
  const bytes = Buffer.from(JSON.stringify(doc));
  return { digest: sha256(bytes), mediaType, bytes };
}

function descriptor(item: { digest: string; mediaType: string; size?: number; bytes?: Buffer }, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { mediaType: item.mediaType, digest: item.digest, size: item.size ?? item.bytes?.length, ...extra };
}

/**
 * An image: with `platforms` > 0 an OCI index over that many platform manifests, else one
 * manifest. Each manifest has a config and `layers` layers of `layerBytes` random bytes.
 */
export function makeImage(options: { platforms?: number; layers?: number; layerBytes?: number; referrer?: boolean; shared?: Blob[] } = {}): TestImage {
  const platforms = options.platforms ?? 2;
  const blobs: Blob[] = [];
  const children: Manifest[] = [];
  const one = (arch: string): Manifest => {
    const config = blob(MT.ociConfig, Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', nonce: randomBytes(8).toString('hex') })));
    const layers = [
      ...(options.shared ?? []),
      ...Array.from({ length: options.layers ?? 2 }, () => blob(MT.ociLayer, randomBytes(options.layerBytes ?? 4096))),
    ];
    blobs.push(config, ...layers.filter((l) => !(options.shared ?? []).includes(l)));
    return manifest(MT.ociManifest, {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: descriptor(config),
      layers: layers.map((l) => descriptor(l)),
    });
  };
  let root: Manifest;
  if (platforms > 0) {
    const archs = ['amd64', 'arm64', 's390x', 'ppc64le'];
    for (let i = 0; i < platforms; i++) children.push(one(archs[i % archs.length] as string));
    root = manifest(MT.ociIndex, {
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      manifests: children.map((c, i) => descriptor(c, { platform: { architecture: archs[i % archs.length], os: 'linux' } })),
    });
  } else {
    root = one('amd64');
  }
  const image: TestImage = { root, children, blobs, referrerBlobs: [], totalBytes: 0 };
  if (options.referrer) {
    const empty = blob(MT.ociEmpty, Buffer.from('{}'));
    const sbom = blob('application/spdx+json', Buffer.from(JSON.stringify({ spdxVersion: 'SPDX-2.3', nonce: randomBytes(8).toString('hex') })));
    image.referrerBlobs = [empty, sbom];
    image.referrer = manifest(MT.ociManifest, {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      artifactType: sbomType,
      config: descriptor(empty),
      layers: [descriptor(sbom)],
      subject: descriptor(root),
    });
  }
  image.totalBytes = blobs.reduce((a, b) => a + b.size, 0);
  return image;
}

/** Pushes over HTTP: blobs (monolithic POST ?digest=), manifests children-first, the root by tag. */
export async function pushImage(baseUrl: string, repository: string, tag: string | undefined, image: TestImage, authorization?: string): Promise<void> {
  const auth: Record<string, string> = authorization ? { authorization } : {};
  for (const b of [...image.blobs, ...image.referrerBlobs]) await pushBlob(baseUrl, repository, b, auth);
  for (const child of image.children) await putManifest(baseUrl, repository, child.digest, child, auth);
  await putManifest(baseUrl, repository, image.root.digest, image.root, auth);
  if (tag !== undefined) await putManifest(baseUrl, repository, tag, image.root, auth);
  if (image.referrer) await putManifest(baseUrl, repository, image.referrer.digest, image.referrer, auth);
}

export async function pushBlob(baseUrl: string, repository: string, b: Blob, auth: Record<string, string> = {}): Promise<void> {
  // POST then PUT: Distribution 2.8 does not do the monolithic POST ?digest= form.
  const start = await request(`${baseUrl}${urls.uploads(repository)}`, { method: 'POST', headers: auth });
  await start.body.dump();
  if (start.statusCode !== 202) throw new Error(`POST upload ${repository}: HTTP ${start.statusCode}`);
  const location = new URL(String(start.headers['location']), baseUrl);
  location.searchParams.set('digest', b.digest);
  const put = await request(location, {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'application/octet-stream', 'content-length': String(b.size) },
    body: b.bytes,
  });
  const text = await put.body.text();
  if (put.statusCode !== 201) throw new Error(`PUT blob ${b.digest} to ${repository}: HTTP ${put.statusCode} ${text}`);
}

export async function putManifest(baseUrl: string, repository: string, reference: string, m: Manifest, auth: Record<string, string> = {}): Promise<void> {
  const res = await request(`${baseUrl}${urls.manifest(repository, reference)}`, {
    method: 'PUT',
    headers: { ...auth, 'content-type': m.mediaType },
    body: m.bytes,
  });
  const text = await res.body.text();
  if (res.statusCode !== 201) throw new Error(`PUT manifest ${repository}:${reference}: HTTP ${res.statusCode} ${text}`);
}

/** An access token from a Berth (or any Docker token service) for `scope`, with Basic credentials (the registry client's GET flow). */
export async function bearerFor(baseUrl: string, username: string, password: string, scope: string): Promise<string> {
  const realm = { realm: `${baseUrl}${urls.token()}`, service: 'berth', scope: undefined };
  const { token } = await fetchToken(realm, { scope, authorization: basic(username, password) });
  return `Bearer ${token}`;
}

export function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}
