/**
 * 0011-token-bounds: what the token service needs to keep derived tokens within what bought them.
 * - `refresh_tokens.credential_kind`: whether `credential_id` names a secret (`secret`) or a
 *   federated credential (`federated`), so every redemption re-checks that it still exists and has
 *   not expired. Rows from before have none; the token service then looks in both tables.
 * - `signing_keys.revoked_at`: a revoked key verifies nothing any more (`berth keys revoke`).
 * - `instance_settings`: values that identify this installation, shared by its replicas (the
 *   generated federation audience when none is configured).
 * Released: never edit (the name is recorded in every database it ran on); change the schema in a new migration.
 */
import type { Kysely, Migration } from 'kysely';
import type { MigrationColumns } from './columns.js';

export function tokenBounds({ text }: MigrationColumns): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('refresh_tokens').addColumn('credential_kind', text).execute();
      await db.schema.alterTable('signing_keys').addColumn('revoked_at', 'bigint').execute();
      await db.schema
        .createTable('instance_settings')
        .addColumn('name', text, (c) => c.primaryKey())
        .addColumn('value', text, (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  };
}
