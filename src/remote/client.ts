/**
 * A client for one remote OCI registry (Distribution, Docker Hub, another Berth, any v2 API),
 * shared by import, sync, the CLI and tests. One `RemoteRegistry` per source: it keeps that
 * source's auth state (tokens per scope), its rate limit and its retry policy.
 *
 * Contract:
 * - Every request goes through `options.egress.dispatcher`, so the egress policy is enforced on
 *   every resolved address, redirects (blob CDNs) and token realms included. Credentials are never
 *   sent over plain HTTP except to loopback, and undici drops `Authorization` on a cross-origin
 *   redirect.
 * - Auth: the first 401 says how. `Bearer realm=…,service=…` → a token is fetched from the realm
 *   (GET with Basic credentials, as docker does; anonymous without) per scope and cached until
 *   shortly before it expires; `Basic` → the credentials go on every request. `oidc` credentials
 *   are Basic with the client id and the JWT read afresh from `tokenFile` each time a token is
 *   needed (the file is rotated by its platform). A second 401 after fresh credentials is
 *   UPSTREAM_DENIED.
 * - Retries: GET/HEAD are retried on connection errors, timeouts and 500/502/503/504 with
 *   exponential backoff, and on 429 after Retry-After (which also pauses the whole source), at
 *   most `retries.attempts` times; then UPSTREAM_UNREACHABLE. A body that fails mid-stream is the
 *   caller's to retry (the copy restarts that blob).
 * - Everything the source sends is treated as hostile: manifests are size-bounded, parsed and
 *   their digest computed here (a mismatch with the reference or with Docker-Content-Digest is
 *   UPSTREAM_INVALID); pagination links must stay on the same origin; page counts are bounded.
 * - Errors are RegistryError UPSTREAM_UNREACHABLE / UPSTREAM_DENIED / UPSTREAM_INVALID /
 *   UPSTREAM_NOT_FOUND with one-line messages that name the source and say what to do.
 */
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { request, type Dispatcher } from 'undici';
import type { Egress } from '../net/egress.js';
import { digestOf, tryParseDigest } from '../oci/digest.js';
import { RegistryError, isRegistryError } from '../oci/errors.js';
import { parseManifest, type Descriptor, type ParsedManifest } from '../oci/manifest.js';
import { baseMediaType, isIndexMediaType, mediaTypes } from '../oci/media-types.js';
import { RequestLimiter } from './limiter.js';
import { isLoopbackHost } from '../shared/loopback.js';

export type RemoteCredentials =
  | { kind: 'anonymous' }
  /** Basic auth, or the credentials for Docker token auth. */
  | { kind: 'basic'; username: string; password: string }
  /** Federation into another Berth: token endpoint Basic with clientId + the OIDC JWT read fresh from tokenFile each time. */
  | { kind: 'oidc'; clientId: string; tokenFile: string };

export interface RemoteOptions {
  /** https://host[:port], or http:// for loopback (or when the operator allows it). */
  baseUrl: string;
  credentials: RemoteCredentials;
  egress: Egress;
  limits?: { requestsPerSecond?: number; concurrency?: number };
  /** Share one limiter between clients of the same source (e.g. concurrent import jobs); overrides `limits`. */
  limiter?: RequestLimiter;
  userAgent?: string;
  logger?: Logger;
  /** Retry policy for GET/HEAD (defaults: 4 attempts, 250 ms doubling up to 8 s, Retry-After honoured up to 60 s). */
  retries?: { attempts?: number; baseDelayMs?: number; maxDelayMs?: number; maxRetryAfterMs?: number };
  /** Per-request timeouts (defaults: 30 s until headers, 60 s between body bytes). */
  timeouts?: { headersMs?: number; bodyMs?: number };
  /** Largest manifest accepted from the source (default 4 MiB, the registry's own limit). */
  maxManifestBytes?: number;
}

export interface RemoteManifest {
  /** Computed here over the exact bytes. */
  digest: string;
  mediaType: string;
  bytes: Buffer;
  /** The parsed structure (children, blobs, subject). */
  manifest: ParsedManifest;
}

export interface RemoteBlob {
  body: Readable;
  /** Content-Length, when the source sent one. */
  size: number | undefined;
}

