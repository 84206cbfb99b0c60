import type { Selectable } from 'kysely';
import { sql } from '../kysely.js';
import type { AnonymousPullIndex, AuditEntry, AuditIndex, AuditQuery } from '../auth-store.js';
import type { AuditLogTable } from '../schema.js';
import type { SqlContext } from './context.js';
import { GroupCommit } from './group-commit.js';
import { preparedRows } from './prepared.js';

/** Rows deleted per statement when pruning. */
const pruneBatch = 5000;
/** Rows one group-commit insert writes at most (7 parameters each, under SQLite's oldest limit of 999). */
const appendBatch = 100;

type AuditRow = Omit<Selectable<AuditLogTable>, 'id'>;

/** Every token grant appends an entry: the group commit's insert, compiled once per batch size (prepared.ts). */
const insertEntries = preparedRows<AuditRow>(['at', 'event', 'principal_id', 'principal_name', 'client_address', 'detail', 'repository'], (db, rows) =>
  db.insertInto('audit_log').values(rows),
);

export class SqlAuditIndex implements AuditIndex {
  /** Entries without an export are written by group commit (group-commit.ts). */
  private readonly entries: GroupCommit<AuditRow>;

  constructor(private readonly ctx: SqlContext) {
    this.entries = new GroupCommit((rows) => this.ctx.write([insertEntries(this.ctx.db, rows)]), appendBatch);
  }

  async append(entry: AuditEntry, exportTo: readonly string[] = []): Promise<void> {
    const values: AuditRow = {
      at: entry.at,
      event: entry.event,
      principal_id: entry.principalId ?? null,
      principal_name: entry.principalName ?? null,
      client_address: entry.clientAddress ?? null,
      detail: entry.detail === undefined ? null : JSON.stringify(entry.detail),
      repository: entry.repository ?? null,
    };
    if (exportTo.length === 0) return this.entries.add(values);
    await this.ctx.transaction(async (trx) => {
      const { id } = await trx.insertInto('audit_log').values(values).returning('id').executeTakeFirstOrThrow();
      await trx
        .insertInto('audit_exports')
        .values(
          [...new Set(exportTo)].map((sink) => ({
            sink,
            entry_id: Number(id),
            attempts: 0,
            next_attempt_at: entry.at,
            claimed_by: null,
            claimed_until: null,
            last_error: null,
          })),
        )
        .execute();
    });
  }

  async prune(cutoff: number): Promise<number> {
    let removed = 0;
    for (;;) {
      // In batches, so a first pruning of a large log does not hold the database in one transaction.
      const batch = this.ctx.db.selectFrom('audit_log').select('id').where('at', '<', cutoff).orderBy('id').limit(pruneBatch);
      const result = await this.ctx.db.deleteFrom('audit_log').where('id', 'in', batch).executeTakeFirst();
      const deleted = Number(result.numDeletedRows);
      removed += deleted;
      if (deleted < pruneBatch) return removed;
    }
  }

  async list(options: AuditQuery): Promise<Array<AuditEntry & { id: number }>> {
    let query = this.ctx.db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(options.limit);
    if (options.principalId !== undefined) query = query.where('principal_id', '=', options.principalId);
    if (options.repository !== undefined) query = query.where('repository', '=', options.repository);
    if (options.event !== undefined) {
      const bounds = prefixBounds(options.event);
      query = bounds ? query.where('event', '>=', bounds.from).where('event', '<', bounds.to) : query.where('event', '=', options.event);
    }
    if (options.since !== undefined) query = query.where('at', '>=', options.since);
    if (options.until !== undefined) query = query.where('at', '<', options.until);
    if (options.before !== undefined) query = query.where('id', '<', options.before);
    return (await query.execute()).map(auditEntry);
  }
}

/** A row as an entry (also read by the audit export). */
export function auditEntry(row: Selectable<AuditLogTable>): AuditEntry & { id: number } {
  return {
    id: Number(row.id),
    at: Number(row.at),
    event: row.event,
    principalId: row.principal_id ?? undefined,
    principalName: row.principal_name ?? undefined,
    clientAddress: row.client_address ?? undefined,
    detail: row.detail === null ? undefined : (JSON.parse(row.detail) as unknown),
    repository: row.repository ?? undefined,
  };
}

/**
 * An event filter ending in `.` (`admin.`) as the range of names it starts: `[admin., admin/)`,
 * which both dialects answer from the (event, id) index, unlike LIKE (case-insensitive in SQLite).
 */
function prefixBounds(event: string): { from: string; to: string } | undefined {
  if (!event.endsWith('.')) return undefined;
  return { from: event, to: `${event.slice(0, -1)}/` };
}

export class SqlAnonymousPullIndex implements AnonymousPullIndex {
  constructor(private readonly ctx: SqlContext) {}

  async list(): Promise<string[]> {
    return (await this.ctx.db.selectFrom('anonymous_pull').select('pattern').orderBy('pattern').execute()).map((r) => r.pattern);
  }

  async replace(patterns: readonly string[], now: number): Promise<void> {
    await this.ctx.transaction(async (trx) => {
      // PostgreSQL: one replace at a time (the last one wins, as on SQLite); otherwise two
      // concurrent replaces each delete only committed rows and then collide on the same pattern.
      if (this.ctx.dialect === 'postgres') await sql`lock table anonymous_pull in exclusive mode`.execute(trx);
      await trx.deleteFrom('anonymous_pull').execute();
      const unique = [...new Set(patterns)];
      if (unique.length > 0)
        await trx
          .insertInto('anonymous_pull')
          .values(unique.map((pattern) => ({ pattern, created_at: now })))
          .execute();
    });
  }
}
