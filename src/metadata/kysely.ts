/**
 * Kysely's values (the query builder, `sql`, the dialects, the migrator), loaded from its
 * CommonJS build. Every value import of Kysely in `metadata/` goes through this file (lint:
 * `no-restricted-imports` in eslint.config.js); type imports from 'kysely' are fine.
 *
 * Why: Kysely's ES-module build is about 260 module files, and Node keeps a module record, its
 * source text and its bindings for each. Measured on `berth serve` at idle: the CommonJS build of the
 * same code costs about 5 MiB less RSS and 10 MiB less peak RSS at start. The two
 * builds must not both load (their classes would differ), hence the one door.
 */
import { createRequire } from 'node:module';
import type * as K from 'kysely';

type KyselyModule = typeof K;

const kysely = createRequire(import.meta.url)('kysely') as KyselyModule;

export const Kysely = kysely.Kysely;
export type Kysely<DB> = K.Kysely<DB>;
export const sql = kysely.sql;
export const CompiledQuery = kysely.CompiledQuery;
export type CompiledQuery<O = unknown> = K.CompiledQuery<O>;
export const Migrator = kysely.Migrator;
export const SqliteDialect = kysely.SqliteDialect;
export const SqliteDriver = kysely.SqliteDriver;
export const PostgresDialect = kysely.PostgresDialect;
