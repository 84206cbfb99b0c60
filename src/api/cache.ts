/**
 * The wire contract of the pull-through cache (`/api/v1/cache/rules…`, `berth cache`, and the
 * `cache.rules` of the configuration file, which take the same shape): a rule maps a path prefix
 * of this registry to an upstream registry ([cache.md](../../docs/cache.md)).
 *
 * Views never carry passwords, only where a password comes from.
 */
import { z } from 'zod';
import { isValidRepositoryName, isValidTag } from '../oci/names.js';
import { isRepositoryPattern } from '../shared/glob.js';
import { upstreamCredentialsInput, type UpstreamCredentialsView } from './source-credentials.js';

export const cacheRuleName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'a rule name is 1-63 lower-case letters, digits, ., _ or -, starting with a letter or digit')
  .describe('The rule name (1-63 lower-case letters, digits, `.`, `_` or `-`).');

/**
 * The most rules one registry serves (config and API together). A bound, not a product limit: the
 * rules are matched on every pull (a prefix comparison each), checked against each other when
 * read, and name a label of the cache's metrics.
 */
export const maxCacheRules = 1000;

const prefix = z
  .string()
  .max(200)
  .transform((p) => p.replace(/\/+$/, ''))
  .refine((p) => p !== '' && isValidRepositoryName(p), 'the prefix is a repository path such as hub or mirrors/ghcr')
  .describe('The path prefix in this registry that belongs to the cache: `hub` serves the upstream `library/alpine` as `hub/library/alpine`.');

const upstreamUrl = z
  .string()
  .max(2048)
  .refine((text) => {
    try {
      const url = new URL(text);
      return (
        (url.protocol === 'https:' || url.protocol === 'http:') &&
        url.username === '' &&
        url.password === '' &&
        url.search === '' &&
        url.hash === '' &&
        (url.pathname === '/' || url.pathname === '')
      );
    } catch {
      return false;
    }
  }, 'the upstream is the http(s) URL of a registry, without credentials, path, query or fragment (e.g. https://registry-1.docker.io)')
  .transform((text) => new URL(text).origin)
  .describe('The upstream registry, e.g. `https://registry-1.docker.io` or `https://ghcr.io`.');

/** `host` or `host:port`, as containerd writes it in `?ns=` (lower-case). */
const mirrorHost = z
  .string()
  .max(260)
  .transform((h) => h.toLowerCase())
  .refine(
    (h) => /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::\d{1,5})?$/.test(h),
    'a registry host such as docker.io or ghcr.io:443',
  );

const repositoryGlob = z.string().superRefine((pattern, ctx) => {
  if (!isRepositoryPattern(pattern)) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: `${JSON.stringify(pattern.slice(0, 100))} is not a repository glob (lower-case name components, * within one, ** across any depth)`,
    });
  }
});

const week = 7 * 24 * 3600 * 1000;
const year = 365 * 24 * 3600 * 1000;

const freshness = z
  .number()
  .int()
  .min(0)
  .max(year)
  .describe('How long a cached tag is served without asking the upstream (a HEAD) whether it moved; 0 asks on every pull. Digests never expire.');
const staleIfError = z
  .number()
  .int()
  .min(0)
  .max(10 * year)
  .describe(
    'How long after its freshness window ends a cached tag is still served (marked stale) while the upstream is down, refuses or rate-limits; 0 never serves a stale tag.',
  );
const evictAfter = z
  .number()
  .int()
  .positive()
  .max(10 * year)
  .nullable()
  .describe('Evict cached manifests not pulled for this long (their blobs go with the next GC); null keeps them.');

const limits = z
  .object({
    requestsPerSecond: z
      .number()
      .positive()
      .max(10_000)
      .optional()
      .describe('Requests per second to the upstream (default `cache.upstream.requestsPerSecond`).'),
    concurrency: z.number().int().positive().max(256).optional().describe('Requests in flight to the upstream (default `cache.upstream.concurrency`).'),
  })
  .strict();

