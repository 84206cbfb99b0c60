/**
 * Manifest parsing: from the exact bytes a client PUT to the facts the registry stores and checks.
 *
 * Contract: `parseManifest` never modifies or re-serialises the bytes (the digest is over them);
 * it validates structure enough to know every descriptor the manifest references, and throws
 * MANIFEST_INVALID with a detail naming the offending field otherwise.
 */
import { RegistryError } from './errors.js';
import { tryParseDigest } from './digest.js';
import { baseMediaType, isIndexMediaType, isManifestMediaType, mediaTypes, type ManifestMediaType } from './media-types.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  urls?: string[];
}

export interface ParsedManifest {
  mediaType: ManifestMediaType;
  /** Blobs the manifest needs in the same repository (config + layers); foreign layers excluded. */
  blobs: Descriptor[];
  /** Child manifests (an index's `manifests`). */
  manifests: Descriptor[];
  subject?: Descriptor;
  /** `artifactType`, or for an image manifest without one, its config media type (spec fallback). */
  artifactType?: string;
  annotations?: Record<string, string>;
}

function invalid(message: string, detail?: unknown): never {
  throw new RegistryError('MANIFEST_INVALID', message, detail);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseAnnotations(value: unknown, field: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    invalid(`${field} must be a map of strings`);
  }
  return value as Record<string, string>;
}

function parseDescriptor(value: unknown, field: string): Descriptor {
  if (!isObject(value)) invalid(`${field} must be a descriptor object`);
  const { mediaType, digest, size, artifactType, annotations, urls } = value;
  if (typeof mediaType !== 'string' || mediaType.length === 0) invalid(`${field}.mediaType is required`);
  if (typeof digest !== 'string' || !tryParseDigest(digest)) invalid(`${field}.digest is invalid`, { digest });
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) invalid(`${field}.size is invalid`);
  const descriptor: Descriptor = { mediaType, digest, size };
  if (artifactType !== undefined) {
    if (typeof artifactType !== 'string') invalid(`${field}.artifactType must be a string`);
    descriptor.artifactType = artifactType;
  }
  const parsedAnnotations = parseAnnotations(annotations, `${field}.annotations`);
  if (parsedAnnotations) descriptor.annotations = parsedAnnotations;
  if (urls !== undefined) {
    if (!Array.isArray(urls) || !urls.every((u) => typeof u === 'string')) invalid(`${field}.urls must be strings`);
    descriptor.urls = urls as string[];
  }
  return descriptor;
}

function parseDescriptorList(value: unknown, field: string): Descriptor[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) invalid(`${field} must be an array`);
  return value.map((item, i) => parseDescriptor(item, `${field}[${i}]`));
}

/** Decides the manifest's media type from the request's Content-Type and the body's own field. */
function resolveMediaType(contentType: string | undefined, body: Record<string, unknown>): ManifestMediaType {
  const declared = baseMediaType(contentType);
  const own = typeof body['mediaType'] === 'string' ? body['mediaType'] : undefined;
  if (own !== undefined && isManifestMediaType(own)) {
    if (declared && declared !== own && isManifestMediaType(declared)) {
      invalid('mediaType in manifest does not match Content-Type', { contentType: declared, mediaType: own });
    }
    return own;
  }
  if (own !== undefined) invalid(`unsupported manifest mediaType: ${own.slice(0, 200)}`);
  if (isManifestMediaType(declared)) {
    // Docker media types require the field; OCI ones make it optional.
    if (declared === mediaTypes.dockerManifest || declared === mediaTypes.dockerManifestList) {
      invalid('mediaType field is required for Docker manifests');
    }
    return declared;
  }
  // No usable Content-Type (e.g. application/json): infer OCI types from the shape, as Distribution does.
  if (Array.isArray(body['manifests'])) return mediaTypes.ociIndex;
  if (isObject(body['config'])) return mediaTypes.ociManifest;
  invalid('cannot determine manifest media type', { contentType: declared || undefined });
}

export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    invalid('manifest is not valid JSON');
  }
  if (!isObject(body)) invalid('manifest must be a JSON object');
  if (body['schemaVersion'] !== 2) invalid('schemaVersion must be 2', { schemaVersion: body['schemaVersion'] });

  const mediaType = resolveMediaType(contentType, body);
  const parsed: ParsedManifest = { mediaType, blobs: [], manifests: [] };
  const annotations = parseAnnotations(body['annotations'], 'annotations');
  if (annotations) parsed.annotations = annotations;
  if (body['subject'] !== undefined) parsed.subject = parseDescriptor(body['subject'], 'subject');
  if (body['artifactType'] !== undefined) {
    if (typeof body['artifactType'] !== 'string') invalid('artifactType must be a string');
    parsed.artifactType = body['artifactType'];
  }

  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(body['manifests'])) invalid('manifests is required in an index');
    parsed.manifests = parseDescriptorList(body['manifests'], 'manifests');
    return parsed;
  }

  if (body['manifests'] !== undefined) invalid('an image manifest cannot have manifests');
  const config = parseDescriptor(body['config'], 'config');
  const layers = parseDescriptorList(body['layers'], 'layers');
  if (mediaType === mediaTypes.dockerManifest && layers.length === 0) invalid('layers must not be empty');
  // Foreign (non-distributable) layers with URLs live elsewhere by design; they are not required here.
  parsed.blobs = [config, ...layers.filter((layer) => !(layer.urls && layer.urls.length > 0))];
  if (mediaType === mediaTypes.ociManifest && parsed.artifactType === undefined) {
    parsed.artifactType = config.mediaType;
  }
  return parsed;
}
