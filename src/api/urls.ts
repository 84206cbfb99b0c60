/**
 * Berth's URL shapes, in one place: the Distribution API (`/v2/…`), the token service
 * (`/oauth2/…`) and the management API (`/api/v1/…`). Server handlers build `Location`, `Link` and
 * realm URLs from them; the registry client (remote/), the CLI and the tests' helpers build their
 * requests from them. The route table (http/routes.ts) matches the same shapes with patterns.
 *
 * Every builder returns a path (and query), never an origin: locations are relative
 * (spec-compliant and correct behind any proxy), and a client prefixes its base URL.
 *
 * Repository names and references are inserted as they are (they are path-shaped and validated by
 * the grammar in oci/names.ts); management identifiers (principal, webhook, rule, secret names)
 * are percent-encoded.
 */

/** A page of a listing: at most `n` entries, after `last` when given. */
export interface Page {
  n: number;
  last?: string | undefined;
}

const enc = encodeURIComponent;

function withQuery(path: string, query: Record<string, string | number | undefined> | undefined): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

function paged(path: string, page: Page | undefined): string {
  return withQuery(path, page && { n: page.n, last: page.last });
}

const apiRoot = '/api/v1';
const principal = (ref: string) => `${apiRoot}/principals/${enc(ref)}`;
const webhook = (ref: string) => `${apiRoot}/webhooks/${enc(ref)}`;
const syncRule = (name: string) => `${apiRoot}/sync/rules/${enc(name)}`;
const importJob = (id: string) => `${apiRoot}/imports/${enc(id)}`;
const cacheRule = (name: string) => `${apiRoot}/cache/rules/${enc(name)}`;
const lifecycle = `${apiRoot}/lifecycle`;

