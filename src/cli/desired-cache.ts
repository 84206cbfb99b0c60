/**
 * The `cache:` section of `berth apply`'s file: the pull-through cache rules managed through
 * /api/v1 (docs/cache.md), planned like the principals (desired-state.ts), without I/O.
 *
 * - Every rule the file lists is created, or changed to what the file says. Fields the file leaves
 *   out are not managed (as `description` for principals), except the lists and the upstream,
 *   which the file always sets.
 * - Rules from the server's configuration file (`managedBy: config`) are never changed: listing one
 *   is refused (change it where it lives).
 * - With `prune: true`, API rules the file does not list are deleted (what they cached stays).
 * - The file never holds secrets: upstream passwords come from `passwordFile` or `passwordEnv` on
 *   the server, or the rule is keyless (`oidc`).
 * Applying the plan and then planning again yields no changes.
 */
import { z } from 'zod';
import { cacheRuleInput, maxCacheRules, type CacheRuleInput, type CacheRuleView } from '../api/cache.js';
import { upstreamCredentialsView } from '../api/source-credentials.js';

/** The file's `cache:` section. */
export const cacheFileSection = z
  .object({
    rules: z
      .array(cacheRuleInput)
      .max(maxCacheRules)
      .superRefine((rules, ctx) => {
        rules.forEach((rule, i) => {
          const c = rule.upstream.credentials;
          if (c.kind === 'basic' && c.password !== undefined) {
            ctx.addIssue({
              code: z.ZodIssueCode.custom,
              path: [i, 'upstream', 'credentials', 'password'],
              message: 'the file never holds secrets: give passwordFile or passwordEnv (read on the server), or use oidc credentials',
            });
          }
        });
      }),
  })
  .strict();

export type CacheChange =
  | { op: 'cache-create'; rule: CacheRuleInput }
  | { op: 'cache-update'; name: string; body: Record<string, unknown>; diffs: string[] }
  | { op: 'cache-delete'; name: string };

/** The changes that make the server's API rules match the file's; `problems` when it cannot. */
export function planCache(
  desired: readonly CacheRuleInput[],
  observed: readonly CacheRuleView[],
  prune: boolean,
): { changes: CacheChange[]; notes: string[]; problems: string[] } {
  const byName = new Map(observed.map((r) => [r.name, r]));
  const changes: CacheChange[] = [];
  const notes: string[] = [];
  const problems: string[] = [];
  const names = new Set<string>();
  for (const want of desired) {
    if (names.has(want.name)) problems.push(`the cache rule ${want.name} is declared twice`);
    names.add(want.name);
    const have = byName.get(want.name);
    if (!have) {
      changes.push({ op: 'cache-create', rule: want });
      continue;
    }
    if (have.managedBy === 'config') {
      problems.push(`the cache rule ${want.name} comes from the server's configuration file (cache.rules): change it there, or drop it from this file`);
      continue;
    }
    const { body, diffs } = ruleDiff(want, have);
    if (diffs.length > 0) changes.push({ op: 'cache-update', name: want.name, body, diffs });
  }
  if (prune) {
    for (const have of observed) {
      if (names.has(have.name)) continue;
      if (have.managedBy === 'config') notes.push(`kept cache rule ${have.name}: the server's configuration file manages it`);
      else changes.push({ op: 'cache-delete', name: have.name });
    }
  }
  return { changes, notes, problems };
}

/** The PATCH that makes `have` what `want` says, and what it changes in words. */
function ruleDiff(want: CacheRuleInput, have: CacheRuleView): { body: Record<string, unknown>; diffs: string[] } {
  const body: Record<string, unknown> = {};
  const diffs: string[] = [];
  const differ = (field: string, from: unknown, to: unknown, value: unknown = to) => {
    if (JSON.stringify(from) === JSON.stringify(to)) return;
    body[field] = value;
    diffs.push(`${field} ${show(from)} -> ${show(to)}`);
  };
  differ('prefix', have.prefix, want.prefix);
  const credentials = upstreamCredentialsView(want.upstream.credentials);
  if (have.upstream.url !== want.upstream.url || JSON.stringify(have.upstream.credentials) !== JSON.stringify(credentials)) {
    body['upstream'] = want.upstream;
    if (have.upstream.url !== want.upstream.url) diffs.push(`upstream ${have.upstream.url} -> ${want.upstream.url}`);
    if (JSON.stringify(have.upstream.credentials) !== JSON.stringify(credentials))
      diffs.push(`credentials ${describe(have.upstream.credentials)} -> ${describe(credentials)}`);
  }
  differ('repositories', have.repositories, want.repositories);
  if (want.mirrorOf !== undefined) differ('mirrorOf', have.mirrorOf, want.mirrorOf);
  if (want.tagFreshnessMs !== undefined) differ('tagFreshnessMs', have.tagFreshnessMs, want.tagFreshnessMs);
  if (want.staleIfErrorMs !== undefined) differ('staleIfErrorMs', have.staleIfErrorMs, want.staleIfErrorMs);
  if (want.evictAfterMs !== undefined) differ('evictAfterMs', have.evictAfterMs, want.evictAfterMs);
  const limits: Record<string, number> = {};
  if (want.limits.requestsPerSecond !== undefined && want.limits.requestsPerSecond !== have.limits.requestsPerSecond) {
    limits['requestsPerSecond'] = want.limits.requestsPerSecond;
  }
  if (want.limits.concurrency !== undefined && want.limits.concurrency !== have.limits.concurrency) limits['concurrency'] = want.limits.concurrency;
  if (Object.keys(limits).length > 0) {
    body['limits'] = limits;
    diffs.push(`limits ${show(limits)}`);
  }
  return { body, diffs };
}

function describe(c: { kind: string; username?: string; passwordSource?: string; clientId?: string }): string {
  if (c.kind === 'basic') return `basic ${c.username} (${c.passwordSource})`;
  if (c.kind === 'oidc') return `oidc ${c.clientId}`;
  return c.kind;
}

function show(value: unknown): string {
  return value === null ? 'none' : Array.isArray(value) ? `[${value.join(', ')}]` : typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** One line per change, in the style of the principals' plan. */
export function formatCacheChange(change: CacheChange): string {
  switch (change.op) {
    case 'cache-create':
      return `+ create cache rule ${change.rule.name}: ${change.rule.prefix}/ <- ${change.rule.upstream.url} (${change.rule.repositories.join(', ')})`;
    case 'cache-update':
      return `~ cache rule ${change.name}: ${change.diffs.join(', ')}`;
    case 'cache-delete':
      return `- delete cache rule ${change.name} (what it cached stays)`;
  }
}
