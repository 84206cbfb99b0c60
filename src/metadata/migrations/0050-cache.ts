/**
 * 0050-cache: the pull-through cache: rules managed through /api/v1, what is known of each cached
 * tag (when the upstream last confirmed it), when each cached manifest was last pulled (eviction),
 * and the per-rule eviction sweep's schedule and lease.
 * Released: never edit (the name is recorded in every database it ran on); change the schema in a new migration.
 */
import type { Kysely, Migration } from 'kysely';
import type { MigrationColumns } from './columns.js';

export function cache({ text }: MigrationColumns): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('cache_rules')
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('name', text, (c) => c.notNull().unique())
        .addColumn('spec', text, (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('cache_tags')
        .addColumn('repository', text, (c) => c.notNull())
        .addColumn('tag', text, (c) => c.notNull())
        .addColumn('rule', text, (c) => c.notNull())
        .addColumn('digest', text, (c) => c.notNull())
        .addColumn('checked_at', 'bigint', (c) => c.notNull())
        .addColumn('expired', 'integer', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('cache_tags_pk', ['repository', 'tag'])
        .execute();
      await db.schema.createIndex('cache_tags_rule').on('cache_tags').columns(['rule', 'repository', 'tag']).execute();
      await db.schema
        .createTable('cache_pulls')
        .addColumn('repository', text, (c) => c.notNull())
        .addColumn('digest', text, (c) => c.notNull())
        .addColumn('rule', text, (c) => c.notNull())
        .addColumn('cached_at', 'bigint', (c) => c.notNull())
        .addColumn('last_pulled_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('cache_pulls_pk', ['repository', 'digest'])
        .execute();
      await db.schema.createIndex('cache_pulls_rule').on('cache_pulls').columns(['rule', 'last_pulled_at']).execute();
      await db.schema
        .createTable('cache_sweeps')
        .addColumn('rule', text, (c) => c.primaryKey())
        .addColumn('next_at', 'bigint', (c) => c.notNull())
        .addColumn('claimed_by', text)
        .addColumn('claimed_until', 'bigint')
        .addColumn('last_run_at', 'bigint')
        .addColumn('last_evicted', 'integer')
        .addColumn('last_error', text)
        .execute();
    },
  };
}
