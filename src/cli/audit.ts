/**
 * `berth audit` (also `berth admin audit`): the audit log, newest first, filtered by principal,
 * repository, event (or prefix) and time range, page by page (`--before`, or `--all`); and
 * `berth log-level`: show or change the run-time log level of the replica the address reaches.
 */
import type { AuditEntryView } from '../api/audit.js';
import { logLevelNames, type LogLevelName } from '../api/operations.js';
import { AdminError, connectAdmin } from './admin-client.js';
import { print, printJson, table, type CommandOptions } from './admin.js';

export interface AuditListOptions extends CommandOptions {
  limit?: number | undefined;
  principal?: string | undefined;
  repository?: string | undefined;
  event?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
  before?: number | undefined;
  /** Follow the pages to the end (at most `limit` entries, when given). */
  all?: boolean | undefined;
}

const pageSize = 1000;

export async function auditList(options: AuditListOptions): Promise<void> {
  const client = await connectAdmin(options);
  const query = {
    limit: options.all ? Math.min(pageSize, options.limit ?? pageSize) : options.limit,
    principal: options.principal,
    repository: options.repository,
    event: options.event,
    since: options.since,
    until: options.until,
    before: options.before,
  };
  const entries: AuditEntryView[] = [];
  let next: number | null;
  for (;;) {
    const page = await client.audit(query);
    entries.push(...page.entries);
    next = page.next;
    if (!options.all || next === null || (options.limit !== undefined && entries.length >= options.limit)) break;
    query.before = next;
  }
  const shown = options.limit !== undefined ? entries.slice(0, options.limit) : entries;
  if (options.json) return printJson({ entries: shown, next: options.all ? null : next });
  if (shown.length === 0) return print('no audit entries');
  print(
    table([
      ['TIME', 'EVENT', 'PRINCIPAL', 'ADDRESS', 'REPOSITORY', 'DETAIL'],
      ...shown.map((e) => [
        e.at,
        e.event,
        e.principalName ?? '-',
        e.clientAddress ?? '-',
        e.repository ?? '-',
        truncate(e.detail === null ? '' : JSON.stringify(e.detail), 100),
      ]),
    ]),
  );
  if (!options.all && next !== null) print(`(more: --before ${next}, or --all)`);
}

export async function logLevel(level: string | undefined, options: CommandOptions): Promise<void> {
  const client = await connectAdmin(options);
  if (level === undefined) {
    const view = await client.logLevel();
    return options.json ? printJson(view) : print(view.level);
  }
  if (!(logLevelNames as readonly string[]).includes(level)) throw new AdminError(`unknown level ${JSON.stringify(level)}: use ${logLevelNames.join(', ')}`);
  const view = await client.setLogLevel(level as LogLevelName);
  if (options.json) return printJson(view);
  print(`log level ${view.previous ?? '?'} -> ${view.level} (this replica, until the next change or restart)`);
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
