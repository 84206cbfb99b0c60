/** `berth audit`, `berth log-level`: arguments only; cli/audit.ts runs them. */
import type { Command } from 'commander';
import type { AuditListOptions } from '../audit.js';
import type { CommandOptions } from '../admin.js';
import { positiveInteger, type Managed } from './common.js';

const load = () => import('../audit.js');

/** The audit filters, shared by `berth audit` and `berth admin audit`. */
export function auditOptions(command: Command): Command {
  return command
    .option('--limit <n>', 'how many entries (default 100; with --all, at most this many)', positiveInteger)
    .option('--principal <principal>', 'only entries of this principal (name or id)')
    .option('--repository <name>', 'only entries about this repository (pushes, pulls, deletes)')
    .option('--event <event>', 'only this event (login.failed), or events starting with a prefix ending in a dot (admin.)')
    .option('--since <time>', 'only entries at or after this RFC 3339 time or date (2026-01-31T12:00:00Z)')
    .option('--until <time>', 'only entries before this time')
    .option('--before <id>', 'only entries older than this id (the next page)', positiveInteger)
    .option('--all', 'follow the pages to the end');
}

export function registerOperationsCommands(program: Command, managed: Managed): void {
  managed(
    auditOptions(program.command('audit').description('show the audit log, newest first: who changed, pushed, deleted or was refused what (owners only)')),
  ).action(async (options: AuditListOptions) => (await load()).auditList(options));
  managed(
    program
      .command('log-level')
      .description("show or change the registry's log level at run time (the replica the address reaches; owners only, audited)")
      .argument('[level]', 'trace, debug, info, warn, error, fatal or silent'),
  ).action(async (level: string | undefined, options: CommandOptions) => (await load()).logLevel(level, options));
}
