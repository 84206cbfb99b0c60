/**
 * 0002-auth: The token service: principals, their credentials and grants, refresh tokens, signing keys, the
 * audit log and the anonymous-pull patterns.
 * Released: never edit (the name is recorded in every database it ran on); change the schema in a new migration.
 */
import type { Kysely, Migration } from 'kysely';
import type { MigrationColumns } from './columns.js';

export function auth({ dialect, autoId, text }: MigrationColumns): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('principals')
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('kind', text, (c) => c.notNull())
        .addColumn('name', text, (c) => c.notNull().unique())
        .addColumn('description', text)
        .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('expires_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('credentials')
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('principal_id', text, (c) => c.notNull().references('principals.id').onDelete('cascade'))
        .addColumn('label', text, (c) => c.notNull())
        .addColumn('hash', text, (c) => c.notNull())
        .addColumn('expires_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('credentials_label', ['principal_id', 'label'])
        .execute();
      await db.schema
        .createTable('grants')
        .addColumn('principal_id', text, (c) => c.notNull().references('principals.id').onDelete('cascade'))
        .addColumn('pattern', text, (c) => c.notNull())
        .addColumn('permission', text, (c) => c.notNull())
        .addPrimaryKeyConstraint('grants_pk', ['principal_id', 'pattern', 'permission'])
        .execute();
      await db.schema
        .createTable('refresh_tokens')
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('principal_id', text, (c) => c.notNull().references('principals.id').onDelete('cascade'))
        .addColumn('credential_id', text)
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .execute();
      await db.schema.createIndex('refresh_tokens_principal').on('refresh_tokens').column('principal_id').execute();
      await db.schema
        .createTable('signing_keys')
        .addColumn('kid', text, (c) => c.primaryKey())
        .addColumn('alg', text, (c) => c.notNull())
        .addColumn('private_jwk', text, (c) => c.notNull())
        .addColumn('public_jwk', text, (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('retired_at', 'bigint')
        .execute();
      await db.schema
        .createTable('audit_log')
        .addColumn('id', autoId, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('event', text, (c) => c.notNull())
        .addColumn('principal_id', text)
        .addColumn('principal_name', text)
        .addColumn('client_address', text)
        .addColumn('detail', text)
        .execute();
      await db.schema
        .createTable('anonymous_pull')
        .addColumn('pattern', text, (c) => c.primaryKey())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  };
}
