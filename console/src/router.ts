/**
 * Hash routes (`#/repo/acme/app`), so every console URL is served by the one page at `/` and no
 * server route can collide with one. Repository names keep their `/`; a digest never contains one.
 */
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { view: 'repositories' }
  | { view: 'sign-in'; query: URLSearchParams }
  | { view: 'repository'; name: string }
  | { view: 'image'; name: string; digest: string }
  | { view: 'admin'; section: string; item: string | undefined }
  | { view: 'not-found' };

export function parse(hash: string): Route {
  const raw = hash.replace(/^#/, '') || '/';
  const queryAt = raw.indexOf('?');
  const path = queryAt === -1 ? raw : raw.slice(0, queryAt);
  const query = new URLSearchParams(queryAt === -1 ? '' : raw.slice(queryAt + 1));
  const parts = path
    .split('/')
    .filter((p) => p.length > 0)
    .map(safeDecode);
  const [first, ...rest] = parts;
  if (first === undefined) return { view: 'repositories' };
  if (first === 'sign-in') return { view: 'sign-in', query };
  if (first === 'repo' && rest.length > 0) return { view: 'repository', name: rest.join('/') };
  if (first === 'image' && rest.length > 1) return { view: 'image', digest: rest[0] as string, name: rest.slice(1).join('/') };
  if (first === 'admin') return { view: 'admin', section: rest[0] ?? 'principals', item: rest.length > 1 ? rest.slice(1).join('/') : undefined };
  return { view: 'not-found' };
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

export const links = {
  repositories: () => '#/',
  repository: (name: string) => `#/repo/${name}`,
  image: (name: string, digest: string) => `#/image/${digest}/${name}`,
  admin: (section: string, item?: string) => `#/admin/${section}${item !== undefined ? `/${encodeURIComponent(item)}` : ''}`,
  signIn: () => '#/sign-in',
};

export function navigate(href: string): void {
  if (location.hash !== href) location.hash = href;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(location.hash));
  useEffect(() => {
    const update = () => setRoute(parse(location.hash));
    addEventListener('hashchange', update);
    return () => removeEventListener('hashchange', update);
  }, []);
  return route;
}
