/**
 * The pull-through cache as one service (`services.cache`), built by `createApp`:
 *
 * - **The registry hook** (`mirrorRepository`, `owner`): which repositories belong to a cache
 *   rule, and which local name a containerd mirror request (`?ns=<upstream host>`) stands for. The
 *   HTTP layer asks these once per request, before access is decided, so a pull through the cache
 *   needs pull on the prefix like any pull.
 * - **Pulls** (`manifest`, `blob`): served from what is cached, fetching from the upstream what is
 *   not (`manifests.ts`, `blobs.ts`), each verified by digest and stored like pushed content (so
 *   GC, webhooks, history and the listings treat it alike).
 * - **Management** (rules, refresh, entries), each change audited with its actor.
 * - **Eviction** in the background (`eviction.ts`), on the lease runner.
 */
import type { Logger } from 'pino';
import type { CacheEntriesView, CacheRefreshInput, CacheRefreshView, CacheRuleInput, CacheRuleUpdate, CacheRuleView } from '../api/cache.js';
import { ApiError } from '../api/errors.js';
import type { Config } from '../config/schema.js';
import { LeaseRunner, newOwnerId } from '../jobs/runner.js';
import type { AuditIndex } from '../metadata/auth-store.js';
import type { CacheMetadata, CacheSweep } from '../metadata/cache-store.js';
import type { ManifestRecord } from '../metadata/store.js';
import type { Metrics } from '../metrics/index.js';
import type { Egress } from '../net/egress.js';
import type { Digest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { isValidRepositoryName, type Reference } from '../oci/names.js';
import type { Registry } from '../registry/index.js';
import type { Actor } from '../shared/actor.js';
import type { Clock } from '../shared/clock.js';
import { isLoopbackHost } from '../shared/loopback.js';
import { CachedBlobs, type BlobAnswer } from './blobs.js';
import { SweepJobs } from './eviction.js';
import { CachedManifests, type CachedPull, type CacheOutcome } from './manifests.js';
import { CacheMetrics } from './metrics.js';
import { localRepository, ruleForMirror, ruleForRepository, upstreamAllowed, type CacheRule } from './rule.js';
import { RuleSet } from './rules.js';
import { Upstreams } from './upstreams.js';
import { auditDetail, ruleView, tagView } from './views.js';
import { operatorSecrets, SecretReferences, type SecretReferenceSettings } from '../sync/secret-refs.js';

export type { BlobAnswer, CacheOutcome };
export type CacheSettings = Config['cache'];

export interface CacheServiceDependencies {
  store: CacheMetadata;
  registry: Registry;
  egress: Egress;
  /** `cache` of the configuration: its rules, defaults, upstream limits and timeouts, fill window, eviction. */
  settings: CacheSettings;
  clock: Clock;
  audit: AuditIndex;
  metrics: Metrics;
  logger: Logger;
  /** Where API-made rules' secret references may point (`secrets` of the configuration). */
  secrets: SecretReferenceSettings;
  env?: NodeJS.ProcessEnv;
}

const maxEntries = 10_000;

export class CacheService {
  private readonly rules: RuleSet;
  private readonly upstreams: Upstreams;
  private readonly apiSecrets: SecretReferences;
  private readonly manifests: CachedManifests;
  private readonly blobs: CachedBlobs;
  private readonly sweeps: LeaseRunner<CacheSweep, number>;

  constructor(private readonly deps: CacheServiceDependencies) {
    const { settings, store, registry, clock, logger } = deps;
    const metrics = new CacheMetrics(deps.metrics);
    this.rules = new RuleSet({
      store: store.rules,
      configured: settings.rules,
      defaults: Object.assign({}, settings.defaults, { requestsPerSecond: settings.upstream.requestsPerSecond, concurrency: settings.upstream.concurrency }),
      refreshMs: settings.rulesRefreshMs,
      clock,
      logger,
    });
    this.apiSecrets = new SecretReferences(deps.secrets, logger, deps.env);
    this.upstreams = new Upstreams(deps.egress, settings.upstream, clock, logger, this.apiSecrets, operatorSecrets(deps.env));
    this.manifests = new CachedManifests({ registry, store, upstreams: this.upstreams, metrics, clock });
    this.blobs = new CachedBlobs({ registry, upstreams: this.upstreams, metrics, logger, windowBytes: settings.fillWindowBytes });
    const jobs = new SweepJobs({
      store,
      registry,
      rules: this.rules,
      manifests: this.manifests,
      metrics,
      clock,
      logger,
      intervalMs: settings.eviction.intervalMs,
    });
    this.sweeps = new LeaseRunner(jobs, {
      concurrency: 1,
      leaseMs: settings.eviction.leaseMs,
      pollMs: Math.min(settings.eviction.intervalMs, 60_000),
      onStop: 'abort',
      clock,
      logger,
      owner: newOwnerId(),
    });
  }

  start(): void {
    if (this.deps.settings.enabled) this.sweeps.start();
  }

  async stop(): Promise<void> {
    this.blobs.stop();
    await this.sweeps.stop();
  }

  // -------------------------------------------------------------------------------------------
  // The registry hook

  /**
   * The local repository a containerd mirror request stands for: `name` under the prefix of the
   * rule that mirrors `ns` (the upstream host containerd names in `?ns=`); undefined when no rule
   * mirrors that host (the request is then an ordinary one).
   */
  async mirrorRepository(ns: string, name: string): Promise<string | undefined> {
    const rule = ruleForMirror(await this.rules.all(), ns);
    if (!rule) return undefined;
    const local = localRepository(rule, name);
    return isValidRepositoryName(local) ? local : undefined;
  }

  /** The rule owning `repository` (its name and upstream), or undefined when it is an ordinary repository. */
  async owner(repository: string): Promise<{ rule: string; upstream: string } | undefined> {
    const found = ruleForRepository(await this.rules.all(), repository);
    return found && { rule: found.rule.name, upstream: found.rule.upstreamUrl };
  }

  // -------------------------------------------------------------------------------------------
  // Pulls

  /** A manifest pull under a cache prefix (GET or HEAD); `accept` as for any manifest GET. */
  async manifest(repository: string, reference: Reference, accept: readonly string[]): Promise<{ record: ManifestRecord; outcome: CacheOutcome }> {
    const { rule, pull } = await this.pullOf(repository);
    return this.manifests.get(rule, pull, reference, accept);
  }

  /** A blob pull under a cache prefix: stored, answered from the upstream (HEAD), or read from the fetch in flight. */
  async blob(repository: string, digest: Digest, head: boolean): Promise<BlobAnswer> {
    const { rule, pull } = await this.pullOf(repository);
    return this.blobs.get(rule, pull, digest, head);
  }

  private async pullOf(repository: string): Promise<{ rule: CacheRule; pull: CachedPull }> {
    const found = ruleForRepository(await this.rules.all(), repository);
    if (!found) throw new RegistryError('NAME_UNKNOWN', undefined, { name: repository });
    const { rule, upstream } = found;
    if (!upstreamAllowed(rule, upstream)) {
      throw new RegistryError('DENIED', `${upstream} is not in the repositories cache rule ${rule.name} may fetch from ${rule.upstreamHost}`, {
        rule: rule.name,
        repository: upstream,
      });
    }
    return { rule, pull: { repository, upstream } };
  }

  // -------------------------------------------------------------------------------------------
  // Management (owner endpoints; each change audited)

  async listRules(): Promise<CacheRuleView[]> {
    return (await this.rules.all()).map((rule) => ruleView(rule, this.upstreams.state(rule.name)));
  }

  async getRule(name: string): Promise<CacheRuleView> {
    const rule = await this.rules.named(name);
    return ruleView(rule, this.upstreams.state(rule.name));
  }

  async createRule(actor: Actor, input: CacheRuleInput): Promise<CacheRuleView> {
    const rule = await this.rules.create(input, async (r) => {
      this.apiSecrets.check(r.credentials);
      await this.assertUpstreamAllowed(r.upstreamUrl, r.credentials.kind);
    });
    await this.audit(actor, 'admin.cache_rule.created', auditDetail(rule));
    return ruleView(rule, this.upstreams.state(rule.name));
  }

  async updateRule(actor: Actor, name: string, update: CacheRuleUpdate): Promise<CacheRuleView> {
    const { after } = await this.rules.update(name, update, async (_before, r) => {
      if (update.upstream !== undefined) {
        this.apiSecrets.check(r.credentials);
        await this.assertUpstreamAllowed(r.upstreamUrl, r.credentials.kind);
      }
    });
    this.upstreams.forget(name);
    await this.audit(actor, 'admin.cache_rule.updated', Object.assign({}, auditDetail(after), { changed: Object.keys(update) }));
    return ruleView(after, this.upstreams.state(name));
  }

  /** Deletes an API rule. What it cached stays, as ordinary repositories (delete or GC them like any). */
  async deleteRule(actor: Actor, name: string): Promise<void> {
    const rule = await this.rules.delete(name);
    this.upstreams.forget(name);
    await this.audit(actor, 'admin.cache_rule.deleted', { rule: rule.name, prefix: rule.prefix });
  }

  /**
   * A refresh: with a tag, asks the upstream now and moves the cached tag (the answer says from
   * where to where); with a repository or nothing, marks the cached tags of the repository or the
   * rule for a check on their next pull.
   */
  async refresh(actor: Actor, name: string, input: CacheRefreshInput): Promise<CacheRefreshView> {
    const rule = await this.rules.named(name);
    const repository = input.repository === undefined ? undefined : localRepository(rule, input.repository);
    if (repository !== undefined && !isValidRepositoryName(repository))
      throw new ApiError('INVALID_REQUEST', `repository: ${rule.prefix}/${input.repository} is too long`);
    if (input.repository !== undefined && !upstreamAllowed(rule, input.repository)) {
      throw new ApiError('INVALID_REQUEST', `repository: ${input.repository} is not in the repositories of cache rule ${rule.name}`);
    }
    let checked: CacheRefreshView['checked'] = null;
    let expired: number;
    if (input.tag !== undefined && repository !== undefined && input.repository !== undefined) {
      const previous =
        (await this.deps.store.tags.get(repository, input.tag))?.digest ?? (await this.deps.registry.manifests.digestOfTag(repository, input.tag)) ?? null;
      const result = await this.manifests.check(rule, { repository, upstream: input.repository }, input.tag).catch((err: unknown) => {
        if (err instanceof RegistryError && err.code === 'MANIFEST_UNKNOWN') return undefined;
        throw err;
      });
      checked = { previous, current: result?.digest ?? null, changed: (result?.digest ?? null) !== previous };
      expired = 0;
    } else {
      expired = await this.deps.store.tags.expire(rule.name, { repository });
    }
    await this.audit(actor, 'admin.cache_rule.refreshed', { rule: rule.name, repository: input.repository ?? null, tag: input.tag ?? null, expired, checked });
    return { rule: rule.name, repository: input.repository ?? null, tag: input.tag ?? null, expired, checked };
  }

  /** The rule's cached tags with their freshness, optionally of one upstream repository. */
  async entries(name: string, filter: { repository?: string | undefined; limit: number }): Promise<CacheEntriesView> {
    const rule = await this.rules.named(name);
    const repository = filter.repository === undefined ? undefined : localRepository(rule, filter.repository);
    const tags = await this.deps.store.tags.list(rule.name, { repository, limit: Math.min(filter.limit, maxEntries) });
    return { rule: rule.name, tags: tags.map((tag) => tagView(rule, tag)) };
  }

  private async assertUpstreamAllowed(url: string, credentials: string): Promise<void> {
    const parsed = new URL(url);
    if (parsed.protocol === 'http:' && credentials !== 'anonymous' && !isLoopbackHost(parsed.host)) {
      throw new ApiError(
        'INVALID_REQUEST',
        'upstream.url: credentials are never sent over plain HTTP; use https:// (plain HTTP only for anonymous upstreams or loopback)',
      );
    }
    try {
      await this.deps.egress.check(url);
    } catch (err) {
      throw new ApiError('EGRESS_REFUSED', `upstream.url: ${(err as Error).message}`);
    }
  }

  private async audit(actor: Actor, event: string, detail: Record<string, unknown>): Promise<void> {
    await this.deps.audit.append({ at: this.deps.clock.now(), event, ...actor, detail });
  }
}
