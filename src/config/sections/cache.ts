import { z } from 'zod';
import { cacheRuleDefaults, cacheRuleInput, maxCacheRules } from '../../api/cache.js';
import { duration } from '../fields.js';

export const cacheSection = () =>
  z
    .object({
      enabled: z
        .boolean()
        .default(true)
        .describe("Run the cache's background work (eviction) in this process. Pulls through cache rules are served either way."),
      rules: z
        .array(cacheRuleInput)
        .max(maxCacheRules)
        .default([])
        .describe(
          'Cache rules managed by this file (read-only through /api/v1, where further rules can be added). Names, prefixes and mirror hosts are unique across both.',
        ),
      defaults: z
        .object({
          tagFreshnessMs: z
            .number()
            .int()
            .min(0)
            .default(cacheRuleDefaults.tagFreshnessMs)
            .describe('Tag freshness window of rules that set none: a cached tag is re-checked with the upstream (one HEAD) after this long.'),
          staleIfErrorMs: z
            .number()
            .int()
            .min(0)
            .default(cacheRuleDefaults.staleIfErrorMs)
            .describe('Stale-serving limit of rules that set none: how long past its freshness window a tag is still served while the upstream fails.'),
        })
        .strict()
        .default({})
        .describe('Freshness of rules that set none.'),
      upstream: z
        .object({
          requestsPerSecond: z.number().positive().default(50).describe("Requests per second to one rule's upstream, on average (rules may set their own)."),
          concurrency: z.number().int().positive().default(16).describe("Requests in flight to one rule's upstream (rules may set their own)."),
          headersTimeoutMs: duration(
            'How long a request to an upstream may wait for its response headers. Short, because a client is waiting: past it a cached tag is served stale.',
            10_000,
          ),
          bodyTimeoutMs: duration('Longest pause between two chunks of an upstream body before the transfer is abandoned.', 60_000),
          attempts: z
            .number()
            .int()
            .min(1)
            .max(5)
            .default(2)
            .describe(
              'Tries of one upstream request (connection errors, 5xx); a `429` with `Retry-After` is never waited out: the cache serves what it has and says so.',
            ),
        })
        .strict()
        .default({})
        .describe('How the cache talks to upstream registries.'),
      fillWindowBytes: z
        .number()
        .int()
        .min(64 * 1024)
        .default(32 * 1024 * 1024)
        .describe(
          'Most bytes of one blob being fetched that are kept in memory for the clients reading it while it is stored; a client further behind reads from storage once the blob is stored.',
        ),
      rulesRefreshMs: duration('How often each replica re-reads the rules managed through /api/v1 (changes made on this replica apply at once).', 5_000),
      eviction: z
        .object({
          intervalMs: duration('How often each rule with `evictAfterMs` is swept for manifests not pulled within it.', 3600 * 1000),
          leaseMs: duration("How long a replica holds a rule's sweep without a heartbeat.", 5 * 60 * 1000),
        })
        .strict()
        .default({})
        .describe('Last-pull based eviction (docs/cache.md).'),
    })
    .strict()
    .default({})
    .describe('Pull-through cache (docs/cache.md): path prefixes of this registry served from upstream registries, also as a containerd mirror.');
