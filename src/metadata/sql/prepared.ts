/**
 * Read queries on the registry's hot paths, built and compiled by Kysely once per database and then
 * run with fresh parameters.
 *
 * Why: Kysely builds an immutable operation tree and compiles it to SQL on every call. For a
 * manifest GET by tag that is most of the request's garbage: a sampling allocation profile of a
 * manifest GET load put 44% of all bytes allocated under Kysely's builder, compiler and executor,
 * and at ~15,000 requests/s the young generation then promotes enough in-flight objects that the
 * old generation swings between 19 and 76 MiB. The SQL text of such a query never changes; only
 * its parameters do, and those Kysely keeps apart in `parameters`.
 *
 * Contract for `build`: each argument may only be used as a bound value (`where(col, '=', arg)`),
 * never transformed, compared, spread or used to choose the query's shape; and arguments are
 * scalars (no arrays: an `in` list changes the SQL with its length). The template is checked when
 * it is compiled: every argument must reach the parameters unchanged, or compiling throws.
 *
 * A database may also offer a direct reader (`readDirectly`, SQLite: open.ts), which runs the
 * compiled SQL at once when its connection is free, instead of through Kysely's executor (a
 * connection provider, a mutex and four awaits per query: about a fifth of a manifest GET's garbage).
 *
 * Writes on the push path are compiled the same way (`preparedStatement`: the statement with its
 * parameters, for SqlContext.write to run), and a database may offer a direct writer for them
 * (`writeDirectly`): the statements of one write as one transaction, at once, when the connection
 * is free. A 64 KiB push wrote five statements through Kysely's builder, compiler and executor,
 * three of them in a transaction. The group commits' multi-row inserts (an audit entry and a refresh
 * token per grant) are compiled once per number of rows (`preparedRows`) and written the same way.
 */
import type { Compilable, Kysely } from 'kysely';
import { CompiledQuery } from '../kysely.js';
import type { Schema } from '../schema.js';

type Scalar = string | number;
/** What a write may bind: a scalar or SQL NULL. */
type Value = Scalar | null;

/** What a direct reader answers when it cannot read now (its connection is in use): go through Kysely. */
export const busy: unique symbol = Symbol('busy');

/**
 * Runs `sql` with `parameters` and answers its first row (undefined: none), or with `all` every
 * row (an array), or `busy`. Contract: it reads exactly what Kysely's executor would on the same
 * database at that moment, so it answers `busy` whenever the connection is held (a transaction, a
 * query, a stream in progress), and it never reads inside someone else's transaction. A query that was issued but does not hold the
 * connection yet (its acquire is a microtask away) may be overtaken: a caller that needs its own
 * write awaits it before reading, as it must through Kysely too.
 */
export type DirectReader = (sql: string, parameters: readonly unknown[], all: boolean) => unknown;

const directReaders = new WeakMap<Kysely<Schema>, DirectReader>();

/** Registers `db`'s direct reader (see the module comment). */
export function readDirectly(db: Kysely<Schema>, reader: DirectReader): void {
  directReaders.set(db, reader);
}

/** A compiled statement with the parameters of one call. */
export interface BoundStatement {
  readonly sql: string;
  readonly parameters: unknown[];
}

/**
 * Runs `statements` in order as one transaction (one statement: on its own) and answers each one's
 * rows (a statement without RETURNING: none), or `busy`, under the direct reader's contract: `busy`
 * whenever the connection is held, never inside someone else's transaction. A statement that fails
 * rolls back those before it and throws.
 */
export type DirectWriter = (statements: readonly BoundStatement[]) => unknown[][] | typeof busy;

const directWriters = new WeakMap<Kysely<Schema>, DirectWriter>();

/** Registers `db`'s direct writer (see the module comment). */
export function writeDirectly(db: Kysely<Schema>, writer: DirectWriter): void {
  directWriters.set(db, writer);
}

/** `db`'s direct writer, if it has one. */
export function directWriterOf(db: Kysely<Schema>): DirectWriter | undefined {
  return directWriters.get(db);
}

interface Template {
  sql: string;
  /** For each SQL parameter: the index of the argument it takes, or the constant it always has. */
  slots: readonly ({ arg: number } | { value: unknown })[];
}

/**
 * Stand-ins for the arguments while the template is compiled; a query holds no such constant of its
 * own (NUL bytes occur in no name, tag, digest or id). Callers' values are never inspected.
 */
const placeholderPrefix = '\u0000berth-prepared-argument-';
const placeholder = (index: number): string => `${placeholderPrefix}${index}\u0000`;

const misuse = 'a prepared query must bind each of its arguments, unchanged, as a value';
const unlisted = 'a prepared list of rows must name every column its rows have, and no other';

function templateOf(query: Compilable<unknown>, placeholders: readonly string[]): Template {
  const { sql, parameters } = query.compile();
  const used = new Set<number>();
  const slots = parameters.map((value) => {
    const index = typeof value === 'string' ? placeholders.indexOf(value) : -1;
    if (index === -1) {
      // A placeholder with something added (`${name}%`) is an argument transformed.
      if (typeof value === 'string' && value.startsWith(placeholderPrefix)) throw new Error(misuse);
      return { value };
    }
    used.add(index);
    return { arg: index };
  });
  // An argument transformed (`name.toUpperCase()`) or never bound leaves its placeholder unused.
  if (used.size !== placeholders.length) throw new Error(misuse);
  return { sql, slots };
}

