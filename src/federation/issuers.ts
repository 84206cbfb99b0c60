/**
 * Where an OIDC issuer's signing keys come from: a static JWKS (inline or file) when configured,
 * else OIDC discovery (`<issuer>/.well-known/openid-configuration` -> `jwks_uri`) or a configured
 * `jwksUri`. Loaded lazily on first use, so an issuer that is down never stops Berth from starting;
 * a failed discovery is retried on the next token, not cached. jose's remote key set caches keys
 * and refetches on an unknown `kid`, at most once per cooldown.
 *
 * Transport: HTTPS only, except plain HTTP to loopback for issuers configured with
 * `allowInsecureLoopback`; a per-issuer CA bundle replaces the default trust store.
 *
 * Destination: every discovery and key fetch goes through the egress policy (net/egress.ts), as
 * any request Berth makes on a user's behalf does: an issuer URL is written by an owner into a
 * federated credential, and must not make Berth probe its own network. Private, loopback and other
 * non-public addresses are refused unless `egress` allows them, or the issuer is configured in
 * `federation.issuers` with `allowPrivateNetwork` (an in-cluster or on-premises issuer).
 */
import { readFileSync } from 'node:fs';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import type { Config } from '../config/schema.js';
import { createEgress, EgressRefused, type Egress, type EgressPolicy } from '../net/egress.js';
import { isLoopbackUrl } from '../shared/loopback.js';

export type IssuerSettings = Config['federation']['issuers'][number];

export class IssuerError extends Error {
  override name = 'IssuerError';
}

/** After a failed discovery, wait this long before asking the issuer again. */
const discoveryRetryMs = 5_000;

interface Entry {
  keys?: JWTVerifyGetKey;
  failedAt?: number;
  failure?: string;
  loading?: Promise<JWTVerifyGetKey>;
}

/** Hears of every discovery and JWKS fetch (for metrics): the issuer, what was fetched, and whether it worked. */
export type FetchListener = (issuer: string, kind: 'discovery' | 'jwks', ok: boolean) => void;

export class IssuerKeys {
  private readonly entries = new Map<string, Entry>();
  private readonly settings = new Map<string, IssuerSettings>();
  /** One egress per configured issuer that needs its own (private network, CA bundle), one for the rest. */
  private readonly egresses = new Map<string, Egress>();
  private fetchListener: FetchListener | undefined;

  constructor(
    issuers: readonly IssuerSettings[],
    private readonly timeoutMs: number,
    /** Refetch keys at most this often on an unknown `kid` (key rotation at the issuer). */
    private readonly keyRefetchCooldownMs: number,
    private readonly now: () => number = Date.now,
    /** The registry's egress policy (`egress`). */
    private readonly egress: EgressPolicy = { allowPrivateNetworks: false, allow: [] },
  ) {
    for (const issuer of issuers) this.settings.set(issuer.issuer, issuer);
  }

  /** Calls `listener` after every discovery and JWKS fetch from now on. */
  observeFetches(listener: FetchListener): void {
    this.fetchListener = listener;
  }

  settingsFor(issuer: string): IssuerSettings | undefined {
    return this.settings.get(issuer);
  }

  /** The key resolver for an issuer, loading it (discovery) on first use. */
  async keysFor(issuer: string): Promise<JWTVerifyGetKey> {
    let entry = this.entries.get(issuer);
    if (entry?.keys) return entry.keys;
    if (entry?.failedAt !== undefined && this.now() - entry.failedAt < discoveryRetryMs) {
      throw new IssuerError(`issuer ${issuer} is unavailable (${entry.failure}); retrying shortly`);
    }
    if (!entry) this.entries.set(issuer, (entry = {}));
    const current = entry;
    current.loading ??= this.load(issuer).then(
      (keys) => {
        current.keys = keys;
        delete current.failedAt;
        delete current.loading;
        return keys;
      },
      (err: unknown) => {
        current.failedAt = this.now();
        current.failure = failure(err);
        delete current.loading;
        throw new IssuerError(`issuer ${issuer} is unavailable: ${current.failure}`);
      },
    );
    return current.loading;
  }

