/**
 * The column types a migration writes, per dialect: every migration is written once, with Kysely's
 * schema builder, for both SQLite and PostgreSQL.
 */
import type { RawBuilder } from 'kysely';
import { sql } from '../kysely.js';

export type Dialect = 'sqlite' | 'postgres';

export interface MigrationColumns {
  dialect: Dialect;
  /** Raw bytes (manifest contents). */
  bytes: 'bytea' | 'blob';
  /** An auto-incrementing id: with `primaryKey()`, plus `autoIncrement()` on SQLite. */
  autoId: 'bigserial' | 'integer';
  /**
   * Text that compares and sorts by bytes everywhere (SQLite's BINARY collation): catalog and
   * tag-list pagination (`last=`) and every ORDER BY must not depend on the PostgreSQL server's
   * locale, so PostgreSQL text columns get the "C" collation.
   */
  text: 'text' | RawBuilder<unknown>;
}

export function migrationColumns(dialect: Dialect): MigrationColumns {
  return {
    dialect,
    bytes: dialect === 'postgres' ? 'bytea' : 'blob',
    autoId: dialect === 'postgres' ? 'bigserial' : 'integer',
    text: dialect === 'postgres' ? sql`text collate "C"` : 'text',
  };
}
