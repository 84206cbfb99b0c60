import { sql } from '../kysely.js';
import type { Page, RepositoryIndex } from '../store.js';
import { pageLimit, type SqlContext } from './context.js';

/** Upper bound on one catalog page, whatever `n` asks for. */
export const maxCatalogPage = 10_000;

export class SqlRepositoryIndex implements RepositoryIndex {
  constructor(private readonly ctx: SqlContext) {}

  async list(page: Page, filter: { contains?: string | undefined } = {}): Promise<string[]> {
    let query = this.ctx.db
      .selectFrom('repositories as r')
      .select('r.name')
      .where((eb) => eb.exists(eb.selectFrom('manifests as m').select('m.digest').whereRef('m.repository_id', '=', 'r.id')))
      .orderBy('r.name')
      .limit(pageLimit(page.n, maxCatalogPage));
    if (page.last !== undefined) query = query.where('r.name', '>', page.last);
    // A substring test without LIKE, so `%` and `_` in the search are plain characters.
    const contains = filter.contains;
    if (contains)
      query = query.where(this.ctx.dialect === 'postgres' ? sql<boolean>`strpos(r.name, ${contains}) > 0` : sql<boolean>`instr(r.name, ${contains}) > 0`);
    return (await query.execute()).map((row) => row.name);
  }

  async exists(name: string): Promise<boolean> {
    return (await this.ctx.findRepositoryId(name)) !== undefined;
  }
}