/** What manifest requests accept: OCI and Docker schema 2, images and indexes. */
export const manifestAccept = [mediaTypes.ociIndex, mediaTypes.ociManifest, mediaTypes.dockerManifestList, mediaTypes.dockerManifest].join(', ');

const maxPages = 10_000;
const maxErrorBody = 8 * 1024;
const retryStatuses = new Set([500, 502, 503, 504]);

interface BearerChallenge {
  realm: string;
  service: string | undefined;
}

type AuthScheme = { kind: 'unknown' } | { kind: 'none' } | { kind: 'basic' } | ({ kind: 'bearer' } & BearerChallenge);

interface Sent {
  res: Dispatcher.ResponseData;
  release: () => void;
}

export class RemoteRegistry {
  readonly baseUrl: string;
  private readonly origin: string;
  private readonly limiter: RequestLimiter;
  private scheme: AuthScheme = { kind: 'unknown' };
  /** Bearer tokens by scope, with their expiry (ms, wall clock). */
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly headersTimeout: number;
  private readonly bodyTimeout: number;
  private readonly maxManifestBytes: number;

  constructor(private readonly options: RemoteOptions) {
    const url = new URL(options.baseUrl);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new RegistryError('INVALID_REQUEST', `${options.baseUrl} is not an http(s) URL`);
    this.origin = url.origin;
    this.baseUrl = url.origin;
    this.limiter = options.limiter ?? new RequestLimiter(options.limits);
    this.attempts = Math.max(1, options.retries?.attempts ?? 4);
    this.baseDelayMs = options.retries?.baseDelayMs ?? 250;
    this.maxDelayMs = options.retries?.maxDelayMs ?? 8000;
    this.maxRetryAfterMs = options.retries?.maxRetryAfterMs ?? 60_000;
    this.headersTimeout = options.timeouts?.headersMs ?? 30_000;
    this.bodyTimeout = options.timeouts?.bodyMs ?? 60_000;
    this.maxManifestBytes = options.maxManifestBytes ?? 4 * 1024 * 1024;
    if (options.credentials.kind !== 'anonymous' && url.protocol === 'http:' && !isLoopbackHost(url.host)) {
      throw new RegistryError('INVALID_REQUEST', `refusing to send credentials to ${this.origin} over plain HTTP: use https://`);
    }
  }

  /** The source's host[:port], for messages. */
  get host(): string {
    return new URL(this.origin).host;
  }

  /** GET /v2/: checks that the source is a registry and that the credentials work. */
  async ping(signal?: AbortSignal): Promise<void> {
    const { res, release } = await this.send('GET', '/v2/', { scope: undefined, signal });
    try {
      if (res.statusCode !== 200) throw await this.unexpected(res, 'GET /v2/');
    } finally {
      await drain(res);
      release();
    }
  }

  /** Every repository in the catalog (`/v2/_catalog`, following `Link` pages). */
  listRepositories(signal?: AbortSignal): Promise<string[]> {
    return this.paginate('/v2/_catalog?n=1000', 'registry:catalog:*', 'repositories', signal);
  }

  /** Every tag of a repository (following `Link` pages); [] for a repository the source does not know. */
  async listTags(repository: string, signal?: AbortSignal): Promise<string[]> {
    try {
      return await this.paginate(`/v2/${repository}/tags/list?n=1000`, pullScope(repository), 'tags', signal);
    } catch (err) {
      if (isRegistryError(err) && err.code === 'UPSTREAM_NOT_FOUND') return [];
      throw err;
    }
  }

  /** HEAD of a manifest: its digest, media type and size; undefined on 404. */
  async resolve(repository: string, reference: string, signal?: AbortSignal): Promise<{ digest: string; mediaType: string; size: number } | undefined> {
    const { res, release } = await this.send('HEAD', `/v2/${repository}/manifests/${reference}`, {
      scope: pullScope(repository),
      accept: manifestAccept,
      signal,
    });
    try {
      if (res.statusCode === 404) return undefined;
      if (res.statusCode !== 200) throw await this.unexpected(res, `HEAD ${repository}:${reference}`);
      const digest = header(res, 'docker-content-digest');
      const mediaType = baseMediaType(header(res, 'content-type'));
      const size = Number(header(res, 'content-length'));
      if (digest && tryParseDigest(digest) && mediaType && Number.isSafeInteger(size)) {
        if (tryParseDigest(reference) && digest !== reference) throw this.invalid(`${repository}@${reference} answered with digest ${digest}`);
        return { digest, mediaType, size };
      }
    } finally {
      await drain(res);
      release();
    }
    // Some registries omit the digest on HEAD: fetch and hash the manifest instead.
    const manifest = await this.getManifest(repository, reference, signal).catch((err: unknown) => {
      if (isRegistryError(err) && err.code === 'UPSTREAM_NOT_FOUND') return undefined;
      throw err;
    });
    return manifest && { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.bytes.length };
  }

