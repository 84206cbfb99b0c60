/**
 * A client for one remote OCI registry (Distribution, Docker Hub, another Berth, any v2 API),
 * shared by import, sync, the CLI and tests. One `RemoteRegistry` per source: it keeps that
 * source's auth state (tokens per scope), its rate limit and its retry policy.
 *
 * Contract:
 * - Every request goes through `options.egress.dispatcher` when the caller gives an egress policy
 *   (import and sync always do), so it is enforced on every resolved address, redirects (blob
 *   CDNs) and token realms included. Credentials are never sent over plain HTTP except to
 *   loopback, and a cross-origin redirect drops `Authorization` (undici, and node-transport.ts
 *   without an egress policy).
 * - Built on the pieces every registry client of Berth shares: `http.ts` (limits, retries with
 *   Retry-After, bounded reads, `Link` pagination), `challenge.ts` (RFC 7235 challenges) and
 *   `tokens.ts` (the token protocol), `source-auth.ts` (a source's auth state).
 * - Auth (source-auth.ts): the first 401 says how; a second 401 after fresh credentials is
 *   UPSTREAM_DENIED.
 * - Retries: GET/HEAD are retried on connection errors, timeouts and 500/502/503/504 with
 *   exponential backoff, and on 429 after Retry-After (which also pauses the whole source), at
 *   most `retries.attempts` times; then UPSTREAM_UNREACHABLE. A body that fails mid-stream is the
 *   caller's to retry (the copy restarts that blob).
 * - Everything the source sends is treated as hostile: manifests are size-bounded, parsed and
 *   their digest computed here (a mismatch with the reference or with Docker-Content-Digest is
 *   UPSTREAM_INVALID); pagination links must stay on the same origin; page counts are bounded.
 * - Errors are ApiError UPSTREAM_UNREACHABLE / UPSTREAM_DENIED / UPSTREAM_INVALID /
 *   UPSTREAM_NOT_FOUND with one-line messages that name the source and say what to do.
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { urls } from '../api/urls.js';
import type { Egress } from '../net/egress.js';
import { digestOf, tryParseDigest } from '../oci/digest.js';
import { isRegistryError } from '../oci/errors.js';
import { ApiError, isApiError } from '../api/errors.js';
import { parseManifest, type Descriptor, type ParsedManifest } from '../oci/manifest.js';
import { isValidRepositoryName, isValidTag } from '../oci/names.js';
import { baseMediaType, isIndexMediaType, mediaTypes } from '../oci/media-types.js';
import { isLoopbackHost } from '../shared/loopback.js';
import { drain, HttpClient, HttpFailure, nextLink, readBounded, type HttpResponse } from './http.js';
import { RequestLimiter } from './limiter.js';
import { SourceAuth, type RemoteCredentials } from './source-auth.js';

export type { RemoteCredentials };

export interface RemoteOptions {
  /** https://host[:port], or http:// for loopback (or when the operator allows it). */
  baseUrl: string;
  credentials: RemoteCredentials;
  /** The egress policy; without one, requests go anywhere over node:http and node:https (remote/node-transport.ts: the CLI, tests). */
  egress?: Egress | undefined;
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

export class RemoteRegistry {
  readonly baseUrl: string;
  private readonly origin: string;
  /** Requests to the source: through its limiter. */
  private readonly http: HttpClient;
  private readonly auth: SourceAuth;
  private readonly maxManifestBytes: number;
  private readonly logger: Logger | undefined;

  constructor(options: RemoteOptions) {
    const url = new URL(options.baseUrl);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ApiError('INVALID_REQUEST', `${options.baseUrl} is not an http(s) URL`);
    this.origin = url.origin;
    this.baseUrl = url.origin;
    const common = {
      dispatcher: options.egress?.dispatcher,
      userAgent: options.userAgent ?? 'berth-import',
      retries: options.retries,
      timeouts: options.timeouts,
      logger: options.logger,
    };
    this.http = new HttpClient({ ...common, limiter: options.limiter ?? new RequestLimiter(options.limits) });
    // Its token service may be another host: same policy, not the source's limiter.
    this.auth = new SourceAuth(url, options.credentials, new HttpClient(common));
    this.maxManifestBytes = options.maxManifestBytes ?? 4 * 1024 * 1024;
    this.logger = options.logger;
    if (options.credentials.kind !== 'anonymous' && url.protocol === 'http:' && !isLoopbackHost(url.host)) {
      throw new ApiError('INVALID_REQUEST', `refusing to send credentials to ${this.origin} over plain HTTP: use https://`);
    }
  }