  private async load(issuer: string): Promise<JWTVerifyGetKey> {
    const settings = this.settings.get(issuer);
    // jose is loaded with the first issuer's keys, not when Berth starts.
    const { createLocalJWKSet, createRemoteJWKSet, customFetch } = await import('jose');
    if (settings?.jwks) return createLocalJWKSet(settings.jwks as unknown as JSONWebKeySet);
    if (settings?.jwksFile) return createLocalJWKSet(JSON.parse(readFileSync(settings.jwksFile, 'utf8')) as JSONWebKeySet);
    const fetcher = this.observed(this.fetcherFor(settings), issuer);
    const jwksUri = settings?.jwksUri ?? (await this.discover(issuer, fetcher));
    this.assertTransport(new URL(jwksUri), settings);
    return createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: this.timeoutMs,
      cooldownDuration: this.keyRefetchCooldownMs,
      [customFetch]: fetcher,
    });
  }

  private async discover(issuer: string, fetcher: typeof fetch): Promise<string> {
    const url = new URL(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`);
    this.assertTransport(url, this.settings.get(issuer));
    const res = await fetcher(url, { signal: AbortSignal.timeout(this.timeoutMs), redirect: 'error' });
    if (!res.ok) throw new IssuerError(`discovery at ${url.href} answered ${res.status}`);
    const document = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
    // OpenID Connect Discovery 1.0 section 4.3: the document must name the same issuer.
    if (document.issuer !== issuer) throw new IssuerError(`discovery at ${url.href} names issuer ${String(document.issuer)}, not ${issuer}`);
    if (typeof document.jwks_uri !== 'string') throw new IssuerError(`discovery at ${url.href} has no jwks_uri`);
    return document.jwks_uri;
  }

  private assertTransport(url: URL, settings: IssuerSettings | undefined): void {
    if (url.protocol === 'https:') return;
    if (url.protocol === 'http:' && settings?.allowInsecureLoopback && isLoopbackUrl(url)) return;
    throw new IssuerError(`refusing ${url.protocol}//${url.host}: issuers must use HTTPS (plain HTTP only for loopback issuers with allowInsecureLoopback)`);
  }

  /** Closes the connections of every issuer's egress. */
  async close(): Promise<void> {
    const egresses = [...this.egresses.values()];
    this.egresses.clear();
    await Promise.all(egresses.map((e) => e.close()));
  }

  /** `fetcher`, reporting each fetch to the listener (discovery or JWKS, by the URL). */
  private observed(fetcher: typeof fetch, issuer: string): typeof fetch {
    return (async (input: string | URL | Request, init?: RequestInit) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      const kind = url.endsWith('/.well-known/openid-configuration') ? 'discovery' : 'jwks';
      try {
        const res = await fetcher(input, init);
        this.fetchListener?.(issuer, kind, res.ok);
        return res;
      } catch (err) {
        this.fetchListener?.(issuer, kind, false);
        throw err;
      }
    }) as typeof fetch;
  }

  /** A fetch through the egress policy (widened for a configured `allowPrivateNetwork` issuer), with the issuer's CA bundle. */
  private fetcherFor(settings: IssuerSettings | undefined): typeof fetch {
    const own = settings !== undefined && (settings.allowPrivateNetwork || settings.caFile !== undefined);
    const key = own ? settings.issuer : '';
    let egress = this.egresses.get(key);
    if (!egress) {
      const policy: EgressPolicy = Object.assign({}, this.egress, {
        allowPrivateNetworks: this.egress.allowPrivateNetworks || (own && settings.allowPrivateNetwork),
      });
      egress = createEgress(policy, { ca: own && settings.caFile !== undefined ? readFileSync(settings.caFile, 'utf8') : undefined });
      this.egresses.set(key, egress);
    }
    const dispatcher = egress.dispatcher;
    // undici is loaded with the first key fetch (see net/egress.ts), not when Berth starts.
    return (async (input: string | URL | Request, init?: RequestInit) => {
      const { fetch: undiciFetch } = await import('undici');
      return undiciFetch(input as Parameters<typeof undiciFetch>[0], Object.assign({}, init as object, { dispatcher }) as Parameters<typeof undiciFetch>[1]);
    }) as unknown as typeof fetch;
  }
}

/** A fetch failure's reason: the egress policy's refusal (with the setting that allows it), or the cause's message. */
function failure(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  const reason = cause instanceof Error ? cause : err;
  if (reason instanceof EgressRefused) return `${reason.message}, or federation.issuers[].allowPrivateNetwork for this issuer`;
  return reason instanceof Error ? reason.message : String(reason);
}