/**
 * A statement `build` describes, compiled once per database: each call answers it with that call's
 * arguments bound. For writes, SqlContext.write runs what it answers (alone or with others, as one
 * transaction); `preparedFirst` and `preparedAll` below run reads with it. Always pass the database
 * itself, never a transaction (a transaction is another object, and would compile again).
 */
export function preparedStatement<Args extends readonly Value[]>(
  build: (db: Kysely<Schema>, ...args: Args) => Compilable<unknown>,
): (db: Kysely<Schema>, ...args: Args) => BoundStatement {
  const templates = new WeakMap<Kysely<Schema>, Template>();
  return (db, ...args) => {
    let template = templates.get(db);
    if (!template) {
      const placeholders = args.map((_, i) => placeholder(i));
      template = templateOf(build(db, ...(placeholders as unknown as Args)), placeholders);
      templates.set(db, template);
    }
    return { sql: template.sql, parameters: template.slots.map((slot) => ('arg' in slot ? args[slot.arg] : slot.value)) };
  };
}

/** Compiles `build` once per database and runs it with fresh arguments: every row, or (`first`) the first. */
function prepared<Args extends readonly Scalar[], Row>(
  build: (db: Kysely<Schema>, ...args: Args) => Compilable<Row>,
  first: boolean,
): (db: Kysely<Schema>, ...args: Args) => Promise<Row[] | Row | undefined> {
  const bind = preparedStatement(build);
  return async (db, ...args) => {
    const { sql, parameters } = bind(db, ...args);
    const direct = directReaders.get(db);
    if (direct) {
      const result = direct(sql, parameters, !first);
      if (result !== busy) return result as Row[] | Row | undefined;
    }
    const { rows } = await db.executeQuery<Row>(CompiledQuery.raw(sql, parameters));
    return first ? rows[0] : rows;
  };
}

/**
 * A function running the query `build` describes with the given arguments and answering its first
 * row (or undefined), compiling the query once per database. Only for reads outside transactions.
 */
export function preparedFirst<Args extends readonly Scalar[], Row>(
  build: (db: Kysely<Schema>, ...args: Args) => Compilable<Row>,
): (db: Kysely<Schema>, ...args: Args) => Promise<Row | undefined> {
  return prepared(build, true) as (db: Kysely<Schema>, ...args: Args) => Promise<Row | undefined>;
}

/** The same as `preparedFirst`, answering every row, in the query's order. */
export function preparedAll<Args extends readonly Scalar[], Row>(
  build: (db: Kysely<Schema>, ...args: Args) => Compilable<Row>,
): (db: Kysely<Schema>, ...args: Args) => Promise<Row[]> {
  return prepared(build, false) as (db: Kysely<Schema>, ...args: Args) => Promise<Row[]>;
}

/**
 * A statement over a list of rows (a group commit's multi-row insert, group-commit.ts), compiled
 * once per database and number of rows: each call answers it with its rows' values bound. `build`
 * must bind every column of every row, unchanged, in the order given (row by row, `columns` in
 * order), which Kysely's `values(rows)` does; compiling checks it, and that the rows have exactly
 * `columns` (a field left out of `columns` would silently go unwritten). Every row gives every column
 * (a value or null), so the SQL never depends on which optional fields a row has. Callers keep their
 * batches at a few hundred parameters at most (maxBatch), which bounds the number of templates.
 */
export function preparedRows<Row extends Record<string, Value>>(
  columns: readonly (keyof Row & string)[],
  build: (db: Kysely<Schema>, rows: Row[]) => Compilable<unknown>,
): (db: Kysely<Schema>, rows: readonly Row[]) => BoundStatement {
  const templates = new WeakMap<Kysely<Schema>, Map<number, string>>();
  return (db, rows) => {
    let bySize = templates.get(db);
    if (!bySize) templates.set(db, (bySize = new Map()));
    let sql = bySize.get(rows.length);
    if (sql === undefined) {
      // A field the rows have and `columns` does not name would never be written: refuse it here.
      const given = Object.keys(rows[0] ?? {});
      if (given.length !== columns.length || given.some((key) => !columns.includes(key))) throw new Error(unlisted);
      const placeholders = Array.from({ length: rows.length * columns.length }, (_, i) => placeholder(i));
      const stand = Array.from({ length: rows.length }, (_, r) => Object.fromEntries(columns.map((c, i) => [c, placeholders[r * columns.length + i]])) as Row);
      const compiled = build(db, stand).compile();
      if (compiled.parameters.length !== placeholders.length || compiled.parameters.some((value, i) => value !== placeholders[i])) throw new Error(misuse);
      sql = compiled.sql;
      bySize.set(rows.length, sql);
    }
    const parameters: Value[] = [];
    for (const row of rows) for (const column of columns) parameters.push(row[column] as Value);
    return { sql, parameters };
  };
}
