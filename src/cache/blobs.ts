/**
 * Blobs through the cache: served from storage when the repository holds them; otherwise fetched
 * from the upstream once, however many clients ask at the same time (one `BlobFill` per repository
 * and digest), streamed to them while the registry's upload commit path hashes and stores it
 * (`UploadService.putMonolithic`: visible only by an atomic move after the digest and size
 * matched). A mismatch fails every reader and stores nothing.
 *
 * Content this registry already stores for another repository is linked instead of fetched again,
 * but only after the upstream confirmed (HEAD) that the repository has it: a pull grant on the
 * cache prefix must not become a way to read other repositories' blobs by digest.
 */
import type { Logger } from 'pino';
import { pipeline, type Writable } from 'node:stream';
import { ApiError } from '../api/errors.js';
import type { Digest } from '../oci/digest.js';
import { isRegistryError, RegistryError } from '../oci/errors.js';
import type { Registry } from '../registry/index.js';
import { clientError } from './errors.js';
import { BlobFill } from './fills.js';
import type { CachedPull, CacheOutcome } from './manifests.js';
import type { CacheMetrics } from './metrics.js';
import type { CacheRule } from './rule.js';
import type { Upstreams } from './upstreams.js';

export interface BlobDependencies {
  registry: Registry;
  upstreams: Upstreams;
  metrics: CacheMetrics;
  logger: Logger;
  /** Most bytes of one fill kept in memory for its readers (`cache.fillWindowBytes`). */
  windowBytes: number;
}

/**
 * How to answer a blob pull: `stored` — the repository holds it (serve as any blob); `upstream` —
 * a HEAD the cache answered from the upstream without fetching (size when known); `fill` — read it
 * from the fetch in flight.
 */
export type BlobAnswer =
  | { kind: 'stored'; outcome: CacheOutcome }
  | { kind: 'upstream'; size: number | undefined; outcome: CacheOutcome }
  | { kind: 'fill'; fill: BlobFill; outcome: CacheOutcome; read: (destination: Writable, range: { start: number; end: number }) => Promise<void> };

type Source = { kind: 'stored' } | { kind: 'fill'; fill: BlobFill };

export class CachedBlobs {
  /** The fetch in flight per repository and digest, until it is stored (or failed). */
  private readonly inflight = new Map<string, Promise<Source>>();
  private readonly fills = new Set<{ fill: BlobFill; abort: AbortController }>();

  constructor(private readonly deps: BlobDependencies) {}

  async get(rule: CacheRule, pull: CachedPull, digest: Digest, head: boolean): Promise<BlobAnswer> {
    const { registry, metrics } = this.deps;
    const outcome: CacheOutcome = { state: 'hit', rule: rule.name, upstream: rule.upstreamHost };
    try {
      if (await registry.blobs.has(pull.repository, digest)) {
        metrics.served(rule.name, 'blob', 'hit');
        return { kind: 'stored', outcome };
      }
      outcome.state = 'miss';
      if (head) {
        const size = await this.headUpstream(rule, pull, digest);
        const linked = await registry.blobs.linkStored(pull.repository, digest);
        metrics.served(rule.name, 'blob', linked ? 'hit' : 'miss');
        return linked ? { kind: 'stored', outcome: Object.assign({}, outcome, { state: 'hit' as const }) } : { kind: 'upstream', size, outcome };
      }
      const { source: pending, joined } = this.acquire(`${pull.repository}|${digest.value}`, () => this.start(rule, pull, digest));
      if (joined) metrics.joins.inc({ rule: rule.name });
      const source = await pending;
      metrics.served(rule.name, 'blob', source.kind === 'stored' ? 'hit' : 'miss');
      if (source.kind === 'stored') return { kind: 'stored', outcome: Object.assign({}, outcome, { state: 'hit' as const }) };
      return {
        kind: 'fill',
        fill: source.fill,
        outcome,
        read: (destination, range) => registry.blobs.send(pull.repository, digest, destination, () => undefined, range),
      };
    } catch (err) {
      metrics.served(rule.name, 'blob', isRegistryError(err) && err.status < 500 && err.status !== 429 ? 'refused' : 'error');
      throw clientError(err, rule, { kind: 'blob', reference: digest.value });
    }
  }

