/**
 * The registry's listings: the catalog (with a visibility rule the caller gets from the
 * authorizer), a repository's tags, the referrers of a manifest, and its push history.
 *
 * Paging (`n`/`last`, the distribution spec's): a page of `n` reads `n + 1` entries, so it knows
 * whether another page follows (`next`, which a `Link: rel="next"` names) without a second query.
 * Rule: a list is never cut silently. Without `n`, or with an `n` above {@link largestPage}, the
 * page holds at most `largestPage` entries and, when more follow, says so with `next` (the spec
 * lets a server return fewer than `n` with a `Link`). `n=0` is an empty page (of a listing that
 * exists: the tags of an unknown repository are NAME_UNKNOWN whatever `n` is).
 */
import type { Digest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { mediaTypes } from '../oci/media-types.js';
import type { PushRecord } from '../metadata/store.js';
import type { RegistryContext } from './context.js';

export type { PushRecord };

export interface PageRequest {
  /** At most this many entries; undefined: the server's largest page. */
  n?: number | undefined;
  /** Entries strictly after this one (lexical order). */
  last?: string | undefined;
}

export interface Page {
  items: string[];
  /** The `last` that reads the next page, when one follows. */
  next: string | undefined;
  /** The page size this page was read with (the `n` a `Link` to the next page carries). */
  n: number;
}

/** Decides which repositories a caller may see; undefined: all of them. */
export type Visibility = ((repository: string) => boolean) | undefined;

/** The most entries one page holds, and a page's size when the client gives no `n`. */
export const largestPage = 1000;
/** Rows read per query while filtering the catalog. */
const filteredCatalogBatch = 500;

export class RegistryReads {
  constructor(private readonly ctx: RegistryContext) {}

  /**
   * Repository names holding at least one manifest, sorted, that `visible` lets the caller see;
   * `contains` narrows them to names containing it (a search, done by the database).
   */
  async catalog(page: PageRequest, visible: Visibility, contains?: string): Promise<Page> {
    const repositories = this.ctx.metadata.repositories;
    const result = await paged(page, (n, last) => (visible ? this.filteredCatalog(visible, n, last, contains) : repositories.list({ n, last }, { contains })));
    return result ?? { items: [], next: undefined, n: pageSize(page) };
  }

  /** The repository's tags, sorted; NAME_UNKNOWN for a repository never pushed to (`n=0` included). */
  async tags(repository: string, page: PageRequest): Promise<Page> {
    const result =
      page.n === 0
        ? (await this.ctx.metadata.repositories.exists(repository))
          ? { items: [], next: undefined, n: 0 }
          : undefined
        : await paged(page, (n, last) => this.ctx.metadata.manifests.listTags(repository, { n, last }));
    if (!result) throw new RegistryError('NAME_UNKNOWN', undefined, { name: repository });
    return result;
  }

  /** The referrers of `subject` as an OCI image index body (empty when there are none). */
  async referrers(repository: string, subject: Digest, artifactType: string | undefined): Promise<Buffer> {
    const manifests = await this.ctx.metadata.manifests.listReferrers(repository, subject.value, artifactType);
    return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests }));
  }

  /** Who pushed what, newest first; `tag` or `digest` narrow it. NAME_UNKNOWN for a repository never pushed to. */
  async history(repository: string, filter: { tag?: string | undefined; digest?: string | undefined; limit: number }): Promise<PushRecord[]> {
    const manifests = this.ctx.metadata.manifests;
    if (!(await this.ctx.metadata.repositories.exists(repository))) throw new RegistryError('NAME_UNKNOWN', undefined, { name: repository });
    return manifests.history(repository, filter);
  }

  /** Up to `want` visible repositories after `last` (containing `contains`, when given), reading the list in batches. */
  private async filteredCatalog(
    visible: (repository: string) => boolean,
    want: number,
    last: string | undefined,
    contains: string | undefined,
  ): Promise<string[]> {
    const out: string[] = [];
    let cursor = last;
    for (;;) {
      const batch = await this.ctx.metadata.repositories.list({ n: filteredCatalogBatch, last: cursor }, { contains });
      for (const name of batch) {
        if (visible(name)) out.push(name);
        if (out.length >= want) return out;
      }
      if (batch.length < filteredCatalogBatch) return out;
      cursor = batch[batch.length - 1];
    }
  }
}

/** The size of the page `page` asks for: its `n`, at most {@link largestPage}; `largestPage` without one. */
function pageSize(page: PageRequest): number {
  return page.n === undefined ? largestPage : Math.min(page.n, largestPage);
}

/** One page by the n + 1 rule (see the module comment); undefined when `fetch` finds no such listing. */
async function paged(page: PageRequest, fetch: (n: number, last: string | undefined) => Promise<string[] | undefined>): Promise<Page | undefined> {
  const n = pageSize(page);
  if (n === 0) return { items: [], next: undefined, n };
  const items = await fetch(n + 1, page.last);
  if (!items) return undefined;
  const more = items.length > n;
  const shown = more ? items.slice(0, n) : items;
  return { items: shown, next: more ? shown[shown.length - 1] : undefined, n };
}
