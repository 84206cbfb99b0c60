/**
 * 0020-operability: the audit log's repository (for filtering), its export outbox (one row per
 * entry and sink until the sink has it), and the record of garbage-collection runs (for metrics).
 */
import type { Kysely, Migration } from 'kysely';
import type { MigrationColumns } from './columns.js';

export function operability({ text, autoId, dialect }: MigrationColumns): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('audit_log').addColumn('repository', text).execute();
      // Filters of GET /api/v1/audit, newest first (by id); the time range uses 0007's audit_log_at.
      await db.schema.createIndex('audit_log_principal').on('audit_log').columns(['principal_id', 'id']).execute();
      await db.schema.createIndex('audit_log_repository').on('audit_log').columns(['repository', 'id']).execute();
      await db.schema.createIndex('audit_log_event').on('audit_log').columns(['event', 'id']).execute();
      await db.schema
        .createTable('audit_exports')
        .addColumn('sink', text, (c) => c.notNull())
        .addColumn('entry_id', 'bigint', (c) => c.notNull().references('audit_log.id').onDelete('cascade'))
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
        .addColumn('claimed_by', text)
        .addColumn('claimed_until', 'bigint')
        .addColumn('last_error', text)
        .addPrimaryKeyConstraint('audit_exports_pk', ['sink', 'entry_id'])
        .execute();
      await db.schema.createIndex('audit_exports_due').on('audit_exports').columns(['sink', 'next_attempt_at', 'entry_id']).execute();
      await db.schema.createIndex('audit_exports_entry').on('audit_exports').column('entry_id').execute();
      await db.schema
        .createTable('gc_runs')
        .addColumn('id', autoId, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('finished_at', 'bigint', (c) => c.notNull())
        .addColumn('status', text, (c) => c.notNull())
        .addColumn('blobs', 'bigint', (c) => c.notNull())
        .addColumn('bytes', 'bigint', (c) => c.notNull())
        .addColumn('uploads', 'bigint', (c) => c.notNull())
        .execute();
    },
  };
}