  /**
   * A manifest's exact bytes, verified: its digest is computed here and must equal `reference`
   * when that is a digest, and the source's Docker-Content-Digest when it sends one.
   */
  async getManifest(repository: string, reference: string, signal?: AbortSignal): Promise<RemoteManifest> {
    const where = `${this.host}/${repository}${tryParseDigest(reference) ? '@' : ':'}${reference}`;
    const { res, release } = await this.send('GET', `/v2/${repository}/manifests/${reference}`, {
      scope: pullScope(repository),
      accept: manifestAccept,
      signal,
    });
    let bytes: Buffer;
    try {
      if (res.statusCode === 404) throw new RegistryError('UPSTREAM_NOT_FOUND', `${where} does not exist on the source: check the repository and tag`);
      if (res.statusCode !== 200) throw await this.unexpected(res, `GET ${where}`);
      bytes = await readBounded(res, this.maxManifestBytes, () => this.invalid(`the manifest of ${where} is larger than ${this.maxManifestBytes} bytes`));
    } finally {
      await drain(res);
      release();
    }
    const wanted = tryParseDigest(reference);
    const digest = digestOf(bytes, wanted?.algorithm ?? 'sha256');
    if (wanted && digest !== wanted.value)
      throw this.invalid(`the manifest the source sent for ${where} has digest ${digest}: the source is corrupt or tampered with`);
    const claimed = header(res, 'docker-content-digest');
    const claimedDigest = claimed ? tryParseDigest(claimed) : undefined;
    if (claimedDigest && digestOf(bytes, claimedDigest.algorithm) !== claimedDigest.value) {
      throw this.invalid(`the manifest of ${where} does not match the digest the source claims (${claimed}): the source is corrupt or tampered with`);
    }
    let manifest: ParsedManifest;
    try {
      manifest = parseManifest(bytes, header(res, 'content-type'));
    } catch (err) {
      if (isRegistryError(err)) throw this.invalid(`the source sent an invalid manifest for ${where}: ${err.message}`);
      throw err;
    }
    return { digest, mediaType: manifest.mediaType, bytes, manifest };
  }

  /**
   * Opens a blob for streaming (redirects to a CDN are followed). The caller must consume or
   * destroy `body`; its request slot is held until then. The caller verifies the digest while
   * streaming (the registry's ingest does).
   */
  async openBlob(repository: string, digest: string, signal?: AbortSignal): Promise<RemoteBlob> {
    const { res, release } = await this.send('GET', `/v2/${repository}/blobs/${digest}`, { scope: pullScope(repository), signal });
    if (res.statusCode !== 200) {
      try {
        if (res.statusCode === 404) throw new RegistryError('UPSTREAM_NOT_FOUND', `blob ${digest} of ${this.host}/${repository} does not exist on the source`);
        throw await this.unexpected(res, `GET blob ${digest} of ${repository}`);
      } finally {
        await drain(res);
        release();
      }
    }
    res.body.once('close', release);
    res.body.once('end', release);
    const length = Number(header(res, 'content-length'));
    return { body: res.body, size: Number.isSafeInteger(length) && length >= 0 ? length : undefined };
  }

