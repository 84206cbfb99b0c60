/**
 * 0070-flat-uploads: which storage layout an upload session's object uses. Sessions begun from now
 * on write one object per upload, `uploads/<id>`; those begun before keep `uploads/<id>/data`
 * (`directory`, the column's default for existing rows), so an upload in flight across the upgrade
 * continues where it was (src/storage/paths.ts).
 */
import type { Kysely, Migration } from 'kysely';
import type { MigrationColumns } from './columns.js';

export function flatUploads({ text }: MigrationColumns): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('uploads')
        .addColumn('layout', text, (c) => c.notNull().defaultTo('directory'))
        .execute();
    },
  };
}
