/**
 * 0006-sync: Selective sync: rules, the work queue, per-image status and received deliveries.
 * Released: never edit (the name is recorded in every database it ran on); change the schema in a new migration.
 */
import type { Kysely, Migration } from 'kysely';
import type { MigrationColumns } from './columns.js';

export function sync({ text }: MigrationColumns): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('sync_rules')
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('name', text, (c) => c.notNull().unique())
        .addColumn('spec', text, (c) => c.notNull())
        .addColumn('webhook_secret', text)
        .addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('next_reconcile_at', 'bigint')
        .addColumn('run_requested_at', 'bigint')
        .addColumn('reconcile_claimed_by', text)
        .addColumn('reconcile_claimed_until', 'bigint')
        .addColumn('last_reconcile_started_at', 'bigint')
        .addColumn('last_reconcile_at', 'bigint')
        .addColumn('last_reconcile_error', text)
        .addColumn('last_reconcile_stats', text)
        .addColumn('backfilled_at', 'bigint')
        .addColumn('last_sync_at', 'bigint')
        .addColumn('last_error', text)
        .addColumn('last_error_at', 'bigint')
        .execute();
      await db.schema
        .createTable('sync_queue')
        .addColumn('rule_id', text, (c) => c.notNull().references('sync_rules.id').onDelete('cascade'))
        .addColumn('repository', text, (c) => c.notNull())
        .addColumn('tag', text, (c) => c.notNull())
        .addColumn('digest', text)
        .addColumn('reason', text, (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('enqueued_at', 'bigint', (c) => c.notNull())
        .addColumn('not_before', 'bigint', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('last_error', text)
        .addColumn('claimed_by', text)
        .addColumn('claimed_until', 'bigint')
        .addPrimaryKeyConstraint('sync_queue_pk', ['rule_id', 'repository', 'tag'])
        .execute();
      await db.schema.createIndex('sync_queue_due').on('sync_queue').columns(['not_before', 'enqueued_at']).execute();
      await db.schema
        .createTable('sync_images')
        .addColumn('rule_id', text, (c) => c.notNull().references('sync_rules.id').onDelete('cascade'))
        .addColumn('repository', text, (c) => c.notNull())
        .addColumn('tag', text, (c) => c.notNull())
        .addColumn('source_digest', text)
        .addColumn('digest', text)
        .addColumn('last_checked_at', 'bigint')
        .addColumn('last_sync_at', 'bigint')
        .addColumn('last_error', text)
        .addColumn('last_error_at', 'bigint')
        .addColumn('copies', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('sync_images_pk', ['rule_id', 'repository', 'tag'])
        .execute();
      await db.schema
        .createTable('sync_deliveries')
        .addColumn('rule_id', text, (c) => c.notNull().references('sync_rules.id').onDelete('cascade'))
        .addColumn('event_id', text, (c) => c.notNull())
        .addColumn('received_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('sync_deliveries_pk', ['rule_id', 'event_id'])
        .execute();
      await db.schema.createIndex('sync_deliveries_received').on('sync_deliveries').column('received_at').execute();
    },
  };
}
