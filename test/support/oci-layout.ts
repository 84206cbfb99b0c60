/**
 * Test-time generator and reader for OCI image layouts
 * (https://github.com/opencontainers/image-spec/blob/main/image-layout.md).
 *
 * Nothing binary is committed: every fixture is built here, deterministically
 * (fixed mtimes, fixed JSON key order, gzip with mtime 0), so the same `seed`
 * always yields the same digests. Layers are real ustar archives written by
 * hand, so podman/skopeo can unpack them into container storage.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export const MEDIA_TYPES = {
  imageManifest: 'application/vnd.oci.image.manifest.v1+json',
  imageIndex: 'application/vnd.oci.image.index.v1+json',
  imageConfig: 'application/vnd.oci.image.config.v1+json',
  layerTarGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  empty: 'application/vnd.oci.empty.v1+json',
} as const;

/** Annotation that names a manifest inside a layout's index.json (`oci:<dir>:<ref>`). */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface ImageFixture {
  /** Descriptor of the image manifest (what a registry serves for the tag). */
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
  /** sha256 of each uncompressed layer tar, in layer order (== config rootfs.diff_ids). */
  diffIds: string[];
  platform: Platform;
}

export interface IndexFixture {
  index: Descriptor;
  images: ImageFixture[];
}

export interface ArtifactFixture {
  manifest: Descriptor;
  artifactType: string;
  config: Descriptor;
  blob: Descriptor;
  subject: Descriptor;
  annotations: Record<string, string>;
}

/** Everything written into one layout by {@link createFixtureLayout}. */
export interface FixtureLayout {
  dir: string;
  /** Layout ref names, usable as `oci:${dir}:${ref}`. */
  refs: { image: string; index: string; artifact: string };
  image: ImageFixture;
  index: IndexFixture;
  artifact: ArtifactFixture;
}

export const ARTIFACT_TYPE_SBOM = 'application/vnd.example.sbom';
const SBOM_BLOB_MEDIA_TYPE = 'application/spdx+json';
/** Fixed timestamp so that configs and annotations are reproducible. */
const FIXED_TIME = '2024-01-01T00:00:00Z';
const FIXED_MTIME = Date.parse(FIXED_TIME) / 1000;

export function sha256Digest(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Writes the `oci-layout` marker and an empty index.json; idempotent for the marker. */
export async function initLayout(dir: string): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeIndexJson(dir, []);
}

/** Stores `data` as a content-addressed blob and returns its descriptor. */
export async function writeBlob(dir: string, mediaType: string, data: Uint8Array): Promise<Descriptor> {
  const digest = sha256Digest(data);
  await writeFile(blobPath(dir, digest), data);
  return { mediaType, digest, size: data.byteLength };
}

/** Serialises a JSON document exactly once: the digest covers these bytes. */
export async function writeJsonBlob(dir: string, mediaType: string, doc: unknown): Promise<Descriptor> {
  return writeBlob(dir, mediaType, Buffer.from(JSON.stringify(doc)));
}

export function blobPath(dir: string, digest: string): string {
  const [algorithm, hex] = splitDigest(digest);
  return join(dir, 'blobs', algorithm, hex);
}

/**
 * Builds one layout holding (a) a single-platform linux/amd64 image with two
 * gzip'd tar layers, (b) a multi-arch index over linux/amd64 + linux/arm64 and
 * (c) an SBOM artifact whose `subject` is image (a). `seed` varies the file
 * contents so that different callers get different digests.
 */
export async function createFixtureLayout(dir: string, seed = 'berth-e2e'): Promise<FixtureLayout> {
  await initLayout(dir);
  const refs = { image: 'image', index: 'multiarch', artifact: 'sbom' };

  const image = await writeImage(dir, { architecture: 'amd64', os: 'linux' }, `${seed}/single`);
  const amd64 = await writeImage(dir, { architecture: 'amd64', os: 'linux' }, `${seed}/multi`);
  const arm64 = await writeImage(dir, { architecture: 'arm64', os: 'linux', variant: 'v8' }, `${seed}/multi`);
  const index = await writeIndex(dir, [amd64, arm64]);
  const artifact = await writeSbomArtifact(dir, image.manifest, seed);

  await writeIndexJson(dir, [withRefName(image.manifest, refs.image), withRefName(index.index, refs.index), withRefName(artifact.manifest, refs.artifact)]);
  return { dir, refs, image, index, artifact };
}

