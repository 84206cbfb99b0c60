/**
 * Image references as docker reads them: `[registry/]repository[:tag][@digest]`.
 *
 * Contract:
 * - The first path component is the registry when it contains `.` or `:` or is `localhost`;
 *   otherwise the registry is `docker.io` (Docker Hub), and a one-component repository there gets
 *   the `library/` prefix (`alpine` → `docker.io/library/alpine`). `index.docker.io` and
 *   `registry-1.docker.io` are spelt `docker.io`.
 * - `tag` and `digest` are both optional; when neither is given the caller decides (import uses
 *   `latest`, as docker does). With both, the digest is what gets copied and the tag is ignored.
 * - Invalid input throws RegistryError INVALID_REQUEST with a message that quotes it.
 */
import { tryParseDigest } from '../oci/digest.js';
import { ApiError } from '../api/errors.js';
import { isValidRepositoryName, isValidTag } from '../oci/names.js';
import { isLoopbackHost } from '../shared/loopback.js';
import { LoginError } from './tokens.js';

export interface ImageReference {
  /** host[:port], lowercase; Docker Hub is `docker.io`. */
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

export const dockerHub = 'docker.io';
const dockerHubAliases = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

const hostPattern = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

function invalid(message: string): never {
  throw new ApiError('INVALID_REQUEST', message);
}

/** Normalises a registry host: lowercase, Docker Hub aliases to `docker.io`; refuses anything that is not host[:port]. */
export function normaliseRegistry(host: string): string {
  const lower = host.trim().toLowerCase();
  if (!hostPattern.test(lower)) invalid(`${JSON.stringify(host.slice(0, 300))} is not a registry address: expected HOST[:PORT]`);
  return dockerHubAliases.has(lower) ? dockerHub : lower;
}

export function parseImageReference(ref: string): ImageReference {
  const text = ref.trim();
  if (text.length === 0 || text.length > 1024) invalid(`${JSON.stringify(text.slice(0, 300))} is not an image reference`);
  let rest = text.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  let registry = dockerHub;
  const slash = rest.indexOf('/');
  if (slash > 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[')) {
      registry = normaliseRegistry(first);
      rest = rest.slice(slash + 1);
    }
  }
  const result = parseRepositoryReference(rest, text);
  if (registry === dockerHub && !result.repository.includes('/')) result.repository = `library/${result.repository}`;
  return { registry, ...result };
}

/**
 * `repository[:tag][@digest]` without a registry (ACR's `sourceImage`, a target like `team/app:1`).
 * `original` is quoted in error messages.
 */
export function parseRepositoryReference(text: string, original = text): Omit<ImageReference, 'registry'> {
  let rest = text.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!tryParseDigest(digest))
      invalid(`invalid digest ${JSON.stringify(digest.slice(0, 200))} in ${JSON.stringify(original.slice(0, 300))}: expected sha256:<64 hex digits>`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) invalid(`invalid tag ${JSON.stringify(tag.slice(0, 200))} in ${JSON.stringify(original.slice(0, 300))}`);
  }
  if (!isValidRepositoryName(rest)) {
    invalid(
      `invalid repository name ${JSON.stringify(rest.slice(0, 300))} in ${JSON.stringify(original.slice(0, 300))}: expected lowercase path components like team/app`,
    );
  }
  const out: Omit<ImageReference, 'registry'> = { repository: rest };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

/** What to fetch: the digest when there is one, else the tag, else `latest`. */
export function referenceOf(ref: Pick<ImageReference, 'tag' | 'digest'>): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/** `registry/repository[:tag][@digest]`, the canonical text form. */
export function formatImageReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/**
 * The base URL for a registry host: Docker Hub's API lives at registry-1.docker.io; loopback hosts
 * speak plain HTTP (tests, local registries), everything else HTTPS. An explicit `http://` or
 * `https://` prefix wins.
 */
export function registryBaseUrl(registry: string): string {
  const explicit = /^(https?):\/\/([^/]+)\/*$/i.exec(registry.trim());
  if (explicit)
    return `${(explicit[1] as string).toLowerCase()}://${normaliseRegistry(explicit[2] as string) === dockerHub ? 'registry-1.docker.io' : (explicit[2] as string).toLowerCase()}`;
  const host = normaliseRegistry(registry);
  if (host === dockerHub) return 'https://registry-1.docker.io';
  return `${isLoopbackHost(host) ? 'http' : 'https'}://${host}`;
}

/**
 * The key docker, podman and skopeo file a registry's credentials under: `host[:port]`, without
 * scheme or path (`http://127.0.0.1:5000/` and `127.0.0.1:5000` are the same registry). What is not
 * an address is a LoginError showing the expected form.
 */
export function registryHost(registry: string): string {
  const withoutScheme = registry.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const host = withoutScheme.split('/')[0] ?? '';
  if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host)) {
    throw new LoginError(`${JSON.stringify(registry)} is not a registry address; expected HOST[:PORT], e.g. registry.example.com or 127.0.0.1:5000`);
  }
  return host.toLowerCase();
}

/**
 * A registry's base URL as a person names it to the CLI: an explicit `http(s)://` URL as given,
 * else `http://` for loopback hosts (or when told `insecure`) and `https://` otherwise. (Import and
 * sync sources use `registryBaseUrl`, which also knows where Docker Hub's API lives.)
 */
export function registryUrl(registry: string, insecure = false): string {
  if (/^https?:\/\//.test(registry)) {
    let end = registry.length;
    while (end > 0 && registry[end - 1] === '/') end--;
    return registry.slice(0, end);
  }
  const host = registry.split('/')[0] ?? registry;
  return `${insecure || isLoopbackHost(host) ? 'http' : 'https'}://${host}`;
}