  /**
   * The source of the blob: the fetch already in flight for `key` (joined), or a new one from
   * `start`. The entry stays until the fetch settles (stored or failed), so pulls arriving meanwhile
   * share it; a start that fails or finds the blob stored is forgotten at once.
   */
  private acquire(key: string, start: () => Promise<Source>): { source: Promise<Source>; joined: boolean } {
    const existing = this.inflight.get(key);
    if (existing) return { source: existing, joined: true };
    const forget = () => {
      if (this.inflight.get(key) === source) this.inflight.delete(key);
    };
    const source = start().then(
      (found) => {
        if (found.kind === 'fill') found.fill.settled.then(forget, forget);
        else forget();
        return found;
      },
      (err: unknown) => {
        forget();
        throw err;
      },
    );
    this.inflight.set(key, source);
    return { source, joined: false };
  }

  /** Aborts every fetch in flight (shutdown); their readers fail. */
  stop(): void {
    for (const { abort } of this.fills) abort.abort(new Error('the server is shutting down'));
  }

  /**
   * Checks with the upstream that the repository has the blob, then links stored content or opens the
   * upstream body and starts storing it. Shared by concurrent pulls of the blob; the entry stays
   * until the fill settles, so a pull arriving meanwhile joins it instead of fetching again.
   */
  private async start(rule: CacheRule, pull: CachedPull, digest: Digest): Promise<Source> {
    const { registry, upstreams, metrics } = this.deps;
    // The caller's "not stored" was read before it got here: a fill may have ended in between.
    if (await registry.blobs.has(pull.repository, digest)) return { kind: 'stored' };
    const expected = await this.headUpstream(rule, pull, digest);
    if (await registry.blobs.linkStored(pull.repository, digest)) return { kind: 'stored' };
    const abort = new AbortController();
    const remote = await upstreams.client(rule);
    let blob;
    try {
      blob = await remote.openBlob(pull.upstream, digest.value, abort.signal);
      metrics.asked(rule.name, 'blob', 'ok');
    } catch (err) {
      metrics.asked(rule.name, 'blob', upstreams.note(rule, err));
      throw err;
    }
    if (blob.size !== undefined && expected !== undefined && blob.size !== expected) {
      blob.body.destroy();
      throw new ApiError('UPSTREAM_INVALID', `${rule.upstreamHost} gives blob ${digest.value} two sizes (${expected} and ${blob.size})`);
    }
    const fill = new BlobFill(digest.value, blob.size ?? expected, this.deps.windowBytes);
    const entry = { fill, abort };
    this.fills.add(entry);
    metrics.fills.inc();
    // pipeline (not pipe): a connection lost mid-body fails the commit path too.
    const body = pipeline(blob.body, fill.tap(), () => undefined);
    const stored = registry.uploads.putMonolithic(pull.repository, digest, body, blob.size ?? expected);
    const finished = stored.then(
      () => {
        metrics.upstreamBytes.inc({ rule: rule.name }, fill.received);
        fill.complete();
      },
      (err: unknown) => {
        const failure = this.fillFailure(rule, digest, err);
        this.deps.logger.warn({ rule: rule.name, repository: pull.repository, digest: digest.value, err: failure.message }, 'cache fill failed');
        fill.fail(failure);
      },
    );
    void finished.finally(() => {
      blob.body.destroy();
      this.fills.delete(entry);
      metrics.fills.dec();
    });
    return { kind: 'fill', fill };
  }

  /** HEAD of the blob at the upstream: its size when sent; BLOB_UNKNOWN when the upstream has no such blob. */
  private async headUpstream(rule: CacheRule, pull: CachedPull, digest: Digest): Promise<number | undefined> {
    const { upstreams, metrics } = this.deps;
    const remote = await upstreams.client(rule);
    let stat;
    try {
      stat = await remote.statBlob(pull.upstream, digest.value);
      metrics.asked(rule.name, 'blob_head', stat === false ? 'not_found' : 'ok');
    } catch (err) {
      metrics.asked(rule.name, 'blob_head', upstreams.note(rule, err));
      throw err;
    }
    if (stat === false)
      throw new RegistryError('BLOB_UNKNOWN', `${digest.value} is not cached and ${rule.upstreamHost} does not have it`, { digest: digest.value });
    return stat.size;
  }

  private fillFailure(rule: CacheRule, digest: Digest, err: unknown): Error {
    if (isRegistryError(err) && (err.code === 'DIGEST_INVALID' || err.code === 'SIZE_INVALID')) {
      return new ApiError(
        'UPSTREAM_INVALID',
        `${rule.upstreamHost} sent content for blob ${digest.value} that does not match its digest or size: nothing was cached`,
        err.detail,
      );
    }
    return err instanceof Error ? err : new Error(String(err));
  }
}
