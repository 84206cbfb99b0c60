/**
 * The registry's URL shapes, in one place: the route table matches them, handlers build
 * `Location`/`Link` headers from them, and clients and tests use them to make requests.
 * Locations are relative (spec-compliant and correct behind any proxy).
 */
export const urls = {
  base: () => '/v2/',
  catalog: (page?: { n: number; last: string }) => withPage('/v2/_catalog', page),
  tags: (name: string, page?: { n: number; last: string }) => withPage(`/v2/${name}/tags/list`, page),
  manifest: (name: string, reference: string) => `/v2/${name}/manifests/${reference}`,
  blob: (name: string, digest: string) => `/v2/${name}/blobs/${digest}`,
  uploads: (name: string) => `/v2/${name}/blobs/uploads/`,
  upload: (name: string, id: string) => `/v2/${name}/blobs/uploads/${id}`,
  referrers: (name: string, digest: string) => `/v2/${name}/referrers/${digest}`,
};

function withPage(path: string, page: { n: number; last: string } | undefined): string {
  if (!page) return path;
  return `${path}?${new URLSearchParams({ n: String(page.n), last: page.last }).toString()}`;
}
