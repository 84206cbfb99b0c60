/**
 * The kubelet's image credential provider protocol (credentialprovider.kubelet.k8s.io/v1): the
 * kubelet runs `berth-credential-provider` with a CredentialProviderRequest on stdin and reads a
 * CredentialProviderResponse from stdout. With `tokenAttributes` in the kubelet's
 * CredentialProviderConfig (Kubernetes 1.33+), the request carries the pod's service-account token
 * for our audience and the annotations of its service account; the token is exchanged at Berth
 * exactly as the controller does it, and the answer is cached by the kubelet for half the
 * credentials' lifetime.
 */
import { refreshTokenUser } from '../remote/tokens.js';
import type { Exchanger } from './exchange.js';
import { ExchangeError } from './exchange.js';
import { isValidRepositoryName } from '../oci/names.js';
import { normalizeServer, serverAllowed, SpecError } from './validation.js';

export const providerApiVersions = ['credentialprovider.kubelet.k8s.io/v1', 'credentialprovider.kubelet.k8s.io/v1beta1'] as const;
export const defaultClientIdAnnotation = 'berth.dev/client-id';

export interface CredentialProviderRequest {
  apiVersion: string;
  kind: 'CredentialProviderRequest';
  image: string;
  serviceAccountToken?: string;
  serviceAccountAnnotations?: Record<string, string>;
}

export interface CredentialProviderResponse {
  apiVersion: string;
  kind: 'CredentialProviderResponse';
  cacheKeyType: 'Image' | 'Registry' | 'Global';
  cacheDuration: string;
  auth: Record<string, { username: string; password: string }>;
}

export interface ProviderSettings {
  /** Registries the provider may send tokens to (`host[:port]` or `*.domain`). */
  allowedRegistries: readonly string[];
  /** The Berth client id when the service account does not name one. */
  clientId: string | undefined;
  /** The service-account annotation naming the client id. */
  clientIdAnnotation: string;
}

export class ProviderError extends Error {
  override name = 'ProviderError';
}

/** `host[:port]` and repository of an image reference; undefined host for Docker Hub short names. */
export function splitImage(image: string): { host: string | undefined; repository: string } {
  const withoutDigest = image.split('@')[0] ?? '';
  const slash = withoutDigest.indexOf('/');
  const first = slash > 0 ? withoutDigest.slice(0, slash) : '';
  const hasHost = slash > 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  const path = hasHost ? withoutDigest.slice(slash + 1) : withoutDigest;
  const colon = path.lastIndexOf(':');
  const repository = colon > path.lastIndexOf('/') ? path.slice(0, colon) : path;
  return { host: hasHost ? first.toLowerCase() : undefined, repository };
}

export function parseRequest(input: string): CredentialProviderRequest {
  let request: Partial<CredentialProviderRequest>;
  try {
    request = JSON.parse(input) as Partial<CredentialProviderRequest>;
  } catch {
    throw new ProviderError('stdin is not a CredentialProviderRequest (not JSON)');
  }
  if (request === null || typeof request !== 'object' || request.kind !== 'CredentialProviderRequest') {
    throw new ProviderError('stdin is not a CredentialProviderRequest (kind)');
  }
  if (!providerApiVersions.includes(request.apiVersion as (typeof providerApiVersions)[number])) {
    throw new ProviderError(`unsupported apiVersion ${JSON.stringify(request.apiVersion)}; expected ${providerApiVersions.join(' or ')}`);
  }
  if (typeof request.image !== 'string' || request.image.length === 0) throw new ProviderError('the request has no image');
  return request as CredentialProviderRequest;
}

export async function provideCredentials(
  input: string,
  settings: ProviderSettings,
  exchange: Exchanger,
  now: () => number = Date.now,
): Promise<CredentialProviderResponse> {
  const request = parseRequest(input);
  const { host, repository } = splitImage(request.image);
  if (host === undefined) throw new ProviderError(`${request.image} names no registry host; this provider serves Berth registries only`);
  let server: string;
  try {
    server = normalizeServer(host);
  } catch (err) {
    if (err instanceof SpecError) throw new ProviderError(`${request.image}: ${err.message.replace('spec.registry.server', 'the registry')}`);
    throw err;
  }
  if (!serverAllowed(server, settings.allowedRegistries)) {
    throw new ProviderError(`registry ${server} is not allowed (--allowed-registry); the service-account token is not sent there`);
  }
  if (!isValidRepositoryName(repository)) throw new ProviderError(`${request.image}: ${JSON.stringify(repository)} is not a repository name`);
  const token = request.serviceAccountToken;
  if (!token) {
    throw new ProviderError(
      "the request carries no serviceAccountToken: set tokenAttributes.serviceAccountTokenAudience in the kubelet's CredentialProviderConfig",
    );
  }
  const clientId = request.serviceAccountAnnotations?.[settings.clientIdAnnotation] ?? settings.clientId;
  const scope = `repository:${repository}:pull`;
  let credentials;
  try {
    credentials = await exchange(server, token, clientId, [scope]);
  } catch (err) {
    if (err instanceof ExchangeError) throw new ProviderError(err.message);
    throw err;
  }
  if (credentials.missing.length > 0) {
    throw new ProviderError(`Berth does not grant ${scope} to ${clientId ?? 'the principal trusting this service account'}`);
  }
  const seconds = Math.max(0, Math.floor((credentials.expiresAt - now()) / 2000));
  return {
    apiVersion: request.apiVersion,
    kind: 'CredentialProviderResponse',
    // The refresh token pulls this one repository only (the exchange asked for exactly its pull
    // scope), so the kubelet may reuse the answer for this image only: `Registry` made it hand
    // these credentials to every image of the registry, whose pulls then failed until the cache
    // expired. The kubelet has no per-repository cache key; `Image` is the narrowest that holds
    // (another tag of the repository runs the plugin again). The auth entry is scoped to the
    // repository path as well, so the credentials are never offered for another repository.
    cacheKeyType: 'Image',
    cacheDuration: `${seconds}s`,
    auth: { [`${server}/${repository}`]: { username: refreshTokenUser, password: credentials.refreshToken } },
  };
}
