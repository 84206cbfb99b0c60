import type { ExpressionBuilder, Selectable } from 'kysely';
import type {
  ClaimedImportJob,
  ImportJobIndex,
  ImportJobRecord,
  ImportJobSpec,
  ImportOutcome,
  ImportProgress,
  ImportResult,
  ImportStatus,
  NewImportJob,
  StoredCredentials,
} from '../import-store.js';
import type { ImportJobsTable, Schema } from '../schema.js';
import type { ClaimRequest, Lease } from '../../shared/lease.js';
import { claimRows } from './claim.js';
import { storableText, type SqlContext } from './context.js';

type Row = Selectable<ImportJobsTable>;

function json<T>(text: string | null): T | undefined {
  return text === null ? undefined : (JSON.parse(text) as T);
}

function optional(value: number | string | null): number | undefined {
  return value === null ? undefined : Number(value);
}

function toRecord(row: Row): ImportJobRecord {
  return {
    id: row.id,
    status: row.status as ImportStatus,
    spec: JSON.parse(row.spec) as ImportJobSpec,
    requestedBy: row.requested_by_id === null ? undefined : { id: row.requested_by_id, name: row.requested_by_name ?? '' },
    attempts: Number(row.attempts),
    notBefore: Number(row.not_before),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    startedAt: optional(row.started_at),
    finishedAt: optional(row.finished_at),
    progress: json<ImportProgress>(row.progress),
    result: json<ImportResult>(row.result),
    error: row.error_code === null ? undefined : { code: row.error_code, message: row.error_message ?? '' },
    hasCredentials: row.credentials !== null,
  };
}

/**
 * Rule: a job may run when it is queued and due, or running under a lapsed lease (its process died:
 * the claim helper adds the lease condition).
 */
const runnable = (now: number) => (eb: ExpressionBuilder<Schema, 'import_jobs'>) =>
  eb.or([eb.and([eb('status', '=', 'queued'), eb('not_before', '<=', now)]), eb('status', '=', 'running')]);

export class SqlImportJobIndex implements ImportJobIndex {
  constructor(private readonly ctx: SqlContext) {}

  async create(job: NewImportJob, now: number): Promise<ImportJobRecord> {
    await this.ctx.db
      .insertInto('import_jobs')
      .values({
        id: job.id,
        status: 'queued',
        spec: JSON.stringify(job.spec),
        credentials: job.credentials ? JSON.stringify(job.credentials) : null,
        requested_by_id: job.requestedBy?.id ?? null,
        requested_by_name: job.requestedBy?.name ?? null,
        attempts: 0,
        not_before: now,
        claimed_by: null,
        claimed_until: null,
        progress: null,
        result: null,
        error_code: null,
        error_message: null,
        created_at: now,
        updated_at: now,
        started_at: null,
        finished_at: null,
      })
      .execute();
    return (await this.get(job.id)) as ImportJobRecord;
  }

  async get(id: string): Promise<ImportJobRecord | undefined> {
    const row = await this.ctx.db.selectFrom('import_jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toRecord(row);
  }

  async list(filter: { requestedBy?: string | undefined; status?: ImportStatus | undefined; limit: number }): Promise<ImportJobRecord[]> {
    let query = this.ctx.db.selectFrom('import_jobs').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(filter.limit);
    if (filter.requestedBy !== undefined) query = query.where('requested_by_id', '=', filter.requestedBy);
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    return (await query.execute()).map(toRecord);
  }

  async claim(request: ClaimRequest): Promise<ClaimedImportJob[]> {
    const { now } = request;
    const won = await claimRows(this.ctx, request, {
      leased: 'import_jobs',
      candidates: (db) => db.selectFrom('import_jobs').select('id').where(runnable(now)).orderBy('created_at').orderBy('id'),
      take: (db, { id }) =>
        db
          .updateTable('import_jobs')
          .set((eb) => ({
            status: 'running',
            claimed_by: request.owner,
            claimed_until: request.until,
            attempts: eb('attempts', '+', 1),
            started_at: eb.fn.coalesce('started_at', eb.val(now)),
            updated_at: now,
          }))
          .where('id', '=', id)
          .where(runnable(now)),
    });
    if (won.length === 0) return [];
    const rows = await this.ctx.db
      .selectFrom('import_jobs')
      .selectAll()
      .where(
        'id',
        'in',
        won.map((row) => row.id),
      )
      .where('claimed_by', '=', request.owner)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map((row) => ({ ...toRecord(row), credentials: json<StoredCredentials>(row.credentials) }));
  }

  async renew(id: string, lease: Lease): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('import_jobs')
      .set({ claimed_until: lease.until, updated_at: lease.now })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .where('claimed_by', '=', lease.owner)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async saveProgress(id: string, owner: string, progress: ImportProgress, now: number): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('import_jobs')
      .set({ progress: JSON.stringify(progress), updated_at: now })
      .where('id', '=', id)
      .where('status', '=', 'running')
      .where('claimed_by', '=', owner)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async finish(id: string, worker: string, outcome: ImportOutcome, now: number): Promise<boolean> {
    const common = { claimed_by: null, claimed_until: null, updated_at: now };
    const values =
      outcome.status === 'succeeded'
        ? { ...common, status: 'succeeded', result: JSON.stringify(outcome.result), error_code: null, error_message: null, finished_at: now, credentials: null }
        : outcome.status === 'failed'
          ? { ...common, status: 'failed', error_code: outcome.error.code, error_message: storableText(outcome.error.message), finished_at: now }
          : { ...common, status: 'queued', error_code: outcome.error.code, error_message: storableText(outcome.error.message), not_before: outcome.notBefore };
    const result = await this.ctx.db
      .updateTable('import_jobs')
      .set(values)
      .where('id', '=', id)
      .where('status', '=', 'running')
      .where('claimed_by', '=', worker)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async release(id: string, worker: string, now: number): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('import_jobs')
      .set((eb) => ({ status: 'queued', claimed_by: null, claimed_until: null, not_before: now, updated_at: now, attempts: eb('attempts', '-', 1) }))
      .where('id', '=', id)
      .where('status', '=', 'running')
      .where('claimed_by', '=', worker)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async requeue(id: string, now: number, credentials: StoredCredentials | undefined): Promise<boolean> {
    const result = await this.ctx.db
      .updateTable('import_jobs')
      .set({
        status: 'queued',
        attempts: 0,
        not_before: now,
        finished_at: null,
        updated_at: now,
        ...(credentials ? { credentials: JSON.stringify(credentials) } : {}),
      })
      .where('id', '=', id)
      .where('status', '=', 'failed')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async expireCredentials(cutoff: number): Promise<number> {
    const result = await this.ctx.db
      .updateTable('import_jobs')
      .set({ credentials: null })
      .where('credentials', 'is not', null)
      .where('finished_at', '<', cutoff)
      .where('status', 'in', ['succeeded', 'failed'])
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  async prune(cutoff: number): Promise<number> {
    const result = await this.ctx.db
      .deleteFrom('import_jobs')
      .where('finished_at', '<', cutoff)
      .where('status', 'in', ['succeeded', 'failed'])
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
