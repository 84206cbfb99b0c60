/** `berth cache rule create|list|show|update|delete`, `berth cache refresh`, `berth cache entries`: arguments only; cli/cache.ts runs them. */
import type { Command } from 'commander';
import type { CommandOptions } from '../admin.js';
import type { CacheRuleOptions } from '../cache.js';
import { collect, positive, positiveInteger, type Managed } from './common.js';

const load = () => import('../cache.js');

function ruleOptions(command: Command, update: boolean): Command {
  const replaces = update ? '; replaces the list' : '';
  command
    .option('--prefix <path>', 'the path in this registry the cache owns, e.g. hub (hub/library/alpine is library/alpine upstream)')
    .option('--upstream <url>', 'the upstream registry, e.g. https://registry-1.docker.io')
    .option('--upstream-username <name>', 'log in to the upstream as this user (with one of the --upstream-password-* options)')
    .option('--upstream-password-file <path>', 'a file on the registry server holding the upstream password (read when the upstream is contacted)')
    .option('--upstream-password-env <VAR>', "an environment variable of the registry server's process holding the upstream password")
    .option('--upstream-password-stdin', "read the upstream password from standard input (it is then stored in the registry's database)")
    .option('--oidc-client-id <id>', 'keyless: log in to a Berth upstream as this service principal with an OIDC token (with --oidc-token-file)')
    .option('--oidc-token-file <path>', 'the OIDC token file on the registry server, e.g. a projected service-account token')
    .option('--anonymous', 'no upstream credentials')
    .option('--mirror-of <host>', `answer containerd mirror requests for this registry host (?ns=HOST; repeatable${replaces})`, collect)
    .option('--repository <glob>', `an upstream repository glob the cache may fetch, e.g. 'library/*' (repeatable${replaces}; default **)`, collect)
    .option('--freshness <interval>', 'serve a cached tag this long before asking the upstream again, e.g. 10m (0: ask on every pull)')
    .option('--stale-if-error <interval>', 'serve a cached tag this much longer while the upstream fails, e.g. 7d (0: never stale)')
    .option('--evict-after <interval>', 'evict cached manifests not pulled for this long, e.g. 30d')
    .option('--rps <n>', 'requests per second to the upstream', positive)
    .option('--concurrency <n>', 'requests in flight to the upstream', positiveInteger);
  if (update) {
    command
      .option('--no-evict', 'keep cached manifests however long they go unpulled')
      .option('--default-freshness', 'use the configured tag freshness window (cache.defaults.tagFreshnessMs)')
      .option('--default-stale-if-error', 'use the configured stale-serving limit (cache.defaults.staleIfErrorMs)');
  }
  return command;
}

export function registerCacheCommands(program: Command, managed: Managed): void {
  const cache = program
    .command('cache')
    .description('the pull-through cache: prefixes of this registry served from upstream registries (owners only; docs/cache.md)');
  const rule = cache.command('rule').description('cache rules: which prefix is served from which upstream');
  managed(ruleOptions(rule.command('create').description('create a cache rule').argument('<name>', 'the rule name, e.g. hub'), false)).action(
    async (name: string, options: CommandOptions & CacheRuleOptions) => (await load()).ruleCreate(name, options),
  );
  managed(rule.command('list').description('list cache rules (from the configuration file and the API)')).action(async (options: CommandOptions) =>
    (await load()).ruleList(options),
  );
  managed(rule.command('show').description('show one cache rule').argument('<name>', 'the rule name')).action(async (name: string, options: CommandOptions) =>
    (await load()).ruleShow(name, options),
  );
  managed(ruleOptions(rule.command('update').description('change a cache rule (only what the flags name)').argument('<name>', 'the rule name'), true)).action(
    async (name: string, options: CommandOptions & CacheRuleOptions) => (await load()).ruleUpdate(name, options),
  );
  managed(
    rule.command('delete').description('delete a cache rule (what it cached stays, as ordinary repositories)').argument('<name>', 'the rule name'),
  ).action(async (name: string, options: CommandOptions) => (await load()).ruleDelete(name, options));
  managed(
    cache
      .command('refresh')
      .description('re-check a cached tag with the upstream now, or mark a repository (or the whole rule) for a re-check on the next pull')
      .argument('<rule>', 'the rule name')
      .argument('[image]', 'the upstream repository[:tag], e.g. library/alpine:3.20 (none: every tag of the rule)'),
  ).action(async (name: string, image: string | undefined, options: CommandOptions) => (await load()).refresh(name, image, options));
  managed(
    cache
      .command('entries')
      .description("list a rule's cached tags and how fresh they are")
      .argument('<rule>', 'the rule name')
      .option('--repository <name>', 'only this upstream repository')
      .option('--limit <n>', 'at most this many tags (default 1000)', positiveInteger),
  ).action(async (name: string, options: CommandOptions & { repository?: string; limit?: number }) => (await load()).entries(name, options));
}
