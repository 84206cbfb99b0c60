/**
 * Manifests through the cache. A manifest is stored as the upstream's exact bytes, so its digest is
 * the upstream's; an index is kept whole while its platform manifests (and any manifest's layers)
 * are fetched only when a client pulls them (a sparse manifest: `PutManifestOptions.allowMissing`).
 *
 * - By digest: served from the cache when it is there (digests are immutable), else fetched by
 *   digest (so verified against it) and stored.
 * - By tag: served as cached while fresh (`freshness.ts`); otherwise one HEAD asks the upstream
 *   where the tag points, and only a digest the cache does not hold is fetched. When the upstream
 *   cannot answer, the cached tag is served stale within the rule's limit.
 * Concurrent requests for the same tag or digest share one upstream request (`Singleflight`), and
 * the request that starts a flight decides again inside it: one that read "not cached" just before
 * another request's flight ended finds the result instead of asking the upstream again.
 */
import { isApiError } from '../api/errors.js';
import { tryParseDigest, type Digest } from '../oci/digest.js';
import { isRegistryError, RegistryError } from '../oci/errors.js';
import type { Reference } from '../oci/names.js';
import type { CacheMetadata } from '../metadata/cache-store.js';
import type { ManifestRecord } from '../metadata/store.js';
import type { Pusher, Registry } from '../registry/index.js';
import type { RemoteManifest } from '../remote/client.js';
import type { Clock } from '../shared/clock.js';
import { clientError } from './errors.js';
import { servableStale, tagDecision } from './freshness.js';
import type { CacheMetrics, CacheState } from './metrics.js';
import type { CacheRule } from './rule.js';
import { Singleflight } from './singleflight.js';
import type { Upstreams } from './upstreams.js';

export interface ManifestDependencies {
  registry: Registry;
  store: CacheMetadata;
  upstreams: Upstreams;
  metrics: CacheMetrics;
  clock: Clock;
}

/** Where a pull through the cache was served from; `checkedAt`: when the upstream last confirmed a stale tag. */
export interface CacheOutcome {
  state: CacheState;
  rule: string;
  upstream: string;
  checkedAt?: number | undefined;
}

export interface CachedPull {
  /** The local repository (prefix + upstream repository) and the upstream repository. */
  repository: string;
  upstream: string;
}

/** Sparse on both counts: platforms and blobs arrive when pulled. */
const sparse = { allowMissing: { manifests: true, blobs: true } } as const;

/** Repeated pulls of one manifest are recorded at most this often (the eviction clock needs no finer grain). */
const pullRecordEveryMs = 60 * 60 * 1000;
const maxRememberedPulls = 100_000;

export class CachedManifests {
  private readonly flights = new Singleflight<{ digest: string; changed: boolean }>();
  private readonly pulled = new Map<string, number>();

  constructor(private readonly deps: ManifestDependencies) {}

  /** The manifest for `reference` in `pull.repository`, fetched and stored when needed; `accept` as for a registry GET. */
  async get(rule: CacheRule, pull: CachedPull, reference: Reference, accept: readonly string[]): Promise<{ record: ManifestRecord; outcome: CacheOutcome }> {
    const outcome: CacheOutcome = { state: 'hit', rule: rule.name, upstream: rule.upstreamHost };
    const { registry, metrics } = this.deps;
    try {
      if (reference.kind === 'digest') {
        if (!(await registry.manifests.has(pull.repository, reference.digest.value))) {
          const { changed } = await this.share(`digest|${pull.repository}|${reference.digest.value}`, () => this.fetchDigest(rule, pull, reference.digest));
          outcome.state = changed ? 'miss' : 'hit';
        }
      } else {
        outcome.state = await this.resolveTag(rule, pull, reference.tag, outcome);
      }
      const record = await registry.manifests.get(pull.repository, reference, accept);
      metrics.served(rule.name, 'manifest', outcome.state);
      await this.recordPull(rule, pull.repository, record.digest);
      return { record, outcome };
    } catch (err) {
      metrics.served(rule.name, 'manifest', isRegistryError(err) && err.status < 500 && err.status !== 429 ? 'refused' : 'error');
      throw clientError(err, rule, { kind: 'manifest', reference: reference.kind === 'tag' ? reference.tag : reference.digest.value });
    }
  }

