import type { Page, RepositoryIndex } from '../store.js';
import { pageLimit, type SqlContext } from './context.js';

/** Upper bound on one catalog page, whatever `n` asks for. */
export const maxCatalogPage = 10_000;

export class SqlRepositoryIndex implements RepositoryIndex {
  constructor(private readonly ctx: SqlContext) {}

  async list(page: Page): Promise<string[]> {
    let query = this.ctx.db
      .selectFrom('repositories as r')
      .select('r.name')
      .where((eb) => eb.exists(eb.selectFrom('manifests as m').select('m.digest').whereRef('m.repository_id', '=', 'r.id')))
      .orderBy('r.name')
      .limit(pageLimit(page.n, maxCatalogPage));
    if (page.last !== undefined) query = query.where('r.name', '>', page.last);
    return (await query.execute()).map((row) => row.name);
  }

  async exists(name: string): Promise<boolean> {
    return (await this.ctx.findRepositoryId(name)) !== undefined;
  }
}
