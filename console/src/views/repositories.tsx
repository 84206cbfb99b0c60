/** The repositories the person may pull: search by name, page by page (the server filters and pages). */
import { useEffect, useState } from 'preact/hooks';
import type { RepositoryListView } from '../../../src/api/repositories.js';
import { get } from '../api';
import { ErrorBox, Loading } from '../components';
import { useLoad } from '../hooks';
import { links } from '../router';

const pageSize = 50;

export function Repositories() {
  const [search, setSearch] = useState('');
  const [query, setQuery] = useState('');
  // The `last` of each page shown so far, so "Previous" can go back.
  const [cursors, setCursors] = useState<Array<string | undefined>>([undefined]);
  const last = cursors[cursors.length - 1];

  useEffect(() => {
    const timer = setTimeout(() => {
      setQuery(search.trim().toLowerCase());
      setCursors([undefined]);
    }, 200);
    return () => clearTimeout(timer);
  }, [search]);

  const page = useLoad(() => {
    const params = new URLSearchParams({ n: String(pageSize) });
    if (query) params.set('q', query);
    if (last) params.set('last', last);
    return get<RepositoryListView>(`/api/v1/repositories?${params}`);
  }, [query, last]);

  return (
    <section aria-labelledby="repositories-title">
      <h1 id="repositories-title">Repositories</h1>
      <form role="search" onSubmit={(e) => e.preventDefault()}>
        <label class="field">
          <span>Search by name</span>
          <input type="search" name="q" value={search} placeholder="e.g. team/app" onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
        </label>
      </form>
      <ErrorBox message={page.error} />
      {page.loading && !page.data ? <Loading what="repositories" /> : null}
      {page.data ? (
        page.data.repositories.length === 0 ? (
          <p class="muted">
            {query
              ? `No repository you may pull has “${query}” in its name.`
              : 'There is no repository you may pull yet. Push one, or ask an owner for pull on one.'}
          </p>
        ) : (
          <ul class="repo-list" aria-busy={page.loading}>
            {page.data.repositories.map((r) => (
              <li key={r.name}>
                <a href={links.repository(r.name)}>{r.name}</a>
              </li>
            ))}
          </ul>
        )
      ) : null}
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
          Previous
        </button>
        <span class="muted">Page {cursors.length}</span>
        <button type="button" disabled={!page.data?.next} onClick={() => page.data?.next && setCursors((c) => [...c, page.data?.next ?? undefined])}>
          Next
        </button>
      </nav>
    </section>
  );
}
