/**
 * 0001-registry-core: The registry itself: repositories, blobs and their per-repository links, manifests (bytes by digest,
 * rows per repository), reference edges, tags and upload sessions.
 * Released: never edit (the name is recorded in every database it ran on); change the schema in a new migration.
 */
import type { Kysely, Migration } from 'kysely';
import { sql } from '../kysely.js';
import type { MigrationColumns } from './columns.js';

export function registryCore({ dialect, bytes, autoId, text }: MigrationColumns): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('repositories')
        .addColumn('id', autoId, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
        .addColumn('name', text, (c) => c.notNull().unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('blobs')
        .addColumn('digest', text, (c) => c.primaryKey())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('pushed_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('repository_blobs')
        .addColumn('repository_id', 'bigint', (c) => c.notNull().references('repositories.id'))
        .addColumn('digest', text, (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('repository_blobs_pk', ['repository_id', 'digest'])
        .execute();
      await db.schema.createIndex('repository_blobs_digest').on('repository_blobs').column('digest').execute();
      await db.schema
        .createTable('manifest_contents')
        .addColumn('digest', text, (c) => c.primaryKey())
        .addColumn('content', sql.raw(bytes), (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('manifests')
        .addColumn('repository_id', 'bigint', (c) => c.notNull().references('repositories.id'))
        .addColumn('digest', text, (c) => c.notNull())
        .addColumn('media_type', text, (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('subject_digest', text)
        .addColumn('artifact_type', text)
        .addColumn('annotations', text)
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('manifests_pk', ['repository_id', 'digest'])
        .execute();
      await db.schema.createIndex('manifests_subject').on('manifests').columns(['repository_id', 'subject_digest']).execute();
      await db.schema.createIndex('manifests_digest').on('manifests').column('digest').execute();
      await db.schema
        .createTable('manifest_references')
        .addColumn('repository_id', 'bigint', (c) => c.notNull())
        .addColumn('manifest_digest', text, (c) => c.notNull())
        .addColumn('child_digest', text, (c) => c.notNull())
        .addColumn('kind', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('manifest_references_pk', ['repository_id', 'manifest_digest', 'child_digest'])
        .execute();
      await db.schema.createIndex('manifest_references_child').on('manifest_references').column('child_digest').execute();
      await db.schema
        .createTable('tags')
        .addColumn('repository_id', 'bigint', (c) => c.notNull().references('repositories.id'))
        .addColumn('name', text, (c) => c.notNull())
        .addColumn('digest', text, (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('tags_pk', ['repository_id', 'name'])
        .execute();
      await db.schema.createIndex('tags_digest').on('tags').columns(['repository_id', 'digest']).execute();
      await db.schema
        .createTable('uploads')
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('repository_id', 'bigint', (c) => c.notNull().references('repositories.id'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  };
}
