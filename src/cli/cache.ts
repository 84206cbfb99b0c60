/**
 * `berth cache …`: pull-through cache rules of a running registry (owners only), refreshes and the
 * cached tags. Talks to /api/v1/cache as the user `berth login` saved, or `--username` +
 * `--password-stdin`, like `berth sync`. Tables for people, the API's JSON with `--json`.
 */
import type { CacheEntriesView, CacheRefreshView, CacheRuleView } from '../api/cache.js';
import { urls } from '../api/urls.js';
import { isValidRepositoryName, isValidTag } from '../oci/names.js';
import { AdminError, apiCall, connectOwner, type ConnectionOptions, type Session } from './admin-client.js';
import { print, printJson, table, type CommandOptions } from './admin.js';

export class CacheClient {
  constructor(private readonly session: Session & { accessToken: string }) {}

  list(): Promise<{ rules: CacheRuleView[] }> {
    return this.call('GET', urls.api.cacheRules());
  }

  create(body: Record<string, unknown>): Promise<CacheRuleView> {
    return this.call('POST', urls.api.cacheRules(), body);
  }

  get(name: string): Promise<CacheRuleView> {
    return this.call('GET', urls.api.cacheRule(name));
  }

  update(name: string, body: Record<string, unknown>): Promise<CacheRuleView> {
    return this.call('PATCH', urls.api.cacheRule(name), body);
  }

  async remove(name: string): Promise<void> {
    await this.call('DELETE', urls.api.cacheRule(name));
  }

  refresh(name: string, body: { repository?: string; tag?: string }): Promise<CacheRefreshView> {
    return this.call('POST', urls.api.cacheRefresh(name), body);
  }

  entries(name: string, query: { repository?: string | undefined; limit?: number | undefined }): Promise<CacheEntriesView> {
    return this.call('GET', urls.api.cacheEntries(name, query));
  }

  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return apiCall(this.session, method, path, body, { ownerOnly: true });
  }
}

export async function connectCache(options: ConnectionOptions): Promise<CacheClient> {
  return new CacheClient(await connectOwner(options));
}

export interface CacheRuleOptions {
  prefix?: string;
  upstream?: string;
  upstreamUsername?: string;
  upstreamPasswordFile?: string;
  upstreamPasswordEnv?: string;
  upstreamPasswordStdin?: boolean;
  oidcClientId?: string;
  oidcTokenFile?: string;
  anonymous?: boolean;
  mirrorOf?: string[];
  repository?: string[];
  freshness?: string;
  staleIfError?: string;
  evictAfter?: string;
  /** `--no-evict` (update only) sets it false. */
  evict?: boolean;
  defaultFreshness?: boolean;
  defaultStaleIfError?: boolean;
  rps?: number;
  concurrency?: number;
}

/** `0`, `30s`, `10m`, `1h`, `7d`, or milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) throw new AdminError(`invalid duration ${JSON.stringify(text)}: give one like 0, 30s, 10m, 1h or 7d`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(match[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}

async function credentialsFrom(options: CacheRuleOptions, readStdin: () => Promise<string>): Promise<Record<string, unknown> | undefined> {
  const basic = options.upstreamUsername !== undefined;
  const oidc = options.oidcClientId !== undefined || options.oidcTokenFile !== undefined;
  if ([basic, oidc, options.anonymous === true].filter(Boolean).length > 1) {
    throw new AdminError('give one kind of upstream credentials: --upstream-username (basic), --oidc-client-id/--oidc-token-file, or --anonymous');
  }
  if (options.anonymous) return { kind: 'anonymous' };
  if (oidc) {
    if (!options.oidcClientId || !options.oidcTokenFile) throw new AdminError('--oidc-client-id and --oidc-token-file go together');
    return { kind: 'oidc', clientId: options.oidcClientId, tokenFile: options.oidcTokenFile };
  }
  const sources = [options.upstreamPasswordFile, options.upstreamPasswordEnv, options.upstreamPasswordStdin ? 'stdin' : undefined].filter(
    (v) => v !== undefined,
  );
  if (!basic) {
    if (sources.length > 0) throw new AdminError('an upstream password needs --upstream-username');
    return undefined;
  }
  if (sources.length !== 1)
    throw new AdminError('--upstream-username needs one of --upstream-password-file, --upstream-password-env or --upstream-password-stdin');
  if (options.upstreamPasswordFile) return { kind: 'basic', username: options.upstreamUsername, passwordFile: options.upstreamPasswordFile };
  if (options.upstreamPasswordEnv) return { kind: 'basic', username: options.upstreamUsername, passwordEnv: options.upstreamPasswordEnv };
  const password = (await readStdin()).replace(/\r?\n$/, '');
  if (!password) throw new AdminError('no upstream password on standard input (--upstream-password-stdin)');
  return { kind: 'basic', username: options.upstreamUsername, password };
}

function limitsFrom(options: CacheRuleOptions): Record<string, number> | undefined {
  const limits: Record<string, number> = {};
  if (options.rps !== undefined) limits['requestsPerSecond'] = options.rps;
  if (options.concurrency !== undefined) limits['concurrency'] = options.concurrency;
  return Object.keys(limits).length > 0 ? limits : undefined;
}

/** The POST body of `berth cache rule create`. */
export async function createBody(name: string, options: CacheRuleOptions, readStdin: () => Promise<string> = stdin): Promise<Record<string, unknown>> {
  if (!options.prefix) throw new AdminError('--prefix PATH is required (the path in this registry the cache owns, e.g. hub)');
  if (!options.upstream) throw new AdminError('--upstream URL is required (e.g. https://registry-1.docker.io)');
  const credentials = (await credentialsFrom(options, readStdin)) ?? { kind: 'anonymous' };
  const limits = limitsFrom(options);
  return {
    name,
    prefix: options.prefix,
    upstream: { url: options.upstream, credentials },
    ...(options.mirrorOf ? { mirrorOf: options.mirrorOf } : {}),
    ...(options.repository ? { repositories: options.repository } : {}),
    ...(options.freshness !== undefined ? { tagFreshnessMs: parseDuration(options.freshness) } : {}),
    ...(options.staleIfError !== undefined ? { staleIfErrorMs: parseDuration(options.staleIfError) } : {}),
    ...(options.evictAfter !== undefined ? { evictAfterMs: positiveDuration(options.evictAfter, '--evict-after') } : {}),
    ...(limits ? { limits } : {}),
  };
}

