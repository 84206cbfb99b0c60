/**
 * 0030-console: The web console's sessions (an opaque id held in a cookie, stored only as its
 * SHA-256) and the link between a single-sign-on identity (issuer + subject) and the principal it
 * signs in as.
 * Released: never edit (the name is recorded in every database it ran on); change the schema in a new migration.
 */
import type { Kysely, Migration } from 'kysely';
import type { MigrationColumns } from './columns.js';

export function consoleSessions({ text }: MigrationColumns): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('console_sessions')
        .addColumn('id_hash', text, (c) => c.primaryKey())
        .addColumn('principal_id', text, (c) => c.notNull().references('principals.id').onDelete('cascade'))
        .addColumn('method', text, (c) => c.notNull())
        .addColumn('provider', text)
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('console_sessions_principal').on('console_sessions').column('principal_id').execute();
      await db.schema
        .createTable('console_identities')
        .addColumn('issuer', text, (c) => c.notNull())
        .addColumn('subject', text, (c) => c.notNull())
        .addColumn('provider', text, (c) => c.notNull())
        .addColumn('principal_id', text, (c) => c.notNull().references('principals.id').onDelete('cascade'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_sign_in_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('console_identities_pk', ['issuer', 'subject'])
        .execute();
      await db.schema.createIndex('console_identities_principal').on('console_identities').column('principal_id').execute();
    },
  };
}