  /**
   * The referrers of `digest` (signatures, SBOMs, attestations): the referrers API, or, where the
   * source does not have it, the referrers tag schema (`sha256-<hex>` tag holding an index).
   */
  async referrers(repository: string, digest: string, artifactType?: string, signal?: AbortSignal): Promise<Descriptor[]> {
    const query = artifactType === undefined ? '' : `?artifactType=${encodeURIComponent(artifactType)}`;
    let path: string | undefined = `/v2/${repository}/referrers/${digest}${query}`;
    const found: Descriptor[] = [];
    for (let page = 0; path !== undefined && page < maxPages; page++) {
      const { res, release } = await this.send('GET', path, { scope: pullScope(repository), accept: mediaTypes.ociIndex, signal });
      let body: unknown;
      try {
        if (res.statusCode === 404 || res.statusCode === 405 || (res.statusCode === 400 && page === 0)) {
          if (page === 0) return this.referrersByTag(repository, digest, artifactType, signal);
          break;
        }
        if (res.statusCode !== 200) throw await this.unexpected(res, `GET referrers of ${repository}@${digest}`);
        body = parseJson(await readBounded(res, this.maxManifestBytes, () => this.invalid(`the referrers list of ${digest} is too large`)));
        path = this.nextPage(res);
      } finally {
        await drain(res);
        release();
      }
      found.push(...this.indexEntries(body, `referrers of ${repository}@${digest}`));
    }
    return artifactType === undefined ? found : found.filter((d) => d.artifactType === artifactType);
  }

  private async referrersByTag(repository: string, digest: string, artifactType: string | undefined, signal?: AbortSignal): Promise<Descriptor[]> {
    const tag = digest.replace(':', '-');
    let index: RemoteManifest;
    try {
      index = await this.getManifest(repository, tag, signal);
    } catch (err) {
      if (isRegistryError(err) && err.code === 'UPSTREAM_NOT_FOUND') return [];
      throw err;
    }
    if (!isIndexMediaType(index.mediaType)) return [];
    return index.manifest.manifests.filter((d) => artifactType === undefined || d.artifactType === artifactType);
  }

  private indexEntries(body: unknown, what: string): Descriptor[] {
    const manifests = (body as { manifests?: unknown } | undefined)?.manifests;
    if (!Array.isArray(manifests)) throw this.invalid(`the ${what} is not an image index`);
    const out: Descriptor[] = [];
    for (const entry of manifests) {
      const d = entry as Partial<Descriptor>;
      if (typeof d.digest !== 'string' || !tryParseDigest(d.digest) || typeof d.mediaType !== 'string' || typeof d.size !== 'number') {
        throw this.invalid(`the ${what} has an invalid descriptor`);
      }
      const descriptor: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
      if (typeof d.artifactType === 'string') descriptor.artifactType = d.artifactType;
      if (d.annotations && typeof d.annotations === 'object') descriptor.annotations = d.annotations;
      out.push(descriptor);
    }
    return out;
  }

  private async paginate(first: string, scope: string, field: 'repositories' | 'tags', signal?: AbortSignal): Promise<string[]> {
    const all: string[] = [];
    let path: string | undefined = first;
    for (let page = 0; path !== undefined; page++) {
      if (page >= maxPages) throw this.invalid(`${this.host} returned more than ${maxPages} pages of ${field}`);
      const { res, release } = await this.send('GET', path, { scope, signal });
      let body: unknown;
      try {
        if (res.statusCode === 404) throw new RegistryError('UPSTREAM_NOT_FOUND', `${this.host} does not know ${path.split('?')[0]}`);
        if (res.statusCode !== 200) throw await this.unexpected(res, `GET ${path.split('?')[0]}`);
        body = parseJson(await readBounded(res, 64 * 1024 * 1024, () => this.invalid(`a ${field} page from ${this.host} is too large`)));
        path = this.nextPage(res);
      } finally {
        await drain(res);
        release();
      }
      const list = (body as Record<string, unknown> | undefined)?.[field];
      if (list === null || list === undefined) continue;
      if (!Array.isArray(list) || !list.every((v) => typeof v === 'string')) throw this.invalid(`${this.host} sent a malformed ${field} list`);
      all.push(...(list as string[]));
    }
    return all;
  }

  /** The `Link: <…>; rel="next"` target, only on the same origin. */
  private nextPage(res: Dispatcher.ResponseData): string | undefined {
    const link = header(res, 'link');
    const match = link && /<([^>]+)>\s*;\s*rel="?next"?/.exec(link);
    if (!match) return undefined;
    const next = new URL(match[1] as string, this.origin);
    if (next.origin !== this.origin) throw this.invalid(`${this.host} sent a pagination link to another origin (${next.origin})`);
    return `${next.pathname}${next.search}`;
  }