/** POST /cache/rules, and each entry of `cache.rules` in the configuration file. */
export const cacheRuleInput = z
  .object({
    name: cacheRuleName,
    prefix,
    upstream: z
      .object({ url: upstreamUrl, credentials: upstreamCredentialsInput.default({ kind: 'anonymous' }) })
      .strict()
      .describe('Where the cache fetches from, and how it logs in.'),
    mirrorOf: z
      .array(mirrorHost)
      .max(20)
      .optional()
      .describe(
        "Registry hosts this rule answers for as a containerd mirror (`?ns=<host>`, no image renames). Unset: the upstream's host (and `docker.io` for registry-1.docker.io); `[]`: none. A host is mirrored by one rule at most.",
      ),
    repositories: z
      .array(repositoryGlob)
      .min(1, 'list at least one repository glob (** for all)')
      .max(100)
      .default(['**'])
      .describe('Upstream repositories the cache may fetch (globs; `**` for all). Others are refused.'),
    tagFreshnessMs: freshness.optional(),
    staleIfErrorMs: staleIfError.optional(),
    evictAfterMs: evictAfter.optional(),
    limits: limits.default({}).describe('Per-upstream request limits.'),
  })
  .strict()
  .describe('A pull-through cache rule: a prefix of this registry served from an upstream registry.');

/** PATCH /cache/rules/{rule}: every field optional; `limits` is merged, lists are replaced. */
export const cacheRuleUpdate = z
  .object({
    prefix: prefix.optional(),
    upstream: z
      .object({ url: upstreamUrl.optional(), credentials: upstreamCredentialsInput.optional() })
      .strict()
      .optional()
      .describe('The upstream URL and/or credentials.'),
    mirrorOf: z.array(mirrorHost).max(20).nullable().optional().describe('Replaces the mirror hosts; null: the upstream’s host again.'),
    repositories: z.array(repositoryGlob).min(1).max(100).optional().describe('Replaces the allow-list.'),
    tagFreshnessMs: freshness.nullable().optional().describe('The tag freshness window; null: the configured default.'),
    staleIfErrorMs: staleIfError.nullable().optional().describe('The stale-serving limit; null: the configured default.'),
    evictAfterMs: evictAfter.optional(),
    limits: limits.optional().describe('Merged into the rule’s limits.'),
  })
  .strict()
  .describe('A change to a cache rule.');

/** POST /cache/rules/{rule}/refresh: one tag is checked now; a repository or the whole rule is marked for re-checking. */
export const cacheRefreshInput = z
  .object({
    repository: z.string().refine(isValidRepositoryName, 'not a valid repository name').optional().describe('The upstream repository (e.g. library/alpine).'),
    tag: z.string().refine(isValidTag, 'not a valid tag').optional().describe('One tag of the repository: checked with the upstream at once.'),
  })
  .strict()
  .refine((b) => b.tag === undefined || b.repository !== undefined, 'a tag needs its repository')
  .describe('What to refresh: one tag (checked now), one repository or the whole rule (its tags are re-checked on their next pull).');

export type CacheRuleInput = z.output<typeof cacheRuleInput>;
export type CacheRuleUpdate = z.output<typeof cacheRuleUpdate>;
export type CacheRefreshInput = z.output<typeof cacheRefreshInput>;

export const cacheRuleDefaults = { tagFreshnessMs: 10 * 60 * 1000, staleIfErrorMs: week } as const;

export interface CacheRuleView {
  name: string;
  /** `config`: from the configuration file (read-only here); `api`: managed through /api/v1. */
  managedBy: 'config' | 'api';
  prefix: string;
  upstream: { url: string; credentials: UpstreamCredentialsView };
  /** The effective mirror hosts (`?ns=`). */
  mirrorOf: string[];
  repositories: string[];
  /** Effective values (the rule's, else the configured defaults). */
  tagFreshnessMs: number;
  staleIfErrorMs: number;
  evictAfterMs: number | null;
  limits: { requestsPerSecond: number; concurrency: number };
  createdAt: string | null;
  updatedAt: string | null;
  state: {
    /** The upstream asked to wait (429/503 Retry-After) until then; tags are served from the cache meanwhile. */
    upstreamBlockedUntil: string | null;
    lastUpstreamError: string | null;
    lastUpstreamErrorAt: string | null;
  };
}

export interface CacheTagView {
  /** The repository here (prefix + upstream repository) and upstream. */
  repository: string;
  upstreamRepository: string;
  tag: string;
  digest: string;
  /** When the upstream last confirmed the tag. */
  checkedAt: string;
  /** Until when it is served without asking, and until when it may be served stale. */
  freshUntil: string;
  staleUntil: string;
}

export interface CacheEntriesView {
  rule: string;
  tags: CacheTagView[];
}

export interface CacheRefreshView {
  rule: string;
  repository: string | null;
  tag: string | null;
  /** Cached tags marked for a check on their next pull. */
  expired: number;
  /** For one tag: what it pointed at before and after the check (null: not cached / gone upstream). */
  checked: { previous: string | null; current: string | null; changed: boolean } | null;
}
