/**
 * 0005-import-jobs: Import jobs (leased, retried, with progress).
 * Released: never edit (the name is recorded in every database it ran on); change the schema in a new migration.
 */
import type { Kysely, Migration } from 'kysely';
import type { MigrationColumns } from './columns.js';

export function importJobs({ text }: MigrationColumns): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('import_jobs')
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('status', text, (c) => c.notNull())
        .addColumn('spec', text, (c) => c.notNull())
        .addColumn('credentials', text)
        .addColumn('requested_by_id', text)
        .addColumn('requested_by_name', text)
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('not_before', 'bigint', (c) => c.notNull())
        .addColumn('claimed_by', text)
        .addColumn('claimed_until', 'bigint')
        .addColumn('progress', text)
        .addColumn('result', text)
        .addColumn('error_code', text)
        .addColumn('error_message', text)
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('started_at', 'bigint')
        .addColumn('finished_at', 'bigint')
        .execute();
      await db.schema.createIndex('import_jobs_runnable').on('import_jobs').columns(['status', 'not_before']).execute();
      await db.schema.createIndex('import_jobs_requester').on('import_jobs').columns(['requested_by_id', 'created_at']).execute();
    },
  };
}