  /**
   * Asks the upstream where `tag` points now (one HEAD; the manifest only when its digest is new
   * here) and moves the cached tag there. Returns the digest and whether the tag moved.
   */
  async check(rule: CacheRule, pull: CachedPull, tag: string): Promise<{ digest: string; changed: boolean }> {
    return this.share(`tag|${pull.repository}|${tag}`, () => this.revalidate(rule, pull, tag));
  }

  private async resolveTag(rule: CacheRule, pull: CachedPull, tag: string, outcome: CacheOutcome): Promise<CacheState> {
    const { cached, local, fresh } = await this.tagState(rule, pull, tag);
    if (fresh) return 'hit';
    try {
      // Decided again inside the flight: a flight that revalidated the tag may have ended between
      // the read above and joining, and its answer is as fresh as a new one.
      const { changed } = await this.share(`tag|${pull.repository}|${tag}`, async () => {
        const now = await this.tagState(rule, pull, tag);
        return now.fresh && now.local !== undefined ? { digest: now.local, changed: false } : this.revalidate(rule, pull, tag);
      });
      return changed ? 'miss' : 'hit';
    } catch (err) {
      // The upstream could not say: a cached tag within its stale limit is served as it is.
      if (isUpstreamFailure(err) && servableStale(rule, cached, local, this.deps.clock.now())) {
        outcome.checkedAt = cached?.checkedAt;
        return 'stale';
      }
      throw err;
    }
  }

  /** What is known here of `tag`: the cache's record of it, where the local tag points, and whether that may be served unasked. */
  private async tagState(rule: CacheRule, pull: CachedPull, tag: string) {
    const { registry, store, clock } = this.deps;
    const [cached, local] = await Promise.all([store.tags.get(pull.repository, tag), registry.manifests.digestOfTag(pull.repository, tag)]);
    return { cached, local, fresh: tagDecision(rule, cached, local, clock.now()) === 'fresh' };
  }

  private async revalidate(rule: CacheRule, pull: CachedPull, tag: string): Promise<{ digest: string; changed: boolean }> {
    const { registry, store, clock } = this.deps;
    const remote = await this.client(rule, 'tag_head');
    const head = await this.ask(rule, 'tag_head', () => remote.resolve(pull.upstream, tag));
    if (!head) {
      // Gone upstream: the cache follows (a cached tag would otherwise be served until its window ends).
      await this.forgetTag(rule, pull, tag);
      throw new RegistryError('MANIFEST_UNKNOWN', `${pull.upstream}:${tag} does not exist on ${rule.upstreamHost}`, { reference: tag });
    }
    const local = await registry.manifests.digestOfTag(pull.repository, tag);
    if (local !== head.digest) {
      const digest = tryParseDigest(head.digest) as Digest;
      let bytes: Buffer;
      let mediaType: string;
      if (await registry.manifests.has(pull.repository, head.digest)) {
        ({ content: bytes, mediaType } = await registry.manifests.get(pull.repository, { kind: 'digest', digest }, []));
      } else {
        const fetched = await this.fetch(rule, pull, digest);
        ({ bytes, mediaType } = fetched);
      }
      await registry.manifests.put(pull.repository, { kind: 'tag', tag }, bytes, mediaType, this.pusher(rule, pull, tag, head.digest), undefined, sparse);
    }
    await store.tags.record({ repository: pull.repository, tag, rule: rule.name, digest: head.digest, checkedAt: clock.now() });
    return { digest: head.digest, changed: local !== head.digest };
  }