  /**
   * Sends one request with auth, limits and retries. The caller owns the response body and must
   * call `release` once it has consumed or dropped it.
   */
  private async send(
    method: 'GET' | 'HEAD',
    path: string,
    opts: { scope: string | undefined; accept?: string; signal: AbortSignal | undefined },
  ): Promise<Sent> {
    let authRetried = false;
    for (let attempt = 1; ; attempt++) {
      const release = await this.limiter.acquire(opts.signal);
      let res: Dispatcher.ResponseData;
      try {
        const headers: Record<string, string> = { 'user-agent': this.options.userAgent ?? 'berth-import' };
        if (opts.accept) headers['accept'] = opts.accept;
        const authorization = await this.authorization(opts.scope, opts.signal);
        if (authorization) headers['authorization'] = authorization;
        res = await request(`${this.origin}${path}`, {
          method,
          headers,
          dispatcher: this.options.egress.dispatcher,
          maxRedirections: 5,
          headersTimeout: this.headersTimeout,
          bodyTimeout: this.bodyTimeout,
          signal: opts.signal ?? null,
        });
      } catch (err) {
        release();
        if (isRegistryError(err)) throw err;
        if (opts.signal?.aborted) throw opts.signal.reason ?? err;
        const refused = egressRefusal(err);
        if (refused) throw new RegistryError('EGRESS_REFUSED', `${this.host}: ${refused}`);
        if (attempt >= this.attempts) {
          throw new RegistryError(
            'UPSTREAM_UNREACHABLE',
            `cannot reach ${this.host} (${failure(err)}) after ${attempt} attempts: check the address and that the source is up, then retry`,
          );
        }
        this.options.logger?.debug({ source: this.host, path: path.split('?')[0], attempt, err: failure(err) }, 'source request failed; retrying');
        await sleep(this.backoff(attempt), undefined, opts.signal ? { signal: opts.signal } : {});
        continue;
      }

      if (res.statusCode === 401) {
        const challenge = header(res, 'www-authenticate');
        await drain(res);
        release();
        if (authRetried || !challenge) {
          throw new RegistryError(
            'UPSTREAM_DENIED',
            `${this.host} refused ${this.describeCredentials()} for ${opts.scope ?? 'the registry'}: check the source credentials and their rights on the repository`,
          );
        }
        authRetried = true;
        this.learnScheme(challenge);
        if (opts.scope !== undefined) this.tokens.delete(opts.scope);
        this.tokens.delete('');
        continue;
      }
      if (res.statusCode === 403) {
        await drain(res);
        release();
        throw new RegistryError(
          'UPSTREAM_DENIED',
          `${this.host} denied ${this.describeCredentials()} access to ${opts.scope ?? 'the registry'}: ask the source's owner for pull rights`,
        );
      }
      if (res.statusCode === 429 || retryStatuses.has(res.statusCode)) {
        const status = res.statusCode;
        const retryAfter = status === 429 || status === 503 ? parseRetryAfter(header(res, 'retry-after')) : undefined;
        await drain(res);
        release();
        if (retryAfter !== undefined && retryAfter > this.maxRetryAfterMs) {
          // The wait goes into the detail so a caller that queues work (sync) retries no earlier.
          throw new RegistryError(
            'UPSTREAM_UNREACHABLE',
            `${this.host} asks to wait ${Math.ceil(retryAfter / 1000)} s (HTTP ${status}): retry the import later`,
            {
              retryAfterMs: retryAfter,
            },
          );
        }
        if (attempt >= this.attempts) {
          throw new RegistryError(
            'UPSTREAM_UNREACHABLE',
            `${this.host} answered HTTP ${status} ${attempt} times: the source is overloaded or failing; retry later`,
          );
        }
        const wait = retryAfter ?? this.backoff(attempt);
        if (retryAfter !== undefined) this.limiter.pause(retryAfter);
        this.options.logger?.debug({ source: this.host, path: path.split('?')[0], status, attempt, wait }, 'source asked to back off; retrying');
        await sleep(wait, undefined, opts.signal ? { signal: opts.signal } : {});
        continue;
      }
      return { res, release };
    }
  }

  private backoff(attempt: number): number {
    const base = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    return base / 2 + Math.random() * (base / 2);
  }