/** Writes a runnable-looking image: two layers, config with matching diff_ids. */
export async function writeImage(dir: string, platform: Platform, seed: string): Promise<ImageFixture> {
  const tars = [
    buildTar([
      { path: 'etc/', type: 'dir' },
      { path: 'etc/berth-e2e-release', type: 'file', content: `seed=${seed}\n` },
    ]),
    buildTar([
      { path: 'app/', type: 'dir' },
      { path: 'app/hello.txt', type: 'file', content: `hello from ${platform.os}/${platform.architecture} (${seed})\n` },
      { path: 'app/run.sh', type: 'file', content: '#!/bin/sh\necho hello\n', mode: 0o755 },
    ]),
  ];
  const diffIds = tars.map((tar) => sha256Digest(tar));
  const layers: Descriptor[] = [];
  for (const tar of tars) {
    layers.push(await writeBlob(dir, MEDIA_TYPES.layerTarGzip, gzipSync(tar, { level: 9 })));
  }
  const config = await writeJsonBlob(dir, MEDIA_TYPES.imageConfig, {
    created: FIXED_TIME,
    architecture: platform.architecture,
    ...(platform.variant === undefined ? {} : { variant: platform.variant }),
    os: platform.os,
    config: { Env: ['PATH=/usr/local/bin:/usr/bin:/bin'], Cmd: ['/app/run.sh'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: tars.map((_, i) => ({ created: FIXED_TIME, created_by: `berth e2e fixture layer ${i}` })),
  });
  const manifest = await writeJsonBlob(dir, MEDIA_TYPES.imageManifest, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.imageManifest,
    config,
    layers,
  });
  return { manifest: { ...manifest, platform }, config, layers, diffIds, platform };
}

/** Writes an OCI image index whose entries carry each image's platform. */
export async function writeIndex(dir: string, images: ImageFixture[]): Promise<IndexFixture> {
  const index = await writeJsonBlob(dir, MEDIA_TYPES.imageIndex, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.imageIndex,
    manifests: images.map((img) => img.manifest),
  });
  return { index, images };
}

/**
 * Writes an OCI 1.1 artifact: an image manifest with `artifactType`, the
 * empty config (`{}`) and `subject` pointing at `subject`.
 */
export async function writeSbomArtifact(dir: string, subject: Descriptor, seed: string): Promise<ArtifactFixture> {
  const config = await writeBlob(dir, MEDIA_TYPES.empty, Buffer.from('{}'));
  const blob = await writeJsonBlob(dir, SBOM_BLOB_MEDIA_TYPE, {
    spdxVersion: 'SPDX-2.3',
    name: `berth-e2e-${seed}`,
    packages: [],
  });
  const annotations = { 'org.opencontainers.image.created': FIXED_TIME, 'org.example.seed': seed };
  const subjectDescriptor: Descriptor = { mediaType: subject.mediaType, digest: subject.digest, size: subject.size };
  const manifest = await writeJsonBlob(dir, MEDIA_TYPES.imageManifest, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.imageManifest,
    artifactType: ARTIFACT_TYPE_SBOM,
    config,
    layers: [blob],
    subject: subjectDescriptor,
    annotations,
  });
  return { manifest, artifactType: ARTIFACT_TYPE_SBOM, config, blob, subject: subjectDescriptor, annotations };
}

// ---------------------------------------------------------------------------
// Reading layouts back (e.g. ones written by `skopeo copy ... oci:<dir>:<ref>`)

interface ManifestLike {
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
  subject?: Descriptor;
}

export async function readIndexJson(dir: string): Promise<{ manifests: Descriptor[] }> {
  const parsed = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests?: Descriptor[] };
  return { manifests: parsed.manifests ?? [] };
}

/** Descriptor that index.json names `ref`; throws listing the refs present. */
export async function resolveRef(dir: string, ref: string): Promise<Descriptor> {
  const { manifests } = await readIndexJson(dir);
  const found = manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === ref);
  if (found === undefined) {
    const names = manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION] ?? '(unnamed)');
    throw new Error(`layout ${dir} has no ref ${JSON.stringify(ref)}; refs: ${names.join(', ')}`);
  }
  return found;
}