  /** The source's host[:port], for messages. */
  get host(): string {
    return new URL(this.origin).host;
  }

  /** GET /v2/: checks that the source is a registry and that the credentials work. */
  async ping(signal?: AbortSignal): Promise<void> {
    const res = await this.send('GET', urls.base(), { scope: undefined, signal });
    try {
      if (res.status !== 200) throw await this.unexpected(res, `GET ${urls.base()}`);
    } finally {
      await drain(res);
      res.release();
    }
  }

  /**
   * Every repository in the catalog (`/v2/_catalog`, following `Link` pages). Names that fail the
   * OCI grammar (or its 255-character limit) are dropped here, before any caller's filter sees them.
   */
  listRepositories(signal?: AbortSignal): Promise<string[]> {
    return this.paginate(urls.catalog({ n: 1000 }), 'registry:catalog:*', 'repositories', signal);
  }

  /**
   * Every tag of a repository (following `Link` pages); [] for a repository the source does not know.
   * Tags that fail the OCI tag grammar (1-128 characters of `[A-Za-z0-9_.-]`) are dropped here,
   * before any caller's filter sees them.
   */
  async listTags(repository: string, signal?: AbortSignal): Promise<string[]> {
    try {
      return await this.paginate(urls.tags(repository, { n: 1000 }), pullScope(repository), 'tags', signal);
    } catch (err) {
      if (isApiError(err) && err.code === 'UPSTREAM_NOT_FOUND') return [];
      throw err;
    }
  }

