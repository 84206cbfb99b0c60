/** `berth lifecycle …`: arguments only; cli/lifecycle.ts runs them. Policies themselves are written in `berth apply` files. */
import type { Command } from 'commander';
import type { CommandOptions } from '../admin.js';
import type { PreviewOptions } from '../lifecycle.js';
import { positiveInteger, type Managed } from './common.js';

const load = () => import('../lifecycle.js');

export function registerLifecycleCommands(program: Command, managed: Managed): void {
  const lifecycle = program
    .command('lifecycle')
    .description('retention, tag immutability and quotas of a running registry (owners only; policies are written in berth apply files: docs/lifecycle.md)');
  managed(lifecycle.command('list').description('list lifecycle policies')).action(async (options: CommandOptions) => (await load()).list(options));
  managed(
    lifecycle.command('show').description('show one policy').argument('<kind>', 'retention, immutability or quotas').argument('<name>', 'the policy name'),
  ).action(async (kind: string, name: string, options: CommandOptions) => (await load()).show(kind, name, options));
  managed(
    lifecycle.command('delete').description('delete a policy').argument('<kind>', 'retention, immutability or quotas').argument('<name>', 'the policy name'),
  ).action(async (kind: string, name: string, options: CommandOptions) => (await load()).remove(kind, name, options));
  managed(
    lifecycle
      .command('preview')
      .description('list what a retention rule would delete now, and why (deletes nothing)')
      .argument('[rule]', 'a saved retention rule')
      .option('-f, --file <rule.yaml>', 'a retention rule in a file (one entry as written under lifecycle.retention), not saved')
      .option('--repository <name>', 'only this repository')
      .option('--after <repository>', 'continue after this repository (a preview stops at its limit)')
      .option('--limit <n>', 'at most this many actions (the server has its own cap)', positiveInteger),
  ).action(async (rule: string | undefined, options: PreviewOptions) => (await load()).preview(rule, options));
  managed(
    lifecycle
      .command('run')
      .description("run a retention rule now and follow it (dry or not as the rule's mode says)")
      .argument('<rule>', 'a saved retention rule')
      .option('--dry-run', 'report only, whatever the rule says')
      .option('--enforce', 'delete, even if the rule is in dry-run mode')
      .option('--no-wait', 'return once the run is queued'),
  ).action(async (rule: string, options: CommandOptions & { dryRun?: boolean; enforce?: boolean; wait?: boolean }) => (await load()).run(rule, options));
  managed(
    lifecycle
      .command('runs')
      .description('list retention runs and usage refreshes, newest first')
      .option('--policy <name>', "only this rule's runs (usage: the usage refreshes)")
      .option('--limit <n>', 'how many (default 50)', positiveInteger),
  ).action(async (options: CommandOptions & { policy?: string; limit?: number }) => (await load()).runs(options));
  managed(
    lifecycle
      .command('report')
      .description('what a run deleted (or, dry, would have), and why')
      .argument('<run>', 'the run id')
      .option('--limit <n>', 'at most this many actions (default 1000)', positiveInteger),
  ).action(async (id: string, options: CommandOptions & { limit?: number }) => (await load()).report(id, options));
  managed(
    lifecycle
      .command('usage')
      .description('storage usage per repository (logical and exclusive bytes) and per quota')
      .argument('[pattern]', 'a repository glob, e.g. team-a/** (default: every repository)')
      .option('--refresh', 'compute usage again first, and wait for it')
      .option('--limit <n>', 'repositories listed (default 100)', positiveInteger)
      .option('--after <repository>', 'continue after this repository'),
  ).action(async (pattern: string | undefined, options: CommandOptions & { refresh?: boolean; limit?: number; after?: string }) =>
    (await load()).usage(pattern, options),
  );
}
