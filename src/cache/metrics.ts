/**
 * The cache's metric families (`App.metrics`). Labels are closed sets plus the rule name (rules are
 * chosen by the operator, at most `maxCacheRules`); never a repository, tag or digest.
 */
import type { Counter, Gauge } from 'prom-client';
import type { Metrics } from '../metrics/index.js';
import type { UpstreamOutcome } from './upstreams.js';

export type CacheState = 'hit' | 'miss' | 'stale';
export type Served = CacheState | 'refused' | 'error';

export class CacheMetrics {
  readonly requests: Counter<'rule' | 'kind' | 'result'>;
  readonly upstream: Counter<'rule' | 'operation' | 'outcome'>;
  readonly upstreamBytes: Counter<'rule'>;
  readonly joins: Counter<'rule'>;
  readonly fills: Gauge;
  readonly evictions: Counter<'rule'>;

  constructor(metrics: Metrics) {
    this.requests = metrics.counter(
      'berth_cache_requests_total',
      'Pulls through cache rules, by what they were served from: hit (cache), miss (fetched from the upstream), stale (cache, upstream failing), refused, error.',
      ['rule', 'kind', 'result'],
    );
    this.upstream = metrics.counter(
      'berth_cache_upstream_requests_total',
      'Requests to upstream registries by operation (tag_head, manifest, blob_head, blob) and outcome (ok, not_found, rate_limited, unreachable, denied, invalid, egress, credentials).',
      ['rule', 'operation', 'outcome'],
    );
    this.upstreamBytes = metrics.counter('berth_cache_upstream_bytes_total', 'Blob bytes fetched from upstream registries and stored.', ['rule']);
    this.joins = metrics.counter('berth_cache_fill_joins_total', 'Blob pulls that shared a fetch already in flight for the same blob.', ['rule']);
    this.fills = metrics.gauge('berth_cache_fills_in_flight', 'Blobs being fetched from upstreams right now.');
    this.evictions = metrics.counter('berth_cache_evictions_total', 'Cached manifests evicted because they were not pulled within the rule’s evictAfterMs.', [
      'rule',
    ]);
  }

  served(rule: string, kind: 'manifest' | 'blob', result: Served): void {
    this.requests.inc({ rule, kind, result });
  }

  asked(rule: string, operation: 'tag_head' | 'manifest' | 'blob_head' | 'blob', outcome: UpstreamOutcome): void {
    this.upstream.inc({ rule, operation, outcome });
  }
}