/** The PATCH body of `berth cache rule update`: only what the flags name. */
export async function updateBody(options: CacheRuleOptions, readStdin: () => Promise<string> = stdin): Promise<Record<string, unknown>> {
  const body: Record<string, unknown> = {};
  const credentials = await credentialsFrom(options, readStdin);
  if (options.upstream !== undefined || credentials !== undefined) {
    body['upstream'] = { ...(options.upstream !== undefined ? { url: options.upstream } : {}), ...(credentials ? { credentials } : {}) };
  }
  if (options.prefix !== undefined) body['prefix'] = options.prefix;
  if (options.mirrorOf) body['mirrorOf'] = options.mirrorOf;
  if (options.repository) body['repositories'] = options.repository;
  if (options.freshness !== undefined && options.defaultFreshness) throw new AdminError('--freshness and --default-freshness contradict each other');
  if (options.freshness !== undefined) body['tagFreshnessMs'] = parseDuration(options.freshness);
  if (options.defaultFreshness) body['tagFreshnessMs'] = null;
  if (options.staleIfError !== undefined && options.defaultStaleIfError)
    throw new AdminError('--stale-if-error and --default-stale-if-error contradict each other');
  if (options.staleIfError !== undefined) body['staleIfErrorMs'] = parseDuration(options.staleIfError);
  if (options.defaultStaleIfError) body['staleIfErrorMs'] = null;
  if (options.evictAfter !== undefined && options.evict === false) throw new AdminError('--evict-after and --no-evict contradict each other');
  if (options.evictAfter !== undefined) body['evictAfterMs'] = positiveDuration(options.evictAfter, '--evict-after');
  if (options.evict === false) body['evictAfterMs'] = null;
  const limits = limitsFrom(options);
  if (limits) body['limits'] = limits;
  if (Object.keys(body).length === 0) throw new AdminError('nothing to change: give the flags to update (see berth cache rule update --help)');
  return body;
}

function positiveDuration(text: string, flag: string): number {
  const ms = parseDuration(text);
  if (ms <= 0) throw new AdminError(`${flag} must be positive`);
  return ms;
}

/** `repository[:tag]` as the upstream names it. */
export function parseImage(text: string): { repository: string; tag?: string } {
  const colon = text.lastIndexOf(':');
  const slash = text.lastIndexOf('/');
  const repository = colon > slash ? text.slice(0, colon) : text;
  const tag = colon > slash ? text.slice(colon + 1) : undefined;
  if (!isValidRepositoryName(repository)) throw new AdminError(`${JSON.stringify(repository)} is not a repository name (e.g. library/alpine)`);
  if (tag !== undefined && !isValidTag(tag)) throw new AdminError(`${JSON.stringify(tag)} is not a tag`);
  return tag === undefined ? { repository } : { repository, tag };
}

// ---------------------------------------------------------------------------------------------
// Commands

export async function ruleCreate(name: string, options: CommandOptions & CacheRuleOptions): Promise<void> {
  checkStdin(options);
  const body = await createBody(name, options);
  const created = await (await connectCache(options)).create(body);
  if (options.json) return printJson(created);
  print(`created cache rule ${created.name}: ${summary(created)}`);
}

export async function ruleUpdate(name: string, options: CommandOptions & CacheRuleOptions): Promise<void> {
  checkStdin(options);
  const body = await updateBody(options);
  const updated = await (await connectCache(options)).update(name, body);
  if (options.json) return printJson(updated);
  print(`updated cache rule ${updated.name}: ${summary(updated)}`);
}