export const urls = {
  // The Distribution API.
  base: () => '/v2/',
  catalog: (page?: Page) => paged('/v2/_catalog', page),
  tags: (name: string, page?: Page) => paged(`/v2/${name}/tags/list`, page),
  /** A manifest; `tags` for a push that also sets these tags (one `tag` query parameter each). */
  manifest: (name: string, reference: string, tags?: readonly string[]) => {
    const path = `/v2/${name}/manifests/${reference}`;
    if (!tags || tags.length === 0) return path;
    const params = new URLSearchParams();
    for (const tag of tags) params.append('tag', tag);
    return `${path}?${params.toString()}`;
  },
  blob: (name: string, digest: string) => `/v2/${name}/blobs/${digest}`,
  /** Starts an upload; `query` for a monolithic upload (`digest`) or a mount (`mount`, `from`). */
  uploads: (name: string, query?: { digest?: string; mount?: string; from?: string }) => withQuery(`/v2/${name}/blobs/uploads/`, query),
  upload: (name: string, id: string) => `/v2/${name}/blobs/uploads/${id}`,
  referrers: (name: string, digest: string, artifactType?: string) => withQuery(`/v2/${name}/referrers/${digest}`, { artifactType }),

  // The token service.
  token: () => '/oauth2/token',
  /** ACR's exchange: an access token or a workload's OIDC token for a refresh token. */
  exchange: () => '/oauth2/exchange',
  jwks: () => '/oauth2/jwks',

  /** The management API. */
  api: {
    /** The prefix, for a caller that names resource paths relative to it (the tests' `Api` helper). */
    root: () => apiRoot,
    principals: (query?: { kind?: string | undefined }) => withQuery(`${apiRoot}/principals`, query),
    principal,
    grants: (ref: string) => `${principal(ref)}/grants`,
    secrets: (ref: string) => `${principal(ref)}/secrets`,
    secret: (ref: string, name: string) => `${principal(ref)}/secrets/${enc(name)}`,
    federatedCredentials: (ref: string) => `${principal(ref)}/federated-credentials`,
    federatedCredential: (ref: string, name: string) => `${principal(ref)}/federated-credentials/${enc(name)}`,
    anonymousPull: () => `${apiRoot}/settings/anonymous-pull`,
    rotateKeys: () => `${apiRoot}/keys/rotate`,
    keys: () => `${apiRoot}/keys`,
    revokeKey: (kid: string) => `${apiRoot}/keys/${enc(kid)}/revoke`,
    audit: (query?: {
      limit?: number | undefined;
      principal?: string | undefined;
      repository?: string | undefined;
      event?: string | undefined;
      since?: string | undefined;
      until?: string | undefined;
      before?: number | undefined;
    }) => withQuery(`${apiRoot}/audit`, query),
    logLevel: () => `${apiRoot}/settings/log-level`,
    webhooks: () => `${apiRoot}/webhooks`,
    webhook,
    webhookSecret: (ref: string) => `${webhook(ref)}/secret`,
    webhookPing: (ref: string) => `${webhook(ref)}/ping`,
    webhookDeliveries: (ref: string, query?: { status?: string | undefined; limit?: number | undefined }) => withQuery(`${webhook(ref)}/deliveries`, query),
    webhookDelivery: (ref: string, id: string) => `${webhook(ref)}/deliveries/${enc(id)}`,
    webhookRedeliver: (ref: string, id: string) => `${webhook(ref)}/deliveries/${enc(id)}/redeliver`,
    syncRules: () => `${apiRoot}/sync/rules`,
    syncRule,
    syncRun: (name: string) => `${syncRule(name)}/run`,
    syncStatus: (name: string, query?: { repository?: string | undefined }) => withQuery(`${syncRule(name)}/status`, query),
    /** Where another registry sends its push notifications for a rule (public, authenticated by the rule's secret). */
    syncWebhook: (name: string) => `${syncRule(name)}/webhook`,
    /** Who pushed what to a repository (needs pull on it). */
    history: (repository: string, query?: { tag?: string | undefined; digest?: string | undefined; limit?: number | undefined }) =>
      withQuery(`${apiRoot}/repositories/${repository}/history`, query),
    /** An image's attestations and what the pull rules decide (needs pull on the repository). */
    imageAttestations: (repository: string, query: { digest?: string | undefined; tag?: string | undefined }) =>
      withQuery(`${apiRoot}/repositories/${repository}/attestations`, query),
    /** The registry's attestation public keys (public). */
    attestationKeys: () => `${apiRoot}/attestations/keys`,
    /** One attestation public key as PEM (public; for `cosign --key <url>`). */
    attestationKey: (hint: string) => `${apiRoot}/attestations/keys/${enc(hint)}.pem`,
    rotateAttestationKeys: () => `${apiRoot}/attestations/keys/rotate`,
    /** Whether pulls from `repository` need an attestation (public). */
    attestationRequirement: (repository: string) => withQuery(`${apiRoot}/attestations/required`, { repository }),
    import: () => `${apiRoot}/import`,
    imports: (query?: { status?: string | undefined; limit?: number | undefined }) => withQuery(`${apiRoot}/imports`, query),
    importJob,
    importRetry: (id: string) => `${importJob(id)}/retry`,
    cacheRules: () => `${apiRoot}/cache/rules`,
    cacheRule,
    /** Re-check a cached tag now, or mark a repository's (or the rule's) tags for a check on their next pull. */
    cacheRefresh: (name: string) => `${cacheRule(name)}/refresh`,
    /** The rule's cached tags and how fresh they are. */
    cacheEntries: (name: string, query?: { repository?: string | undefined; limit?: number | undefined }) => withQuery(`${cacheRule(name)}/entries`, query),
    /** Every lifecycle policy, by kind. */
    lifecyclePolicies: () => `${lifecycle}/policies`,
    /** One policy: `kind` is retention, immutability or quotas. */
    lifecyclePolicy: (kind: string, name: string) => `${lifecycle}/${enc(kind)}/${enc(name)}`,
    /** The preview of a saved retention rule (`name`), or of the unsaved rule in the body. */
    retentionPreview: (name?: string) => (name === undefined ? `${lifecycle}/retention/preview` : `${lifecycle}/retention/${enc(name)}/preview`),
    retentionRun: (name: string) => `${lifecycle}/retention/${enc(name)}/run`,
    lifecycleRuns: (query?: { policy?: string | undefined; limit?: number | undefined }) => withQuery(`${lifecycle}/runs`, query),
    lifecycleRun: (id: string, query?: { after?: number | undefined; limit?: number | undefined }) => withQuery(`${lifecycle}/runs/${enc(id)}`, query),
    usage: (query?: { pattern?: string | undefined; n?: number | undefined; last?: string | undefined }) => withQuery(`${lifecycle}/usage`, query),
    usageRefresh: () => `${lifecycle}/usage/refresh`,
  },
};
