/** The `scheduled_tasks` table (see `ScheduledTaskStore` in shared/lease.ts). */
import type { ClaimRequest, Lease, ScheduledTaskStore } from '../../shared/lease.js';
import { claimRows } from './claim.js';
import type { SqlContext } from './context.js';

export class SqlScheduledTaskIndex implements ScheduledTaskStore {
  constructor(private readonly ctx: SqlContext) {}

  async claim(names: readonly string[], request: ClaimRequest): Promise<string[]> {
    if (names.length === 0) return [];
    await this.ctx.db
      .insertInto('scheduled_tasks')
      .values(names.map((name) => ({ name, due_at: request.now, claimed_by: null, claimed_until: null, last_run_at: null, last_error: null })))
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    const rows = await claimRows(this.ctx, request, {
      leased: 'scheduled_tasks',
      candidates: (db) =>
        db
          .selectFrom('scheduled_tasks')
          .select('name')
          .where('name', 'in', [...names])
          .where('due_at', '<=', request.now)
          .orderBy('due_at'),
      take: (db, row) =>
        db
          .updateTable('scheduled_tasks')
          .set({ claimed_by: request.owner, claimed_until: request.until })
          .where('name', '=', row.name)
          .where('due_at', '<=', request.now),
    });
    return rows.map((row) => row.name);
  }

  async renew(name: string, lease: Lease): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('scheduled_tasks')
      .set({ claimed_until: lease.until })
      .where('name', '=', name)
      .where('claimed_by', '=', lease.owner)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async release(name: string, owner: string, run: { at: number; nextDueAt: number; error: string | undefined }): Promise<void> {
    await this.ctx.db
      .updateTable('scheduled_tasks')
      .set({ due_at: run.nextDueAt, last_run_at: run.at, last_error: run.error ?? null, claimed_by: null, claimed_until: null })
      .where('name', '=', name)
      .where('claimed_by', '=', owner)
      .execute();
  }
}