export async function ruleList(options: CommandOptions): Promise<void> {
  const { rules } = await (await connectCache(options)).list();
  if (options.json) return printJson({ rules });
  if (rules.length === 0) return print('no cache rules');
  print(
    table([
      ['NAME', 'PREFIX', 'UPSTREAM', 'MIRROR OF', 'REPOSITORIES', 'FRESHNESS', 'STALE IF ERROR', 'EVICT AFTER', 'FROM', 'UPSTREAM STATE'],
      ...rules.map((r) => [
        r.name,
        `${r.prefix}/`,
        r.upstream.url,
        r.mirrorOf.join(','),
        r.repositories.join(','),
        duration(r.tagFreshnessMs),
        duration(r.staleIfErrorMs),
        r.evictAfterMs === null ? '-' : duration(r.evictAfterMs),
        r.managedBy,
        upstreamState(r),
      ]),
    ]),
  );
}

export async function ruleShow(name: string, options: CommandOptions): Promise<void> {
  const rule = await (await connectCache(options)).get(name);
  if (options.json) return printJson(rule);
  const c = rule.upstream.credentials;
  const login =
    c.kind === 'anonymous'
      ? 'anonymous'
      : c.kind === 'oidc'
        ? `oidc as ${c.clientId} (token file ${c.tokenFile})`
        : `basic as ${c.username} (password ${c.passwordSource === 'file' ? `in ${c.passwordFile}` : c.passwordSource === 'env' ? `in $${c.passwordEnv}` : 'stored'})`;
  print(`cache rule ${rule.name} (${rule.managedBy === 'config' ? 'from the configuration file' : 'managed through the API'})`);
  print(`  prefix:         ${rule.prefix}/`);
  print(`  upstream:       ${rule.upstream.url} (${login})`);
  print(`  mirror of:      ${rule.mirrorOf.join(', ')}`);
  print(`  repositories:   ${rule.repositories.join(', ')}`);
  print(`  tag freshness:  ${duration(rule.tagFreshnessMs)}; stale if the upstream fails: ${duration(rule.staleIfErrorMs)} more`);
  print(`  eviction:       ${rule.evictAfterMs === null ? 'never' : `after ${duration(rule.evictAfterMs)} without a pull`}`);
  print(`  limits:         ${rule.limits.requestsPerSecond} requests/s, ${rule.limits.concurrency} in flight`);
  print(`  upstream state: ${upstreamState(rule)}`);
}

export async function ruleDelete(name: string, options: CommandOptions): Promise<void> {
  await (await connectCache(options)).remove(name);
  if (options.json) return printJson({ deleted: name });
  print(`deleted cache rule ${name} (what it cached stays, as ordinary repositories)`);
}

export async function refresh(name: string, image: string | undefined, options: CommandOptions): Promise<void> {
  const target = image === undefined ? {} : parseImage(image);
  const result = await (await connectCache(options)).refresh(name, target);
  if (options.json) return printJson(result);
  if (result.checked) {
    const { previous, current, changed } = result.checked;
    const what = `${result.repository}:${result.tag}`;
    if (current === null) return print(`${what} does not exist upstream${previous ? ` (the cache had ${previous}; pulls now answer 404)` : ''}`);
    return print(changed ? `${what} moved: ${previous ?? '(not cached)'} -> ${current}` : `${what} is unchanged (${current})`);
  }
  print(`${result.expired} cached tag(s) of ${result.repository ?? `rule ${result.rule}`} will be checked with the upstream on their next pull`);
}

export async function entries(name: string, options: CommandOptions & { repository?: string; limit?: number }): Promise<void> {
  const found = await (await connectCache(options)).entries(name, { repository: options.repository, limit: options.limit });
  if (options.json) return printJson(found);
  if (found.tags.length === 0) return print(`no cached tags for rule ${found.rule}`);
  print(
    table([
      ['REPOSITORY', 'TAG', 'DIGEST', 'CHECKED', 'FRESH UNTIL', 'STALE UNTIL'],
      ...found.tags.map((t) => [t.repository, t.tag, `${t.digest.slice(0, 19)}…`, t.checkedAt, t.freshUntil, t.staleUntil]),
    ]),
  );
}

function summary(rule: CacheRuleView): string {
  return `${rule.prefix}/ <- ${rule.upstream.url} (${rule.repositories.join(', ')}; mirror of ${rule.mirrorOf.join(', ')})`;
}

function upstreamState(rule: CacheRuleView): string {
  if (rule.state.upstreamBlockedUntil) return `asked to wait until ${rule.state.upstreamBlockedUntil}`;
  if (rule.state.lastUpstreamError) return `last error ${rule.state.lastUpstreamErrorAt}: ${rule.state.lastUpstreamError.slice(0, 80)}`;
  return 'ok';
}

function duration(ms: number): string {
  if (ms === 0) return '0';
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

function checkStdin(options: CacheRuleOptions & ConnectionOptions): void {
  if (options.upstreamPasswordStdin && options.passwordStdin) {
    throw new AdminError(
      '--upstream-password-stdin and --password-stdin both read standard input: use the saved login, or --upstream-password-file/--upstream-password-env',
    );
  }
}

async function stdin(): Promise<string> {
  if (process.stdin.isTTY) throw new AdminError('--upstream-password-stdin reads a pipe: echo "$PASSWORD" | berth cache rule … --upstream-password-stdin');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}
