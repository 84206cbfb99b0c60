/**
 * Counts the database round trips each HTTP request makes, for bench/roundtrips.ts. It runs Berth in
 * the driver's own process (test/support/server.ts) so it can watch the drivers themselves:
 * - PostgreSQL: every `pg.Client#query` call is one round trip (Kysely sends each statement,
 *   `begin` and `commit` included, as one);
 * - SQLite: every execution of a prepared better-sqlite3 statement (`run`, `get`, `all`,
 *   `iterate`), which is one call into SQLite, not a network round trip.
 * Queries are attributed to the request whose handling issued them (AsyncLocalStorage around the
 * server's request listener), so the background work of the job runners is counted apart.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import Database from 'better-sqlite3';
import pg from 'pg';

export interface RequestQueries {
  /** The statements, in order, as "verb table" (e.g. `select manifests`, `begin`). */
  statements: string[];
}

const context = new AsyncLocalStorage<RequestQueries>();
let background = 0;
let installed = false;

/** "select manifests", "insert audit_log", "begin": what a statement does and to which tables. */
export function describeStatement(sql: string): string {
  const text = sql.trim().replace(/\s+/g, ' ');
  const verb = /^(\w+)/.exec(text)?.[1]?.toLowerCase() ?? '?';
  const table = (re: RegExp) => re.exec(text)?.[1]?.replace(/"/g, '') ?? '?';
  switch (verb) {
    case 'select': {
      // Every table the one statement reads: the outer FROM, its joins, then tables its subqueries
      // read (`select principals + federated_credentials + grants`). Subqueries are peeled off from
      // the innermost out, one linear pass per level of nesting.
      const inner: string[] = [];
      let outer = text;
      for (let peeled = outer.replace(/\(([^()]*)\)/g, peel(inner)); peeled !== outer; peeled = outer.replace(/\(([^()]*)\)/g, peel(inner))) outer = peeled;
      const joined = [...outer.matchAll(/\bjoin\s+("?[\w.]+"?)/gi)].map((m) => (m[1] ?? '?').replace(/"/g, ''));
      const outerFrom = /\bfrom\s+("?[\w.]+"?)/i.exec(outer)?.[1]?.replace(/"/g, '') ?? '?';
      // A derived table (`from (select … from tags) t`) leaves only the placeholder: name what it reads.
      const from = outerFrom === '_' ? (inner[0] ?? '?') : outerFrom;
      return `select ${[from, ...new Set([...joined, ...inner].filter((t) => t !== from))].join(' + ')}`;
    }
    case 'insert':
      return `insert ${table(/^insert\s+(?:or\s+\w+\s+)?into\s+("?[\w.]+"?)/i)}`;
    case 'update':
      return `update ${table(/^update\s+("?[\w.]+"?)/i)}`;
    case 'delete':
      return `delete ${table(/^delete\s+from\s+("?[\w.]+"?)/i)}`;
    case 'with':
      return `with … ${table(/\b(?:update|insert\s+into|delete\s+from)\s+("?[\w.]+"?)/i)}`;
    default:
      return verb;
  }
}

/** A replacer that notes the tables a parenthesised subquery reads and leaves a placeholder. */
function peel(tables: string[]): (whole: string, body: string) => string {
  return (_whole, body) => {
    for (const m of body.matchAll(/\b(?:from|join)\s+("?[\w.]+"?)/gi)) tables.push((m[1] ?? '?').replace(/"/g, ''));
    return '_';
  };
}

function record(sql: unknown): void {
  const store = context.getStore();
  if (store) store.statements.push(describeStatement(typeof sql === 'string' ? sql : String((sql as { text?: unknown })?.text ?? '')));
  else background++;
}

/** Wraps the drivers once per process. */
export function installQueryCounter(): void {
  if (installed) return;
  installed = true;
  const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    record(args[0]);
    return query.apply(this, args);
  } as typeof pg.Client.prototype.query;
  const probe = new Database(':memory:');
  const statement = Object.getPrototypeOf(probe.prepare('select 1')) as Record<string, (...args: unknown[]) => unknown>;
  probe.close();
  for (const method of ['run', 'get', 'all', 'iterate']) {
    const original = statement[method];
    if (typeof original !== 'function') continue;
    statement[method] = function (this: { source: string }, ...args: unknown[]) {
      record(this.source);
      return original.apply(this, args);
    };
  }
}

/** Runs every request of `server` in its own counting context; `last()` is the most recent one's. */
export function countPerRequest(server: Server): { last(): RequestQueries | undefined; background(): number } {
  const listeners = server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
  server.removeAllListeners('request');
  let last: RequestQueries | undefined;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const store: RequestQueries = { statements: [] };
    last = store;
    context.run(store, () => {
      for (const listener of listeners) listener.call(server, req, res);
    });
  });
  return { last: () => last, background: () => background };
}
