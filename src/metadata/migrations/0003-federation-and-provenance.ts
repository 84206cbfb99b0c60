/**
 * 0003-federation-and-provenance: Workload identity federation (federated credentials) and push records with provenance.
 * Released: never edit (the name is recorded in every database it ran on); change the schema in a new migration.
 */
import type { Kysely, Migration } from 'kysely';
import type { MigrationColumns } from './columns.js';

export function federationAndProvenance({ dialect, autoId, text }: MigrationColumns): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('federated_credentials')
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('principal_id', text, (c) => c.notNull().references('principals.id').onDelete('cascade'))
        .addColumn('name', text, (c) => c.notNull())
        .addColumn('issuer', text, (c) => c.notNull())
        .addColumn('audiences', text, (c) => c.notNull())
        .addColumn('subject', text, (c) => c.notNull())
        .addColumn('conditions', text, (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('federated_credentials_name', ['principal_id', 'name'])
        .execute();
      await db.schema.createIndex('federated_credentials_issuer').on('federated_credentials').column('issuer').execute();
      await db.schema
        .createTable('pushes')
        .addColumn('id', autoId, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
        .addColumn('repository_id', 'bigint', (c) => c.notNull().references('repositories.id'))
        .addColumn('digest', text, (c) => c.notNull())
        .addColumn('tag', text)
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('principal_id', text)
        .addColumn('principal_name', text)
        .addColumn('provenance', text)
        .execute();
      await db.schema.createIndex('pushes_repository').on('pushes').columns(['repository_id', 'tag', 'at']).execute();
      await db.schema.createIndex('pushes_digest').on('pushes').columns(['repository_id', 'digest']).execute();
    },
  };
}