  private learnScheme(challenge: string): void {
    const scheme = challenge.trim().split(/\s+/, 1)[0]?.toLowerCase();
    if (scheme === 'bearer') {
      const params = challengeParams(challenge);
      if (!params['realm']) throw this.invalid(`${this.host} sent a Bearer challenge without a realm`);
      let realm: URL;
      try {
        realm = new URL(params['realm']);
      } catch {
        throw this.invalid(`${this.host} sent a Bearer challenge with an invalid realm`);
      }
      if (realm.protocol !== 'https:' && realm.protocol !== 'http:') throw this.invalid(`${this.host} names a token realm that is not http(s)`);
      this.scheme = { kind: 'bearer', realm: realm.toString(), service: params['service'] };
    } else if (scheme === 'basic') {
      if (this.options.credentials.kind === 'anonymous') {
        throw new RegistryError('UPSTREAM_DENIED', `${this.host} needs credentials (Basic auth): give the source's username and password`);
      }
      this.scheme = { kind: 'basic' };
    } else {
      throw this.invalid(`${this.host} asks for an unsupported auth scheme (${(scheme ?? '').slice(0, 40)})`);
    }
  }

  /** The Authorization header for a request in `scope`, fetching a token when the source uses Bearer auth. */
  private async authorization(scope: string | undefined, signal: AbortSignal | undefined): Promise<string | undefined> {
    const scheme = this.scheme;
    if (scheme.kind === 'basic') return this.basicHeader(this.origin);
    if (scheme.kind !== 'bearer') return undefined;
    const key = scope ?? '';
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return `Bearer ${cached.token}`;
    const token = await this.fetchToken(scheme, scope, signal);
    this.tokens.set(key, token);
    return `Bearer ${token.token}`;
  }

  private async basicHeader(target: string): Promise<string | undefined> {
    const credentials = this.options.credentials;
    if (credentials.kind === 'anonymous') return undefined;
    const url = new URL(target);
    if (url.protocol !== 'https:' && !isLoopbackHost(url.host)) {
      throw new RegistryError('UPSTREAM_DENIED', `refusing to send credentials to ${url.origin} over plain HTTP: the source must use HTTPS`);
    }
    let username: string;
    let password: string;
    if (credentials.kind === 'basic') {
      ({ username, password } = credentials);
    } else {
      username = credentials.clientId;
      try {
        password = (await readFile(credentials.tokenFile, 'utf8')).trim();
      } catch (err) {
        throw new RegistryError(
          'UPSTREAM_DENIED',
          `cannot read the OIDC token file ${credentials.tokenFile} (${(err as NodeJS.ErrnoException).code ?? 'error'}): check the path and that its platform writes it`,
        );
      }
      if (!password) throw new RegistryError('UPSTREAM_DENIED', `the OIDC token file ${credentials.tokenFile} is empty`);
    }
    return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  }

