/** `berth sync rule create|list|show|update|delete`, `berth sync run|status`: arguments only; cli/sync.ts runs them. */
import type { Command } from 'commander';
import type { CommandOptions } from '../admin.js';
import type { RuleOptions } from '../sync.js';
import { collect, positive, type Managed } from './common.js';

const load = () => import('../sync.js');

/** Options that say what a rule selects and how it reaches its source (create and update). */
function ruleOptions(command: Command, update: boolean): Command {
  command
    .option('--source <url>', 'the registry to sync from, e.g. https://vendor.example.com')
    .option('--source-username <name>', 'log in to the source as this user (with one of the --source-password-* options)')
    .option(
      '--source-password-file <path>',
      'a file on the registry server holding the source password, inside its secrets.fileDir (read when the source is contacted)',
    )
    .option(
      '--source-password-env <VAR>',
      "an environment variable of the registry server's process holding the source password, named with its secrets.envPrefix",
    )
    .option('--source-password-stdin', "read the source password from standard input (it is then stored in the registry's database)")
    .option('--oidc-client-id <id>', 'log in to a Berth source as this service principal with an OIDC token (with --oidc-token-file)')
    .option('--oidc-token-file <path>', 'the OIDC token file on the registry server (inside its secrets.fileDir), e.g. a projected service-account token')
    .option('--anonymous', 'no source credentials')
    .option('--repository <glob>', `a source repository glob, e.g. 'tripinsights/*' (repeatable${update ? '; replaces the list' : ''})`, collect)
    .option(
      '--include <filter>',
      `sync only tags matching: a glob (v*), regex:EXPR or semver:RANGE (repeatable${update ? '; replaces the list' : ''})`,
      collect,
    )
    .option('--exclude <filter>', `never sync tags matching (same forms; repeatable${update ? '; replaces the list' : ''})`, collect)
    .option('--prefix <path>', 'destination prefix: the source repository tripinsights/api lands in <prefix>/tripinsights/api')
    .option('--webhook-secret-file <path>', 'accept notifications signed with the secret in this file (instead of a generated one)')
    .option('--poll <interval>', 'reconcile this often, e.g. 10m or 1h')
    .option('--rps <n>', 'requests per second to the source', positive)
    .option('--concurrency <n>', 'requests in flight to the source', positive);
  if (update) {
    command
      .option('--webhook', 'accept notifications (a secret is generated and printed once, unless the rule has one)')
      .option('--no-webhook', 'stop accepting notifications')
      .option('--rotate-webhook-secret', 'generate a new webhook secret (printed once); the old one stops working')
      .option('--no-poll', 'stop polling')
      .option('--on-demand', 'allow berth sync run')
      .option('--no-on-demand', 'refuse berth sync run')
      .option('--referrers', 'copy signatures and SBOMs with each image')
      .option('--no-referrers', 'do not copy referrers')
      .option('--clear-include', 'sync every tag (drop the include filters)')
      .option('--clear-exclude', 'drop the exclude filters')
      .option('--enable', 'enable the rule (and reconcile it at once)')
      .option('--disable', 'disable the rule');
  } else {
    command
      .option('--webhook', "accept notifications at the rule's webhook URL; a secret is generated and printed once")
      .option('--no-on-demand', 'refuse berth sync run')
      .option('--no-referrers', 'do not copy signatures and SBOMs with each image')
      .option('--disable', 'create the rule disabled');
  }
  return command;
}

export function registerSyncCommands(program: Command, managed: Managed): void {
  const sync = program.command('sync').description('selective sync from another registry into this one (owners only; see docs/sync.md)');
  const rule = sync.command('rule').description('sync rules: what to copy from which source, and when');
  managed(
    ruleOptions(
      rule.command('create').description('create a sync rule (the first run copies what already exists)').argument('<name>', 'the rule name, e.g. vendor'),
      false,
    ),
  ).action(async (name: string, options: CommandOptions & RuleOptions) => (await load()).ruleCreate(name, options));
  managed(rule.command('list').description('list sync rules')).action(async (options: CommandOptions) => (await load()).ruleList(options));
  managed(rule.command('show').description('show one sync rule').argument('<name>', 'the rule name')).action(async (name: string, options: CommandOptions) =>
    (await load()).ruleShow(name, options),
  );
  managed(ruleOptions(rule.command('update').description('change a sync rule (only what the flags name)').argument('<name>', 'the rule name'), true)).action(
    async (name: string, options: CommandOptions & RuleOptions) => (await load()).ruleUpdate(name, options),
  );
  managed(rule.command('delete').description('delete a sync rule with its queue and status (copied images stay)').argument('<name>', 'the rule name')).action(
    async (name: string, options: CommandOptions) => (await load()).ruleDelete(name, options),
  );
  managed(
    sync
      .command('run')
      .description('sync now: reconcile the rule (copy what differs) and follow it until done; exit 1 on errors')
      .argument('<rule>', 'the rule name')
      .option('--image <repository:tag>', 'only this image (as named on the source)')
      .option('--no-wait', 'return once the run is queued')
      .option('--timeout <interval>', 'stop following after this long (default 30m; the run goes on)'),
  ).action(async (name: string, options: CommandOptions & { image?: string; wait?: boolean; timeout?: string }) => (await load()).run(name, options));
  managed(
    sync
      .command('status')
      .description('per-rule and per-image sync status: last sync, digests, last errors')
      .argument('<rule>', 'the rule name')
      .option('--repository <name>', 'only images of this source repository'),
  ).action(async (name: string, options: CommandOptions & { repository?: string }) => (await load()).status(name, options));
}
