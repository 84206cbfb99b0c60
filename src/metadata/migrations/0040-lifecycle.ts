/**
 * 0040-lifecycle: Lifecycle policies (retention, immutability, quotas) and what they keep: schedules,
 * retention runs with their actions, last pulls per manifest, storage usage per repository and per quota.
 * Released: never edit (the name is recorded in every database it ran on); change the schema in a new migration.
 */
import type { Kysely, Migration } from 'kysely';
import type { MigrationColumns } from './columns.js';

export function lifecycle({ dialect, autoId, text }: MigrationColumns): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('lifecycle_policies')
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('kind', text, (c) => c.notNull())
        .addColumn('name', text, (c) => c.notNull())
        .addColumn('spec', text, (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('lifecycle_policies_name', ['kind', 'name'])
        .execute();
      await db.schema
        .createTable('lifecycle_schedule')
        .addColumn('name', text, (c) => c.primaryKey())
        .addColumn('next_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('lifecycle_runs')
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('kind', text, (c) => c.notNull())
        .addColumn('policy_id', text)
        .addColumn('policy_name', text, (c) => c.notNull())
        .addColumn('spec', text)
        .addColumn('dry_run', 'integer', (c) => c.notNull())
        .addColumn('trigger', text, (c) => c.notNull())
        .addColumn('status', text, (c) => c.notNull())
        .addColumn('requested_by', text)
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('claimed_by', text)
        .addColumn('claimed_until', 'bigint')
        .addColumn('progress', text)
        .addColumn('error', text)
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('started_at', 'bigint')
        .addColumn('finished_at', 'bigint')
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('lifecycle_runs_status').on('lifecycle_runs').columns(['status', 'created_at']).execute();
      await db.schema.createIndex('lifecycle_runs_policy').on('lifecycle_runs').columns(['policy_name', 'created_at']).execute();
      await db.schema
        .createTable('lifecycle_run_actions')
        .addColumn('id', autoId, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
        .addColumn('run_id', text, (c) => c.notNull().references('lifecycle_runs.id').onDelete('cascade'))
        .addColumn('repository', text, (c) => c.notNull())
        .addColumn('action', text, (c) => c.notNull())
        .addColumn('digest', text, (c) => c.notNull())
        .addColumn('tags', text, (c) => c.notNull())
        .addColumn('reason', text, (c) => c.notNull())
        .addColumn('outcome', text, (c) => c.notNull())
        .addColumn('detail', text)
        .addColumn('at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('lifecycle_run_actions_run').on('lifecycle_run_actions').columns(['run_id', 'id']).execute();
      await db.schema
        .createTable('manifest_pulls')
        .addColumn('repository_id', 'bigint', (c) => c.notNull().references('repositories.id'))
        .addColumn('digest', text, (c) => c.notNull())
        .addColumn('last_pulled_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('manifest_pulls_pk', ['repository_id', 'digest'])
        .execute();
      await db.schema
        .createTable('repository_usage')
        .addColumn('repository_id', 'bigint', (c) => c.primaryKey().references('repositories.id'))
        .addColumn('logical_bytes', 'bigint', (c) => c.notNull())
        .addColumn('exclusive_bytes', 'bigint', (c) => c.notNull())
        .addColumn('manifests', 'bigint', (c) => c.notNull())
        .addColumn('blobs', 'bigint', (c) => c.notNull())
        .addColumn('computed_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('quota_usage')
        .addColumn('policy_id', text, (c) => c.primaryKey().references('lifecycle_policies.id').onDelete('cascade'))
        .addColumn('usage_bytes', 'bigint', (c) => c.notNull())
        .addColumn('delta_bytes', 'bigint', (c) => c.notNull())
        .addColumn('state', text, (c) => c.notNull())
        .addColumn('state_changed_at', 'bigint', (c) => c.notNull())
        .addColumn('computed_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  };
}
