/** `AuditExportIndex` in SQL (see audit-export-store.ts for the contract). */
import { sql } from '../kysely.js';
import type { AuditExportIndex, ClaimedAuditExport } from '../audit-export-store.js';
import type { ClaimRequest, Lease } from '../../shared/lease.js';
import { auditEntry } from './audit-index.js';
import { claimRows } from './claim.js';
import { storableText, type SqlContext } from './context.js';

export class SqlAuditExportIndex implements AuditExportIndex {
  constructor(private readonly ctx: SqlContext) {}

  async claim(sink: string, request: ClaimRequest): Promise<ClaimedAuditExport[]> {
    const won = await claimRows(this.ctx, request, {
      leased: 'audit_exports',
      candidates: (db) =>
        db
          .selectFrom('audit_exports')
          .select(['entry_id', 'attempts'])
          .where('sink', '=', sink)
          .where('next_attempt_at', '<=', request.now)
          .orderBy('entry_id'),
      take: (db, row) =>
        db
          .updateTable('audit_exports')
          .set({ claimed_by: request.owner, claimed_until: request.until })
          .where('sink', '=', sink)
          .where('entry_id', '=', row.entry_id),
    });
    if (won.length === 0) return [];
    const attempts = new Map(won.map((row) => [Number(row.entry_id), Number(row.attempts)]));
    const entries = await this.ctx.db
      .selectFrom('audit_log')
      .selectAll()
      .where(
        'id',
        'in',
        won.map((row) => Number(row.entry_id)),
      )
      .orderBy('id')
      .execute();
    return entries.map((row) => {
      const entry = auditEntry(row);
      return { entry, attempts: attempts.get(entry.id) ?? 0 };
    });
  }

  async renew(sink: string, entryIds: readonly number[], lease: Lease): Promise<boolean> {
    if (entryIds.length === 0) return false;
    const result = await this.ctx.db
      .updateTable('audit_exports')
      .set({ claimed_until: lease.until })
      .where('sink', '=', sink)
      .where('entry_id', 'in', [...entryIds])
      .where('claimed_by', '=', lease.owner)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async complete(sink: string, entryIds: readonly number[], owner: string): Promise<void> {
    if (entryIds.length === 0) return;
    await this.ctx.db
      .deleteFrom('audit_exports')
      .where('sink', '=', sink)
      .where('entry_id', 'in', [...entryIds])
      .where('claimed_by', '=', owner)
      .execute();
  }

  async release(sink: string, entryIds: readonly number[], owner: string, nextAttemptAt: number, error?: string): Promise<void> {
    if (entryIds.length === 0) return;
    await this.ctx.db
      .updateTable('audit_exports')
      .set({
        claimed_by: null,
        claimed_until: null,
        next_attempt_at: nextAttemptAt,
        ...(error !== undefined ? { last_error: storableText(error.slice(0, 1000)), attempts: sql<number>`attempts + 1` } : {}),
      })
      .where('sink', '=', sink)
      .where('entry_id', 'in', [...entryIds])
      .where('claimed_by', '=', owner)
      .execute();
  }

  async nextDueAt(sink: string): Promise<number | undefined> {
    const row = await this.ctx.db
      .selectFrom('audit_exports')
      // When the soonest row becomes claimable: its next attempt time, or its lease's end.
      .select(
        sql<
          number | string | null
        >`min(case when claimed_until is not null and claimed_until > next_attempt_at then claimed_until else next_attempt_at end)`.as('due'),
      )
      .where('sink', '=', sink)
      .executeTakeFirst();
    return row?.due === null || row?.due === undefined ? undefined : Number(row.due);
  }

  async dropOtherSinks(keep: readonly string[]): Promise<number> {
    let query = this.ctx.db.deleteFrom('audit_exports');
    if (keep.length > 0) query = query.where('sink', 'not in', [...keep]);
    return Number((await query.executeTakeFirst()).numDeletedRows);
  }
}
