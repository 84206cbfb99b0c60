/**
 * Browsing the registry (`GET /api/v1/repositories…`): the permission-filtered catalog with a
 * name search, a repository's tags with what each pulls (digest, media type, size per platform and
 * in total, who pushed it and from which workload), and one image taken apart (index → platforms
 * → manifest → config and layers, annotations, the referrers tree). Built on the registry's own
 * reads, so the answers are what `/v2` serves; only the summing and the shaping are here.
 *
 * Bounds: a manifest is read from the metadata database (it is at most `maxManifestBytes`); a
 * config blob is parsed only when it is at most 1 MiB; the referrers tree stops at 3 levels and 100
 * nodes; an index's children are read once each per tag.
 */
import { Writable } from 'node:stream';
import type { ImageView, ReferrerNodeView, RepositoryListView, TagListView, TagView } from '../api/repositories.js';
import { parseDigest, type Digest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { parseManifest, type Descriptor } from '../oci/manifest.js';
import { isIndexMediaType } from '../oci/media-types.js';
import type { Registry } from '../registry/index.js';
import type { PushRecord, Visibility } from '../registry/reads.js';

const maxConfigBytes = 1024 * 1024;
const maxReferrerDepth = 3;
const maxReferrerNodes = 100;
const tagsScannedForImage = 200;

/** A manifest as read: its record and what it references. */
interface Read {
  digest: string;
  mediaType: string;
  size: number;
  body: Record<string, unknown>;
  config: Descriptor | undefined;
  layers: Descriptor[];
  manifests: Descriptor[];
  artifactType: string | undefined;
  subject: string | undefined;
  annotations: Record<string, string>;
}

export class RepositoryViews {
  constructor(private readonly registry: Registry) {}

  /** A page of the catalog the caller may see, narrowed to names containing `q`. */
  async list(visible: Visibility, page: { n: number; last?: string | undefined; q?: string | undefined }): Promise<RepositoryListView> {
    const result = await this.registry.reads.catalog({ n: page.n, last: page.last }, visible, page.q ? page.q.toLowerCase() : undefined);
    return { repositories: result.items.map((name) => ({ name })), next: result.next ?? null };
  }

  /** A page of the repository's tags, each with its sizes, platforms and last push. */
  async tags(repository: string, page: { n: number; last?: string | undefined }, allowed: TagListView['allowed']): Promise<TagListView> {
    const result = await this.registry.reads.tags(repository, page);
    const tags: TagView[] = [];
    for (const tag of result.items) {
      const summary = await this.tagSummary(repository, tag);
      if (summary) tags.push(summary);
    }
    return { repository, tags, next: result.next ?? null, allowed };
  }

  /** One manifest taken apart, with its referrers tree and pushes. */
  async image(repository: string, digest: Digest): Promise<ImageView> {
    const manifest = await this.read(repository, digest.value);
    const kind = isIndexMediaType(manifest.mediaType) ? 'index' : manifest.config && isImageConfig(manifest.config.mediaType) ? 'image' : 'artifact';
    const config = manifest.config
      ? {
          digest: manifest.config.digest,
          mediaType: manifest.config.mediaType,
          size: manifest.config.size,
          image: kind === 'image' ? await this.imageConfig(repository, manifest.config) : null,
        }
      : null;
    const budget = { nodes: maxReferrerNodes };
    const pushes = await this.registry.reads.history(repository, { digest: digest.value, limit: 20 });
    return {
      repository,
      digest: manifest.digest,
      mediaType: manifest.mediaType,
      size: manifest.size,
      kind,
      artifactType: manifest.artifactType ?? null,
      subject: manifest.subject ?? null,
      annotations: manifest.annotations,
      manifests: manifest.manifests.map((d) => ({ ...descriptorView(d), platform: platformOf(d) })),
      config,
      layers: manifest.layers.map(descriptorView),
      referrers: await this.referrerTree(repository, manifest.digest, 1, budget),
      tags: await this.tagsOf(repository, manifest.digest),
      pushes: pushes.map((p) => ({ tag: p.tag ?? null, at: new Date(p.at).toISOString(), principal: pusher(p), provenance: p.provenance ?? null })),
    };
  }

  private async tagSummary(repository: string, tag: string): Promise<TagView | undefined> {
    let top: Read;
    try {
      top = await this.read(repository, { kind: 'tag', tag });
    } catch (err) {
      // A tag deleted between the listing and this read is simply not shown.
      if (err instanceof RegistryError && err.code === 'MANIFEST_UNKNOWN') return undefined;
      throw err;
    }
    const blobs = new Map<string, number>([[top.digest, top.size]]);
    const platforms: TagView['platforms'] = [];
    if (isIndexMediaType(top.mediaType)) {
      for (const entry of top.manifests) {
        // Attestation manifests in an index (buildx's `unknown/unknown`) are not platforms.
        if (entry.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest') continue;
        const child = await this.read(repository, entry.digest).catch(() => undefined);
        blobs.set(entry.digest, entry.size);
        let size = entry.size;
        for (const blob of child ? [child.config, ...child.layers] : []) {
          if (!blob) continue;
          size += blob.size;
          blobs.set(blob.digest, blob.size);
        }
        platforms.push({ platform: platformOf(entry), digest: entry.digest, mediaType: entry.mediaType, size });
      }
    } else {
      let size = top.size;
      for (const blob of [top.config, ...top.layers]) {
        if (!blob) continue;
        size += blob.size;
        blobs.set(blob.digest, blob.size);
      }
      platforms.push({ platform: await this.platformOfImage(repository, top), digest: top.digest, mediaType: top.mediaType, size });
    }
    const [push] = await this.registry.reads.history(repository, { tag, limit: 1 });
    return {
      tag,
      digest: top.digest,
      mediaType: top.mediaType,
      artifactType: top.artifactType ?? null,
      manifestSize: top.size,
      size: [...blobs.values()].reduce((a, b) => a + b, 0),
      platforms,
      pushedAt: push ? new Date(push.at).toISOString() : null,
      pushedBy: push ? pusher(push) : null,
      provenance: push?.provenance ?? null,
    };
  }

  /** A single image's platform, from its config (undefined when it is not an image or too large). */
  private async platformOfImage(repository: string, manifest: Read): Promise<string | null> {
    if (!manifest.config || !isImageConfig(manifest.config.mediaType)) return null;
    const image = await this.imageConfig(repository, manifest.config);
    return image?.os && image.architecture ? [image.os, image.architecture, image.variant].filter(Boolean).join('/') : null;
  }

  private async read(repository: string, reference: string | { kind: 'tag'; tag: string }): Promise<Read> {
    const ref = typeof reference === 'string' ? { kind: 'digest' as const, digest: parseDigest(reference) } : reference;
    const record = await this.registry.manifests.get(repository, ref, []);
    const parsed = parseManifest(record.content, record.mediaType);
    const body = JSON.parse(record.content.toString('utf8')) as Record<string, unknown>;
    const config = isIndexMediaType(parsed.mediaType) ? undefined : (parsed.blobs[0] ?? undefined);
    const layers = Array.isArray(body['layers']) ? (body['layers'] as Descriptor[]).filter(isDescriptor) : [];
    return {
      digest: record.digest,
      mediaType: record.mediaType,
      size: record.size,
      body,
      config,
      layers,
      // The raw entries: they keep `platform`, which the registry's parser does not need.
      manifests: Array.isArray(body['manifests']) ? (body['manifests'] as Descriptor[]).filter(isDescriptor) : [],
      artifactType: parsed.artifactType,
      subject: parsed.subject?.digest,
      annotations: parsed.annotations ?? {},
    };
  }

  /** The image config's useful fields, when the blob is present and small enough. */
  private async imageConfig(repository: string, descriptor: Descriptor): Promise<NonNullable<NonNullable<ImageView['config']>['image']> | null> {
    if (descriptor.size > maxConfigBytes) return null;
    let bytes: Buffer;
    try {
      bytes = await this.readBlob(repository, parseDigest(descriptor.digest));
    } catch (err) {
      if (err instanceof RegistryError) return null;
      throw err;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(bytes.toString('utf8'));
    } catch {
      return null;
    }
    if (!isObject(raw)) return null;
    const config = isObject(raw['config']) ? raw['config'] : {};
    const history = Array.isArray(raw['history']) ? raw['history'].filter(isObject) : [];
    return {
      os: text(raw['os']),
      architecture: text(raw['architecture']),
      variant: text(raw['variant']),
      created: text(raw['created']),
      author: text(raw['author']),
      user: text(config['User']),
      workingDir: text(config['WorkingDir']),
      entrypoint: strings(config['Entrypoint']),
      cmd: strings(config['Cmd']),
      env: strings(config['Env']) ?? [],
      exposedPorts: isObject(config['ExposedPorts']) ? Object.keys(config['ExposedPorts']) : [],
      labels: isObject(config['Labels'])
        ? Object.fromEntries(Object.entries(config['Labels']).filter((e): e is [string, string] => typeof e[1] === 'string'))
        : {},
      history: history.slice(0, 500).map((h) => ({
        created: text(h['created']),
        createdBy: text(h['created_by']),
        emptyLayer: h['empty_layer'] === true,
        comment: text(h['comment']),
      })),
    };
  }

  /** A small blob's bytes (the caller bounded its size). */
  private async readBlob(repository: string, digest: Digest): Promise<Buffer> {
    const blob = await this.registry.blobs.stat(repository, digest);
    if (blob.size > maxConfigBytes) throw new RegistryError('SIZE_INVALID', 'config too large to show');
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk);
        done();
      },
    });
    await this.registry.blobs.send(repository, digest, sink, () => {});
    return Buffer.concat(chunks);
  }

  private async referrerTree(repository: string, subject: string, depth: number, budget: { nodes: number }): Promise<ReferrerNodeView[]> {
    if (depth > maxReferrerDepth || budget.nodes <= 0) return [];
    const body = await this.registry.reads.referrers(repository, parseDigest(subject), undefined);
    const index = JSON.parse(body.toString('utf8')) as { manifests?: Descriptor[] };
    const nodes: ReferrerNodeView[] = [];
    for (const descriptor of index.manifests ?? []) {
      if (budget.nodes <= 0) break;
      budget.nodes--;
      nodes.push({ ...descriptorView(descriptor), referrers: await this.referrerTree(repository, descriptor.digest, depth + 1, budget) });
    }
    return nodes;
  }

  private async tagsOf(repository: string, digest: string): Promise<string[]> {
    const { items } = await this.registry.reads.tags(repository, { n: tagsScannedForImage });
    const out: string[] = [];
    for (const tag of items) if ((await this.registry.manifests.digestOfTag(repository, tag)) === digest) out.push(tag);
    return out;
  }
}

function descriptorView(d: Descriptor): ImageView['layers'][number] {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, artifactType: d.artifactType ?? null, annotations: d.annotations ?? {} };
}

function platformOf(d: Descriptor): string | null {
  const platform = (d as Descriptor & { platform?: unknown }).platform;
  if (!isObject(platform)) return null;
  const os = text(platform['os']);
  const architecture = text(platform['architecture']);
  if (!os || !architecture) return null;
  return [os, architecture, text(platform['variant'])].filter(Boolean).join('/');
}

function pusher(p: PushRecord): { id: string; name: string } | null {
  return p.principalId !== undefined ? { id: p.principalId, name: p.principalName ?? p.principalId } : null;
}

function isImageConfig(mediaType: string): boolean {
  return mediaType === 'application/vnd.oci.image.config.v1+json' || mediaType === 'application/vnd.docker.container.image.v1+json';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isDescriptor(value: unknown): value is Descriptor {
  return isObject(value) && typeof value['digest'] === 'string' && typeof value['mediaType'] === 'string' && typeof value['size'] === 'number';
}

function text(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function strings(value: unknown): string[] | null {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : null;
}