  private async fetchToken(
    challenge: BearerChallenge,
    scope: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ token: string; expiresAt: number }> {
    const url = new URL(challenge.realm);
    if (challenge.service) url.searchParams.set('service', challenge.service);
    if (scope) url.searchParams.set('scope', scope);
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent ?? 'berth-import', accept: 'application/json' };
    const authorization = await this.basicHeader(url.origin);
    if (authorization) headers['authorization'] = authorization;
    let res: Dispatcher.ResponseData;
    for (let attempt = 1; ; attempt++) {
      try {
        res = await request(url, {
          method: 'GET',
          headers,
          dispatcher: this.options.egress.dispatcher,
          maxRedirections: 0,
          headersTimeout: this.headersTimeout,
          bodyTimeout: this.bodyTimeout,
          signal: signal ?? null,
        });
      } catch (err) {
        if (signal?.aborted) throw signal.reason ?? err;
        const refused = egressRefusal(err);
        if (refused) throw new RegistryError('EGRESS_REFUSED', `the token service of ${this.host}: ${refused}`);
        if (attempt >= this.attempts)
          throw new RegistryError('UPSTREAM_UNREACHABLE', `cannot reach the token service ${url.origin} of ${this.host} (${failure(err)}): retry later`);
        await sleep(this.backoff(attempt), undefined, signal ? { signal } : {});
        continue;
      }
      if (retryStatuses.has(res.statusCode) && attempt < this.attempts) {
        await drain(res);
        await sleep(this.backoff(attempt), undefined, signal ? { signal } : {});
        continue;
      }
      break;
    }
    try {
      if (res.statusCode === 401 || res.statusCode === 403) {
        throw new RegistryError(
          'UPSTREAM_DENIED',
          `the token service of ${this.host} refused ${this.describeCredentials()}${scope ? ` for ${scope}` : ''}: check the source credentials`,
        );
      }
      if (res.statusCode !== 200) throw await this.unexpected(res, `token request to ${url.origin}`);
      const body = parseJson(await readBounded(res, 1024 * 1024, () => this.invalid(`the token response of ${this.host} is too large`))) as
        Record<string, unknown> | undefined;
      const token = body?.['token'] ?? body?.['access_token'];
      if (typeof token !== 'string' || token.length === 0) throw this.invalid(`the token service of ${this.host} returned no token`);
      const expiresIn = typeof body?.['expires_in'] === 'number' && body['expires_in'] > 0 ? body['expires_in'] : 60;
      // Renew a little early so a token never expires between being picked and being checked.
      return { token, expiresAt: Date.now() + Math.max(1, expiresIn - Math.min(30, expiresIn / 4)) * 1000 };
    } finally {
      await drain(res);
    }
  }

  private describeCredentials(): string {
    const c = this.options.credentials;
    if (c.kind === 'anonymous') return 'anonymous access';
    if (c.kind === 'basic') return `the credentials of ${JSON.stringify(c.username.slice(0, 128))}`;
    return `the OIDC token of client ${JSON.stringify(c.clientId.slice(0, 128))}`;
  }

  private invalid(message: string): RegistryError {
    return new RegistryError('UPSTREAM_INVALID', message);
  }

  /** An unexpected status, with the source's own error message (truncated) when it sent one. */
  private async unexpected(res: Dispatcher.ResponseData, what: string): Promise<RegistryError> {
    let detail = '';
    try {
      const text = (await readBounded(res, maxErrorBody, () => new RegistryError('UPSTREAM_INVALID'))).toString('utf8');
      const parsed = parseJson(Buffer.from(text)) as { errors?: Array<{ code?: unknown; message?: unknown }> } | undefined;
      const first = parsed?.errors?.[0];
      if (first && typeof first.message === 'string') detail = `: ${typeof first.code === 'string' ? `${first.code} ` : ''}${first.message.slice(0, 200)}`;
    } catch {
      // the status alone says enough
    }
    if (res.statusCode >= 500)
      return new RegistryError('UPSTREAM_UNREACHABLE', `${what} on ${this.host} failed with HTTP ${res.statusCode}${detail}: retry later`);
    return this.invalid(`${what} on ${this.host} answered HTTP ${res.statusCode}${detail}`);
  }
}

function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

function header(res: Dispatcher.ResponseData, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** `key="value"` pairs of a WWW-Authenticate challenge. */
function challengeParams(challenge: string): Record<string, string> {
  const params: Record<string, string> = {};
  for (const match of challenge.matchAll(/(\w+)=(?:"([^"]*)"|([^\s,]+))/g)) params[(match[1] as string).toLowerCase()] = match[2] ?? match[3] ?? '';
  return params;
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date. */
function parseRetryAfter(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

async function readBounded(res: Dispatcher.ResponseData, limit: number, tooLarge: () => RegistryError): Promise<Buffer> {
  const declared = Number(header(res, 'content-length'));
  if (Number.isSafeInteger(declared) && declared > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Discards what is left of a body so the connection can be reused (or closes it). */
async function drain(res: Dispatcher.ResponseData): Promise<void> {
  if (res.body.readableEnded || res.body.destroyed) return;
  await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new RegistryError('UPSTREAM_INVALID', 'the source sent a response that is not valid JSON');
  }
}

/** The egress policy's refusal message, if that is why the request failed. */
function egressRefusal(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { code?: unknown }).code === 'EGRESS_REFUSED') return (e as Error).message;
  }
  return undefined;
}

/** undici's errors say little at the top; the cause (ECONNREFUSED, a TLS error, a timeout) helps. */
function failure(err: unknown): string {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR') return code;
  }
  return (err as Error)?.message ?? String(err);
}