/** Reads a blob and verifies that its content hashes to its name. */
export async function readBlob(dir: string, digest: string): Promise<Buffer> {
  const data = await readFile(blobPath(dir, digest));
  const actual = sha256Digest(data);
  if (actual !== digest) throw new Error(`layout ${dir}: blob ${digest} has content digest ${actual}`);
  return data;
}

/**
 * Every digest reachable from `root` (manifests, configs, layers, child
 * manifests of an index), each verified against its content. Used to compare
 * what went into a registry with what came back out. `subject` links are not
 * followed: a referrer does not own its subject.
 */
export async function collectDigests(dir: string, root: string): Promise<Set<string>> {
  const seen = new Set<string>();
  const visit = async (digest: string, isManifest: boolean): Promise<void> => {
    if (seen.has(digest)) return;
    seen.add(digest);
    const data = await readBlob(dir, digest);
    if (!isManifest) return;
    const doc = JSON.parse(data.toString('utf8')) as ManifestLike;
    for (const child of doc.manifests ?? []) await visit(child.digest, true);
    if (doc.config !== undefined) await visit(doc.config.digest, false);
    for (const layer of doc.layers ?? []) await visit(layer.digest, false);
  };
  await visit(root, true);
  return seen;
}

/** All blob digests stored in a layout (regardless of reachability). */
export async function listBlobs(dir: string): Promise<string[]> {
  const names = await readdir(join(dir, 'blobs', 'sha256'));
  return names.map((hex) => `sha256:${hex}`).sort();
}

// ---------------------------------------------------------------------------
// Internals

async function writeIndexJson(dir: string, manifests: Descriptor[]): Promise<void> {
  await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.imageIndex, manifests }));
}

function withRefName(desc: Descriptor, ref: string): Descriptor {
  return { ...desc, annotations: { ...desc.annotations, [REF_NAME_ANNOTATION]: ref } };
}

function splitDigest(digest: string): [string, string] {
  const match = /^(sha256):([a-f0-9]{64})$/.exec(digest);
  if (match?.[1] === undefined || match[2] === undefined) throw new Error(`unsupported digest ${digest}`);
  return [match[1], match[2]];
}

type TarEntry = { path: string; type: 'dir'; mode?: number } | { path: string; type: 'file'; content: string; mode?: number };

const BLOCK = 512;

/** Minimal ustar writer: directories and regular files, root-owned, fixed mtime. */
export function buildTar(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const body = entry.type === 'file' ? Buffer.from(entry.content, 'utf8') : Buffer.alloc(0);
    const mode = entry.mode ?? (entry.type === 'dir' ? 0o755 : 0o644);
    parts.push(tarHeader(entry.path, entry.type === 'dir' ? '5' : '0', mode, body.byteLength));
    if (body.byteLength > 0) {
      parts.push(body, Buffer.alloc((BLOCK - (body.byteLength % BLOCK)) % BLOCK));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2)); // end-of-archive marker
  return Buffer.concat(parts);
}

function tarHeader(path: string, typeflag: '0' | '5', mode: number, size: number): Buffer {
  if (Buffer.byteLength(path) > 100) throw new Error(`tar path too long for this writer: ${path}`);
  const header = Buffer.alloc(BLOCK);
  header.write(path, 0, 100, 'utf8');
  writeOctal(header, mode, 100, 8);
  writeOctal(header, 0, 108, 8); // uid
  writeOctal(header, 0, 116, 8); // gid
  writeOctal(header, size, 124, 12);
  writeOctal(header, FIXED_MTIME, 136, 12);
  header.fill(' ', 148, 156); // checksum is computed with its own field as spaces
  header.write(typeflag, 156, 1, 'ascii');
  header.write('ustar\u0000', 257, 6, 'ascii');
  header.write('00', 263, 2, 'ascii');
  header.write('root', 265, 32, 'ascii');
  header.write('root', 297, 32, 'ascii');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'ascii');
  return header;
}

/** Zero-padded octal followed by NUL, filling `width` bytes. */
function writeOctal(buf: Buffer, value: number, offset: number, width: number): void {
  buf.write(`${value.toString(8).padStart(width - 1, '0')}\u0000`, offset, width, 'ascii');
}
