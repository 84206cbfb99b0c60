/**
 * Benchmark inputs, generated fresh for every run: incompressible random layer
 * data (so neither side can benefit from compression or dedup), and minimal OCI
 * image layouts around it for skopeo.
 */
import { createHash, randomFillSync, randomBytes } from 'node:crypto';
import { open, mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const MT = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerTar: 'application/vnd.oci.image.layer.v1.tar',
} as const;

export interface BlobRef {
  digest: string;
  size: number;
}

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Writes `size` random bytes to `path` and returns the sha256 digest. */
export async function writeRandomFile(path: string, size: number): Promise<BlobRef> {
  const chunk = Buffer.allocUnsafe(4 * 1024 * 1024);
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    let left = size;
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      const view = chunk.subarray(0, n);
      randomFillSync(view);
      hash.update(view);
      let off = 0;
      while (off < n) {
        const { bytesWritten } = await fh.write(view, off, n - off);
        off += bytesWritten;
      }
      left -= n;
    }
  } finally {
    await fh.close();
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

export interface ImageJson {
  config: { bytes: Buffer; ref: BlobRef };
  manifest: { bytes: Buffer; ref: BlobRef };
}

/** Minimal single-layer OCI image config + manifest for the given layer. */
export function imageJson(layer: BlobRef, nonce: string): ImageJson {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Labels: { 'dev.berth.bench.nonce': nonce } },
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
    }),
  );
  const configRef = { digest: sha256(config), size: config.length };
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.manifest,
      config: { mediaType: MT.config, digest: configRef.digest, size: configRef.size },
      layers: [{ mediaType: MT.layerTar, digest: layer.digest, size: layer.size }],
    }),
  );
  return { config: { bytes: config, ref: configRef }, manifest: { bytes: manifest, ref: { digest: sha256(manifest), size: manifest.length } } };
}

export interface OciLayout {
  dir: string;
  ref: string;
  layer: BlobRef;
  layerPath: string;
  manifest: BlobRef;
}

/** An OCI image layout (`oci:<dir>:bench`) with one random, uncompressed layer of `size` bytes. */
export async function makeOciLayout(dir: string, size: number): Promise<OciLayout> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const tmp = join(blobs, 'layer.tmp');
  const layer = await writeRandomFile(tmp, size);
  const layerPath = join(blobs, layer.digest.slice('sha256:'.length));
  await rename(tmp, layerPath);
  const img = imageJson(layer, randomBytes(8).toString('hex'));
  await writeFile(join(blobs, img.config.ref.digest.slice(7)), img.config.bytes);
  await writeFile(join(blobs, img.manifest.ref.digest.slice(7)), img.manifest.bytes);
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const ref = 'bench';
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.index,
      manifests: [
        {
          mediaType: MT.manifest,
          digest: img.manifest.ref.digest,
          size: img.manifest.ref.size,
          annotations: { 'org.opencontainers.image.ref.name': ref },
        },
      ],
    }),
  );
  return { dir, ref, layer, layerPath, manifest: img.manifest.ref };
}

export interface MemBlob {
  data: Buffer;
  digest: string;
}

/** `count` distinct random in-memory blobs of `size` bytes. */
export function randomBlobs(count: number, size: number): MemBlob[] {
  const out: MemBlob[] = [];
  for (let i = 0; i < count; i++) {
    const data = randomBytes(size);
    out.push({ data, digest: sha256(data) });
  }
  return out;
}