  /** HEAD of a manifest: its digest, media type and size; undefined on 404. */
  async resolve(repository: string, reference: string, signal?: AbortSignal): Promise<{ digest: string; mediaType: string; size: number } | undefined> {
    const res = await this.send('HEAD', urls.manifest(repository, reference), {
      scope: pullScope(repository),
      accept: manifestAccept,
      signal,
    });
    try {
      if (res.status === 404) return undefined;
      if (res.status !== 200) throw await this.unexpected(res, `HEAD ${repository}:${reference}`);
      const digest = res.header('docker-content-digest');
      const mediaType = baseMediaType(res.header('content-type'));
      const size = Number(res.header('content-length'));
      if (digest && tryParseDigest(digest) && mediaType && Number.isSafeInteger(size)) {
        if (tryParseDigest(reference) && digest !== reference) throw this.invalid(`${repository}@${reference} answered with digest ${digest}`);
        return { digest, mediaType, size };
      }
    } finally {
      await drain(res);
      res.release();
    }
    // Some registries omit the digest on HEAD: fetch and hash the manifest instead.
    const manifest = await this.getManifest(repository, reference, signal).catch((err: unknown) => {
      if (isApiError(err) && err.code === 'UPSTREAM_NOT_FOUND') return undefined;
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
    const res = await this.send('GET', urls.manifest(repository, reference), {
      scope: pullScope(repository),
      accept: manifestAccept,
      signal,
    });
    let bytes: Buffer;
    try {
      if (res.status === 404) throw new ApiError('UPSTREAM_NOT_FOUND', `${where} does not exist on the source: check the repository and tag`);
      if (res.status !== 200) throw await this.unexpected(res, `GET ${where}`);
      bytes = await readBounded(res, this.maxManifestBytes, () => this.invalid(`the manifest of ${where} is larger than ${this.maxManifestBytes} bytes`));
    } finally {
      await drain(res);
      res.release();
    }
    const wanted = tryParseDigest(reference);
    const digest = digestOf(bytes, wanted?.algorithm ?? 'sha256');
    if (wanted && digest !== wanted.value)
      throw this.invalid(`the manifest the source sent for ${where} has digest ${digest}: the source is corrupt or tampered with`);
    const claimed = res.header('docker-content-digest');
    const claimedDigest = claimed ? tryParseDigest(claimed) : undefined;
    if (claimedDigest && digestOf(bytes, claimedDigest.algorithm) !== claimedDigest.value) {
      throw this.invalid(`the manifest of ${where} does not match the digest the source claims (${claimed}): the source is corrupt or tampered with`);
    }
    let manifest: ParsedManifest;
    try {
      manifest = parseManifest(bytes, res.header('content-type'));
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
    const res = await this.send('GET', urls.blob(repository, digest), { scope: pullScope(repository), signal, redirects: true });
    if (res.status !== 200) {
      try {
        if (res.status === 404) throw new ApiError('UPSTREAM_NOT_FOUND', `blob ${digest} of ${this.host}/${repository} does not exist on the source`);
        throw await this.unexpected(res, `GET blob ${digest} of ${repository}`);
      } finally {
        await drain(res);
        res.release();
      }
    }
    res.body.once('close', res.release);
    res.body.once('end', res.release);
    const length = Number(res.header('content-length'));
    return { body: res.body, size: Number.isSafeInteger(length) && length >= 0 ? length : undefined };
  }

  /**
   * HEAD of a blob: its size when the source has it (undefined when it does not send one), or
   * `false` on 404. Nothing is downloaded.
   */
  async statBlob(repository: string, digest: string, signal?: AbortSignal): Promise<{ size: number | undefined } | false> {
    const res = await this.send('HEAD', urls.blob(repository, digest), { scope: pullScope(repository), signal, redirects: true });
    try {
      if (res.status === 404) return false;
      if (res.status !== 200) throw await this.unexpected(res, `HEAD blob ${digest} of ${repository}`);
      const length = Number(res.header('content-length'));
      return { size: Number.isSafeInteger(length) && length >= 0 ? length : undefined };
    } finally {
      await drain(res);
      res.release();
    }
  }

  /**
   * The referrers of `digest` (signatures, SBOMs, attestations): the referrers API, or, where the
   * source does not have it, the referrers tag schema (`sha256-<hex>` tag holding an index).
   */
  async referrers(repository: string, digest: string, artifactType?: string, signal?: AbortSignal): Promise<Descriptor[]> {
    let path: string | undefined = urls.referrers(repository, digest, artifactType);
    const found: Descriptor[] = [];
    for (let page = 0; path !== undefined && page < maxPages; page++) {
      const res = await this.send('GET', path, { scope: pullScope(repository), accept: mediaTypes.ociIndex, signal });
      let body: unknown;
      try {
        if (res.status === 404 || res.status === 405 || (res.status === 400 && page === 0)) {
          if (page === 0) return this.referrersByTag(repository, digest, artifactType, signal);
          break;
        }
        if (res.status !== 200) throw await this.unexpected(res, `GET referrers of ${repository}@${digest}`);
        body = parseJson(await readBounded(res, this.maxManifestBytes, () => this.invalid(`the referrers list of ${digest} is too large`)));
        path = this.nextPage(res);
      } finally {
        await drain(res);
        res.release();
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
      if (isApiError(err) && err.code === 'UPSTREAM_NOT_FOUND') return [];
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
      const res = await this.send('GET', path, { scope, signal });
      let body: unknown;
      try {
        if (res.status === 404) throw new ApiError('UPSTREAM_NOT_FOUND', `${this.host} does not know ${path.split('?')[0]}`);
        if (res.status !== 200) throw await this.unexpected(res, `GET ${path.split('?')[0]}`);
        body = parseJson(await readBounded(res, 64 * 1024 * 1024, () => this.invalid(`a ${field} page from ${this.host} is too large`)));
        path = this.nextPage(res);
      } finally {
        await drain(res);
        res.release();
      }
      const list = (body as Record<string, unknown> | undefined)?.[field];
      if (list === null || list === undefined) continue;
      if (!Array.isArray(list) || !list.every((v) => typeof v === 'string')) throw this.invalid(`${this.host} sent a malformed ${field} list`);
      const valid = (list as string[]).filter(field === 'tags' ? isValidTag : isValidRepositoryName);
      if (valid.length < list.length) {
        this.logger?.warn(
          { source: this.host, field, dropped: list.length - valid.length },
          'the source listed names that are not valid OCI names; they are ignored',
        );
      }
      all.push(...valid);
    }
    return all;
  }

  /** The `Link: <…>; rel="next"` target, only on the same origin. */
  private nextPage(res: HttpResponse): string | undefined {
    const next = nextLink(res.header('link'), this.origin);
    if (!next) return undefined;
    if (next.origin !== this.origin) throw this.invalid(`${this.host} sent a pagination link to another origin (${next.origin})`);
    return `${next.pathname}${next.search}`;
  }

  /**
   * Sends one request with auth, limits and retries (`http.ts`); a 401 is answered once with what
   * its challenge asks for. The caller owns the response body and must call `release` once it has
   * consumed or dropped it.
   */
  private async send(
    method: 'GET' | 'HEAD',
    path: string,
    opts: { scope: string | undefined; accept?: string; signal: AbortSignal | undefined; redirects?: boolean },
  ): Promise<HttpResponse> {
    for (let authRetried = false; ; authRetried = true) {
      const headers: Record<string, string> = {};
      if (opts.accept) headers['accept'] = opts.accept;
      const authorization = await this.auth.header(opts.scope, opts.signal);
      if (authorization) headers['authorization'] = authorization;
      let res: HttpResponse;
      try {
        res = await this.http.send({
          method,
          url: `${this.origin}${path}`,
          headers,
          // Blobs may live on a CDN; undici drops Authorization when a redirect leaves the origin.
          maxRedirections: opts.redirects ? 5 : 0,
          retry: true,
          signal: opts.signal,
        });
      } catch (err) {
        throw this.sendFailure(err);
      }
      if (res.status === 401) {
        const challenge = res.headers['www-authenticate'];
        await drain(res);
        res.release();
        if (authRetried || !challenge) {
          throw new ApiError(
            'UPSTREAM_DENIED',
            `${this.host} refused ${this.auth.describe()} for ${opts.scope ?? 'the registry'}: check the source credentials and their rights on the repository`,
          );
        }
        this.auth.learn(challenge, opts.scope);
        continue;
      }
      if (res.status === 403) {
        await drain(res);
        res.release();
        throw new ApiError(
          'UPSTREAM_DENIED',
          `${this.host} denied ${this.auth.describe()} access to ${opts.scope ?? 'the registry'}: ask the source's owner for pull rights`,
        );
      }
      return res;
    }
  }

  /** What went wrong on the way to the source, in its words. */
  private sendFailure(err: unknown): unknown {
    if (!(err instanceof HttpFailure)) return err;
    switch (err.kind) {
      case 'egress':
        return new ApiError('EGRESS_REFUSED', `${this.host}: ${err.message}`);
      case 'unreachable':
        return new ApiError(
          'UPSTREAM_UNREACHABLE',
          `cannot reach ${this.host} (${err.details.cause}) after ${err.attempts} attempts: check the address and that the source is up, then retry`,
        );
      case 'wait':
        // The wait goes into the detail so a caller that queues work (sync) retries no earlier.
        return new ApiError(
          'UPSTREAM_UNREACHABLE',
          `${this.host} asks to wait ${Math.ceil((err.retryAfterMs ?? 0) / 1000)} s (HTTP ${err.status}): retry the import later`,
          { retryAfterMs: err.retryAfterMs },
        );
      case 'busy':
        return new ApiError(
          'UPSTREAM_UNREACHABLE',
          `${this.host} answered HTTP ${err.status} ${err.attempts} times: the source is overloaded or failing; retry later`,
        );
    }
  }

  private invalid(message: string): ApiError {
    return new ApiError('UPSTREAM_INVALID', message);
  }

  /** An unexpected status, with the source's own error message (truncated) when it sent one. */
  private async unexpected(res: HttpResponse, what: string): Promise<ApiError> {
    let detail = '';
    try {
      const text = (await readBounded(res, maxErrorBody, () => new ApiError('UPSTREAM_INVALID'))).toString('utf8');
      const parsed = parseJson(Buffer.from(text)) as { errors?: Array<{ code?: unknown; message?: unknown }> } | undefined;
      const first = parsed?.errors?.[0];
      if (first && typeof first.message === 'string') detail = `: ${typeof first.code === 'string' ? `${first.code} ` : ''}${first.message.slice(0, 200)}`;
    } catch {
      // the status alone says enough
    }
    if (res.status >= 500) return new ApiError('UPSTREAM_UNREACHABLE', `${what} on ${this.host} failed with HTTP ${res.status}${detail}: retry later`);
    return this.invalid(`${what} on ${this.host} answered HTTP ${res.status}${detail}`);
  }
}

function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ApiError('UPSTREAM_INVALID', 'the source sent a response that is not valid JSON');
  }
}