  /** Drops the cached tag (the manifest stays, by digest, until evicted or deleted). */
  private async forgetTag(rule: CacheRule, pull: CachedPull, tag: string): Promise<void> {
    const { registry, store } = this.deps;
    await store.tags.forget(pull.repository, tag);
    try {
      await registry.manifests.delete(
        pull.repository,
        { kind: 'tag', tag },
        { actor: { principalId: `proxy:${rule.name}`, principalName: `proxy:${rule.name}` } },
      );
    } catch (err) {
      if (!isRegistryError(err) || err.code !== 'MANIFEST_UNKNOWN') throw err;
    }
  }

  /**
   * Fetches and stores the manifest `digest` unless it is stored by now: the caller's "not here" was
   * read before it joined the flight, and a flight for the same digest may have ended in between.
   */
  private async fetchDigest(rule: CacheRule, pull: CachedPull, digest: Digest): Promise<{ digest: string; changed: boolean }> {
    const { registry } = this.deps;
    if (await registry.manifests.has(pull.repository, digest.value)) return { digest: digest.value, changed: false };
    const fetched = await this.fetch(rule, pull, digest);
    await registry.manifests.put(
      pull.repository,
      { kind: 'digest', digest },
      fetched.bytes,
      fetched.mediaType,
      this.pusher(rule, pull, digest.value, digest.value),
      undefined,
      sparse,
    );
    return { digest: digest.value, changed: true };
  }

  /** The manifest `digest` from the upstream, verified against it (`RemoteRegistry.getManifest`). */
  private async fetch(rule: CacheRule, pull: CachedPull, digest: Digest): Promise<RemoteManifest> {
    const remote = await this.client(rule, 'manifest');
    return this.ask(rule, 'manifest', () => remote.getManifest(pull.upstream, digest.value));
  }

  private async client(rule: CacheRule, operation: 'tag_head' | 'manifest') {
    try {
      return await this.deps.upstreams.client(rule);
    } catch (err) {
      this.deps.metrics.asked(rule.name, operation, this.deps.upstreams.note(rule, err));
      throw err;
    }
  }

  /** Runs one upstream request, counting its outcome and remembering a failure (and its Retry-After). */
  private async ask<T>(rule: CacheRule, operation: 'tag_head' | 'manifest', request: () => Promise<T>): Promise<T> {
    try {
      const result = await request();
      this.deps.metrics.asked(rule.name, operation, 'ok');
      return result;
    } catch (err) {
      this.deps.metrics.asked(rule.name, operation, this.deps.upstreams.note(rule, err));
      throw err;
    }
  }

  private share(key: string, work: () => Promise<{ digest: string; changed: boolean }>): Promise<{ digest: string; changed: boolean }> {
    return this.flights.run(key, work).result;
  }

  /** Who the push history names for cached content: the rule, with where the manifest came from. */
  private pusher(rule: CacheRule, pull: CachedPull, reference: string, digest: string): Pusher {
    return {
      principalId: `proxy:${rule.name}`,
      principalName: `proxy:${rule.name}`,
      provenance: { proxy: { rule: rule.name, upstream: rule.upstreamUrl, repository: pull.upstream, reference, digest } },
    };
  }

  /** Notes the pull for last-pull eviction: at most once per `pullRecordEveryMs` per manifest and process. */
  private async recordPull(rule: CacheRule, repository: string, digest: string): Promise<void> {
    const now = this.deps.clock.now();
    const key = `${repository}@${digest}`;
    const last = this.pulled.get(key);
    if (last !== undefined && now - last < pullRecordEveryMs) return;
    if (this.pulled.size >= maxRememberedPulls) this.pulled.clear();
    this.pulled.set(key, now);
    await this.deps.store.pulls.record(repository, digest, rule.name, now);
  }

  /** Forgets what this process remembers of recorded pulls (after an eviction). */
  forgetPull(repository: string, digest: string): void {
    this.pulled.delete(`${repository}@${digest}`);
  }
}

/** A failure of the upstream (or of reaching it), as opposed to an answer such as "no such tag". */
export function isUpstreamFailure(err: unknown): boolean {
  return isApiError(err) && err.code !== 'UPSTREAM_NOT_FOUND';
}
