/**
 * 0007-retention: periodic tasks one replica runs at a time (`scheduled_tasks`, leased like the job
 * tables), and the indexes retention pruning deletes by (audit entries by time, refresh tokens by
 * expiry).
 * Released: never edit (the name is recorded in every database it ran on); change the schema in a new migration.
 */
import type { Kysely, Migration } from 'kysely';
import type { MigrationColumns } from './columns.js';

export function retention({ text }: MigrationColumns): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('scheduled_tasks')
        .addColumn('name', text, (c) => c.primaryKey())
        .addColumn('due_at', 'bigint', (c) => c.notNull())
        .addColumn('claimed_by', text)
        .addColumn('claimed_until', 'bigint')
        .addColumn('last_run_at', 'bigint')
        .addColumn('last_error', text)
        .execute();
      await db.schema.createIndex('audit_log_at').on('audit_log').column('at').execute();
      await db.schema.createIndex('refresh_tokens_expires_at').on('refresh_tokens').column('expires_at').execute();
    },
  };
}
