/**
 * 0060-attestations: the keys that sign push attestations (issue 18). Retired keys are kept: their
 * public halves verify the attestations they signed.
 */
import type { Kysely, Migration } from 'kysely';
import type { MigrationColumns } from './columns.js';

export function attestations({ text }: MigrationColumns): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('attestation_keys')
        .addColumn('id', text, (c) => c.primaryKey())
        .addColumn('algorithm', text, (c) => c.notNull())
        .addColumn('private_pem', text, (c) => c.notNull())
        .addColumn('public_pem', text, (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('retired_at', 'bigint')
        .execute();
    },
  };
}
