/**
 * 0004-webhooks: Webhooks: subscriptions, the event outbox, deliveries and their attempts.
 * Released: never edit (the name is recorded in every database it ran on); change the schema in a new migration.
 */
import type { Kysely, Migration } from 'kysely';
import type { MigrationColumns } from './columns.js';

export function webhooks({ dialect, autoId, text }: MigrationColumns): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('webhooks')
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('name', text, (c) => c.notNull().unique())
        .addColumn('url', text, (c) => c.notNull())
        .addColumn('events', text, (c) => c.notNull())
        .addColumn('filters', text, (c) => c.notNull())
        .addColumn('headers', text, (c) => c.notNull())
        .addColumn('secret', text, (c) => c.notNull())
        .addColumn('previous_secret', text)
        .addColumn('previous_secret_until', 'bigint')
        .addColumn('format', text, (c) => c.notNull())
        .addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('events')
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('action', text, (c) => c.notNull())
        .addColumn('repository', text)
        .addColumn('tags', text, (c) => c.notNull())
        .addColumn('digest', text)
        .addColumn('payload', text, (c) => c.notNull())
        .addColumn('subscription_id', text)
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('fanned_out_at', 'bigint')
        .execute();
      await db.schema.createIndex('events_fan_out').on('events').columns(['fanned_out_at', 'created_at']).execute();
      await db.schema
        .createTable('deliveries')
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('event_id', text, (c) => c.notNull().references('events.id').onDelete('cascade'))
        .addColumn('subscription_id', text, (c) => c.notNull().references('webhooks.id').onDelete('cascade'))
        .addColumn('status', text, (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('cycle', 'integer', (c) => c.notNull())
        .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
        .addColumn('claimed_by', text)
        .addColumn('claimed_until', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('deliveries_event_subscription', ['event_id', 'subscription_id'])
        .execute();
      await db.schema.createIndex('deliveries_due').on('deliveries').columns(['status', 'next_attempt_at']).execute();
      await db.schema.createIndex('deliveries_subscription').on('deliveries').columns(['subscription_id', 'created_at']).execute();
      await db.schema
        .createTable('delivery_attempts')
        .addColumn('id', autoId, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
        .addColumn('delivery_id', text, (c) => c.notNull().references('deliveries.id').onDelete('cascade'))
        .addColumn('cycle', 'integer', (c) => c.notNull())
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('status_code', 'integer')
        .addColumn('error', text)
        .addColumn('latency_ms', 'integer', (c) => c.notNull())
        .addColumn('response_snippet', text)
        .addColumn('ok', 'integer', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('delivery_attempts_delivery').on('delivery_attempts').columns(['delivery_id', 'id']).execute();
    },
  };
}
