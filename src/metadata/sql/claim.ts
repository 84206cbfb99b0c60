/**
 * The one claim of the job tables: lease up to N due rows to an owner until an expiry, safely across
 * replicas, in either dialect.
 *
 * 1. The kind's candidate query selects due rows, best first; this adds "the lease is free"
 *    (`claimed_until` null or lapsed) and a limit. On PostgreSQL the candidates are selected
 *    `FOR UPDATE OF <leased table> SKIP LOCKED` inside the claim's transaction, so replicas claiming at
 *    once take different rows instead of racing for the same first few (throughput).
 * 2. Each candidate is taken by the kind's conditional update, to which this adds "the lease is free"
 *    again: the update's row count is the one arbiter (correctness, both dialects), so of two
 *    claimers that saw the same row only one wins it. SQLite takes no row locks: twice the limit are
 *    selected, so losing a few races still fills the free slots.
 *
 * Returns the candidate rows won, in candidate order. A kind reads the rows back afterwards if it
 * needs more than the candidate selected (the row may have changed between selection and claim).
 *
 * A row whose lease had lapsed (its owner crashed, or stalled past its lease) is a takeover:
 * `request.onTakeover` hears of each. The update tries an unleased row first and a lapsed lease
 * second, so telling them apart costs a statement only for contested or lapsed rows (every release
 * clears the lease columns, so a free row has none).
 */
import type { Expression, SqlBool, UpdateResult } from 'kysely';
import { sql } from '../kysely.js';
import type { ClaimRequest } from '../../shared/lease.js';
import type { Db, SqlContext } from './context.js';

/** What a candidate query must offer (any Kysely select builder does). */
export interface CandidateQuery<Row> {
  where(expression: Expression<SqlBool>): CandidateQuery<Row>;
  limit(limit: number): CandidateQuery<Row>;
  modifyEnd(modifier: Expression<unknown>): CandidateQuery<Row>;
  execute(): Promise<Row[]>;
}

/** What a claiming update must offer (any Kysely update builder does). */
export interface ClaimUpdate {
  where(expression: Expression<SqlBool>): ClaimUpdate;
  executeTakeFirst(): Promise<UpdateResult>;
}

export interface ClaimPlan<Row> {
  /** How the candidate query names the leased table (its alias, or the table), for the lock and the lease column. */
  leased: string;
  /** The lease expiry column; `claimed_until` unless the table names it otherwise. */
  expiry?: string;
  /** Due rows, best first (the lease condition and the limit are added here). */
  candidates(db: Db): CandidateQuery<Row>;
  /**
   * The update that leases one candidate to `request.owner` until `request.until`: it sets the lease
   * columns (and whatever a claim records), matches the candidate's row and whatever else must still
   * hold (its status, say). The lease condition is added here.
   */
  take(db: Db, row: Row): ClaimUpdate;
}

export async function claimRows<Row>(ctx: SqlContext, request: ClaimRequest, plan: ClaimPlan<Row>): Promise<Row[]> {
  if (request.limit <= 0) return [];
  const postgres = ctx.dialect === 'postgres';
  const expiry = plan.expiry ?? 'claimed_until';
  const claim = async (db: Db): Promise<Row[]> => {
    let candidates = plan
      .candidates(db)
      .where(leaseFree(`${plan.leased}.${expiry}`, request.now))
      .limit(postgres ? request.limit : request.limit * 2);
    if (postgres) candidates = candidates.modifyEnd(sql`for update of ${sql.table(plan.leased)} skip locked`);
    const won: Row[] = [];
    for (const row of await candidates.execute()) {
      if (won.length >= request.limit) break;
      const fresh = await plan
        .take(db, row)
        .where(sql<SqlBool>`${sql.ref(expiry)} is null`)
        .executeTakeFirst();
      if (Number(fresh.numUpdatedRows) === 1) {
        won.push(row);
        continue;
      }
      const lapsed = await plan
        .take(db, row)
        .where(sql<SqlBool>`${sql.ref(expiry)} <= ${request.now}`)
        .executeTakeFirst();
      if (Number(lapsed.numUpdatedRows) === 1) {
        won.push(row);
        request.onTakeover?.();
      }
    }
    return won;
  };
  return postgres ? ctx.transaction(claim) : claim(ctx.db);
}

/** Rule: a lease is free when there is none, or from its expiry on. */
function leaseFree(column: string, now: number): Expression<SqlBool> {
  return sql<SqlBool>`(${sql.ref(column)} is null or ${sql.ref(column)} <= ${now})`;
}
