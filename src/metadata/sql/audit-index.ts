import type { Insertable, Selectable } from 'kysely';
import { sql } from '../kysely.js';
import type { AnonymousPullIndex, AuditEntry, AuditIndex, AuditQuery } from '../auth-store.js';
import type { AuditLogTable } from '../schema.js';
import type { SqlContext } from './context.js';

/** Rows deleted per statement when pruning. */
const pruneBatch = 5000;
/** Rows one group-commit insert writes at most (7 parameters each, under SQLite's oldest limit of 999). */
const appendBatch = 100;

type AuditRow = Omit<Insertable<AuditLogTable>, 'id'>;

export class SqlAuditIndex implements AuditIndex {
  /** Rows waiting for the next group commit, with their callers. */
  private pending: Array<{ row: AuditRow; done: () => void; failed: (err: unknown) => void }> = [];
  private flushing = false;

  constructor(private readonly ctx: SqlContext) {}

  async append(entry: AuditEntry, exportTo: readonly string[] = []): Promise<void> {
    const values = {
      at: entry.at,
      event: entry.event,
      principal_id: entry.principalId ?? null,
      principal_name: entry.principalName ?? null,
      client_address: entry.clientAddress ?? null,
      detail: entry.detail === undefined ? null : JSON.stringify(entry.detail),
      repository: entry.repository ?? null,
    };
    if (exportTo.length === 0) return this.groupCommit(values);
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

  /**
   * Group commit: entries appended in the same turn of the event loop, or while the previous write
   * is under way, are written by one multi-row insert. A commit is most of an entry's cost (SQLite:
   * ~32 µs alone against ~7 µs per row in batches of 8; PostgreSQL: a round trip each), and every
   * token grant appends one. Each caller's promise settles when its own row is committed (or the
   * batch failed), so "audited before the answer" still holds.
   */
  private groupCommit(row: AuditRow): Promise<void> {
    return new Promise((done, failed) => {
      this.pending.push({ row, done, failed });
      if (this.pending.length === 1 && !this.flushing) setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, appendBatch);
        try {
          await this.ctx.db
            .insertInto('audit_log')
            .values(batch.map((b) => b.row))
            .execute();
          for (const b of batch) b.done();
        } catch (err) {
          if (batch.length === 1) {
            batch[0]?.failed(err);
            continue;
          }
          // One bad row must not fail the others' requests: each is written, and answered, on its own.
          for (const b of batch) {
            await this.ctx.db.insertInto('audit_log').values(b.row).execute().then(b.done, b.failed);
          }
        }
      }
    } finally {
      this.flushing = false;
    }
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
