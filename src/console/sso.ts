/**
 * Single sign-on for people: OpenID Connect authorization code flow with PKCE (S256), state and
 * nonce, against any provider configured in `console.sso`. The protocol is openid-client's
 * (discovery, the authorization URL, the code exchange, and the ID token's checks: signature with
 * the provider's JWKS, `iss`, `aud`/`azp`, `exp`/`iat`, `nonce`, and RFC 9207's `iss` on the
 * response when the provider sends it); only the policy is ours:
 *
 * - Transport: every request to the provider (discovery, token endpoint, JWKS) goes through the
 *   egress policy. A provider on loopback, or over plain HTTP, is refused unless its entry says
 *   `allowInsecureLoopback: true`, which then allows that one host and port and nothing else.
 * - Who the person is: the link (issuer, subject) → principal, made on the first sign-in. The
 *   principal is a `user` named by `usernameClaim`, with no secret at all. A name already taken by
 *   a principal the link does not name is refused (SSO never takes over a password login).
 * - What they may do: their grants are recomputed from the claims at every sign-in
 *   (`mapping.ts`) and replace whatever the principal had; a person no rule matches cannot sign in
 *   (and loses the grants they had).
 */
import { readFileSync } from 'node:fs';
import type * as OpenIdClient from 'openid-client';
import type { Dispatcher } from 'undici';
import { ApiError } from '../api/errors.js';
import { principalNameProblem } from '../api/principals.js';
import type { Auth } from '../auth/index.js';
import type { Grant } from '../auth/permissions.js';
import type { Config } from '../config/schema.js';
import type { PrincipalIndex, PrincipalRecord } from '../metadata/auth-store.js';
import type { SsoIdentityIndex } from '../metadata/console-store.js';
import { createEgress, type Egress } from '../net/egress.js';
import type { Clock } from '../shared/clock.js';
import { isLoopbackUrl } from '../shared/loopback.js';
import { grantsForClaims, rulesProblem } from './mapping.js';

export type ProviderSettings = Config['console']['sso'][number];

/** What the browser keeps (in an HttpOnly cookie) between leaving for the provider and coming back. */
export interface PendingSignIn {
  provider: string;
  state: string;
  nonce: string;
  codeVerifier: string;
  /** Where in the console to go afterwards (a `#/…` route). */
  returnTo: string;
  /** Until when (ms) the callback is accepted. */
  expiresAt: number;
}

/** A sign-in that finished: the principal it signs in as. */
export interface SsoResult {
  principal: PrincipalRecord;
  grants: Grant[];
}

/** The person has this long to finish signing in at the provider. */
const pendingLifetimeMs = 10 * 60 * 1000;
/** A failed discovery is retried on the next sign-in after this long. */
const discoveryRetryMs = 5_000;
/** Seconds for each request to the provider. */
const requestTimeoutSeconds = 10;

export class SsoFailure extends Error {
  override name = 'SsoFailure';
}

export class SingleSignOn {
  private readonly providers = new Map<string, ProviderSettings>();
  private readonly configs = new Map<string, Promise<OpenIdClient.Configuration>>();
  private readonly failedAt = new Map<string, number>();
  private readonly own: Egress[] = [];

  constructor(
    private readonly deps: {
      providers: readonly ProviderSettings[];
      egress: Egress;
      identities: SsoIdentityIndex;
      principals: Pick<PrincipalIndex, 'get' | 'findByName'>;
      auth: Auth;
      clock: Clock;
    },
  ) {
    for (const provider of deps.providers) {
      const problem = rulesProblem(provider.rules);
      if (problem) throw new Error(`console.sso[${provider.name}].${problem}`);
      const issuer = new URL(provider.issuer);
      if (issuer.protocol !== 'https:' && !provider.allowInsecureLoopback) {
        throw new Error(`console.sso[${provider.name}]: the issuer must use https (plain http only for a loopback provider with allowInsecureLoopback)`);
      }
      if (provider.allowInsecureLoopback && !isLoopbackUrl(issuer)) {
        throw new Error(`console.sso[${provider.name}]: allowInsecureLoopback is only for a loopback issuer (localhost, 127.0.0.0/8, ::1)`);
      }
      this.providers.set(provider.name, provider);
    }
  }

  /** The providers people may choose on the sign-in page. */
  list(): Array<{ name: string; displayName: string }> {
    return [...this.providers.values()].map((p) => ({ name: p.name, displayName: p.displayName ?? p.name }));
  }

  /** The provider's authorization URL (with PKCE, state and nonce) and what to remember until the callback. */
  async begin(name: string, redirectUri: string, returnTo: string): Promise<{ url: string; pending: PendingSignIn }> {
    const provider = this.provider(name);
    const client = await openIdClient();
    const config = await this.configuration(provider);
    const codeVerifier = client.randomPKCECodeVerifier();
    const pending: PendingSignIn = {
      provider: provider.name,
      state: client.randomState(),
      nonce: client.randomNonce(),
      codeVerifier,
      returnTo,
      expiresAt: this.deps.clock.now() + pendingLifetimeMs,
    };
    const scopes = new Set(['openid', ...provider.scopes]);
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: [...scopes].join(' '),
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
    });
    return { url: url.href, pending };
  }

  /**
   * Finishes a sign-in: exchanges the code (checking state, PKCE, the ID token and its nonce),
   * then finds or creates the person's principal and sets their grants from the claims.
   * `SsoFailure` messages are sentences for the person.
   */
  async finish(name: string, callbackUrl: URL, pending: PendingSignIn | undefined, clientAddress: string): Promise<SsoResult> {
    const provider = this.provider(name);
    if (!pending || pending.provider !== provider.name) {
      throw new SsoFailure('The sign-in could not be matched to one this browser started (it may have been started in another tab or browser). Start again.');
    }
    if (pending.expiresAt <= this.deps.clock.now()) throw new SsoFailure('The sign-in took too long. Start again.');
    const denied = callbackUrl.searchParams.get('error');
    if (denied !== null) {
      const description = callbackUrl.searchParams.get('error_description');
      throw new SsoFailure(
        `${provider.displayName ?? provider.name} did not sign you in (${denied}${description ? `: ${description.slice(0, 200)}` : ''}). Try again, or ask your identity team.`,
      );
    }
    const client = await openIdClient();
    const config = await this.configuration(provider);
    const redirectUri = `${callbackUrl.origin}${callbackUrl.pathname}`;
    let claims: Record<string, unknown>;
    try {
      const tokens = await client.authorizationCodeGrant(
        config,
        callbackUrl,
        { pkceCodeVerifier: pending.codeVerifier, expectedState: pending.state, expectedNonce: pending.nonce, idTokenExpected: true },
        { redirect_uri: redirectUri },
      );
      claims = { ...(tokens.claims() ?? {}) };
    } catch (err) {
      throw new SsoFailure(
        `${provider.displayName ?? provider.name}'s answer could not be verified (${describe(err)}). Start again; if it keeps failing, ask an owner to check the console.sso settings.`,
      );
    }
    return this.signIn(provider, claims, clientAddress);
  }

  /** The principal for verified claims, created or updated (grants from the rules). */
  private async signIn(provider: ProviderSettings, claims: Record<string, unknown>, clientAddress: string): Promise<SsoResult> {
    const issuer = String(claims['iss']);
    const subject = String(claims['sub']);
    const label = provider.displayName ?? provider.name;
    const username = claims[provider.usernameClaim];
    if (typeof username !== 'string' || principalNameProblem(username) !== undefined) {
      throw new SsoFailure(
        `${label} did not send a usable ${provider.usernameClaim} claim to name you in Berth. Ask an owner to check console.sso usernameClaim.`,
      );
    }
    if (provider.usernameClaim === 'email' && claims['email_verified'] === false) {
      throw new SsoFailure(`${label} says the email address ${username} is not verified. Verify it there, then sign in again.`);
    }
    const { grants, matched } = grantsForClaims(provider.rules, claims);
    const now = this.deps.clock.now();
    const audit = this.deps.auth.admin.audit;
    const linked = await this.deps.identities.get(issuer, subject);
    let principal = linked && (await this.deps.principals.get(linked.principalId));
    if (!principal) {
      if (grants.length === 0) throw noRule(username, label);
      if (await this.deps.principals.findByName(username)) {
        throw new SsoFailure(
          `A Berth login named ${username} already exists and is not linked to ${label}. Ask an owner to rename or delete it, or sign in with its password.`,
        );
      }
      const created = await this.deps.auth.principals.createPrincipal('user', username, {
        grants,
        description: `signed in with ${label}`,
        withoutSecret: true,
      });
      principal = created.principal;
      if (!(await this.deps.identities.link({ issuer, subject, provider: provider.name, principalId: principal.id, createdAt: now, lastSignInAt: now }))) {
        throw new SsoFailure('Another sign-in for the same person finished at the same moment. Sign in again.');
      }
      await audit.record({ principalId: principal.id, principalName: principal.name, clientAddress }, 'console.sso.principal_created', {
        kind: 'user',
        via: `sso:${provider.name}`,
        issuer,
        subject,
        grants,
        rules: matched,
      });
      return { principal, grants };
    }
    const current = await this.deps.auth.principals.grantsFor(principal);
    if (!sameGrants(current, grants)) {
      await this.deps.auth.principals.setGrants(principal.id, grants);
      await audit.record({ principalId: principal.id, principalName: principal.name, clientAddress }, 'console.sso.grants_replaced', {
        via: `sso:${provider.name}`,
        before: current,
        after: grants,
        rules: matched,
      });
    }
    if (grants.length === 0) throw noRule(username, label);
    try {
      this.deps.auth.principals.assertUsable(principal);
    } catch {
      throw new SsoFailure(`Your Berth login ${principal.name} is disabled or expired. Ask an owner of the registry to enable it.`);
    }
    await this.deps.identities.touch(issuer, subject, now);
    return { principal, grants };
  }

  private provider(name: string): ProviderSettings {
    const provider = this.providers.get(name);
    if (!provider) throw new ApiError('SSO_PROVIDER_UNKNOWN', `no single-sign-on provider named ${JSON.stringify(name.slice(0, 40))} is configured`);
    return provider;
  }

  /** The provider's configuration from discovery: fetched once, retried after a failure. */
  private configuration(provider: ProviderSettings): Promise<OpenIdClient.Configuration> {
    const cached = this.configs.get(provider.name);
    if (cached) return cached;
    const failed = this.failedAt.get(provider.name);
    if (failed !== undefined && this.deps.clock.now() - failed < discoveryRetryMs) {
      return Promise.reject(new SsoFailure(`${provider.displayName ?? provider.name} cannot be reached right now. Try again in a few seconds.`));
    }
    const loading = this.discover(provider).catch((err: unknown) => {
      this.configs.delete(provider.name);
      this.failedAt.set(provider.name, this.deps.clock.now());
      throw new SsoFailure(
        `${provider.displayName ?? provider.name} cannot be reached (${describe(err)}). Try again later, or ask an owner to check console.sso.`,
      );
    });
    this.configs.set(provider.name, loading);
    return loading;
  }

  private async discover(provider: ProviderSettings): Promise<OpenIdClient.Configuration> {
    const client = await openIdClient();
    const secret = provider.clientSecretFile ? readFileSync(provider.clientSecretFile, 'utf8').trim() : undefined;
    const dispatcher = this.dispatcherFor(provider);
    const { fetch: undiciFetch } = await import('undici');
    const fetcher: OpenIdClient.CustomFetch = (url, options) =>
      undiciFetch(url, { ...(options as object), dispatcher } as Parameters<typeof undiciFetch>[1]) as unknown as Promise<Response>;
    return client.discovery(new URL(provider.issuer), provider.clientId, undefined, secret ? client.ClientSecretBasic(secret) : client.None(), {
      [client.customFetch]: fetcher,
      timeout: requestTimeoutSeconds,
      execute: [client.enableNonRepudiationChecks, ...(provider.allowInsecureLoopback ? [client.allowInsecureRequests] : [])],
    });
  }

  /** The app's egress policy; for a loopback provider allowed by its entry, one that allows just that host and port. */
  private dispatcherFor(provider: ProviderSettings): Dispatcher {
    if (!provider.allowInsecureLoopback) return this.deps.egress.dispatcher;
    const issuer = new URL(provider.issuer);
    const port = issuer.port || (issuer.protocol === 'https:' ? '443' : '80');
    const egress = createEgress({ allowPrivateNetworks: false, allow: [`${issuer.hostname}:${port}`] });
    this.own.push(egress);
    return egress.dispatcher;
  }

  async close(): Promise<void> {
    await Promise.all(this.own.map((e) => e.close()));
  }
}

let loaded: Promise<typeof OpenIdClient> | undefined;
/** openid-client is loaded on the first single sign-on, never at start. */
function openIdClient(): Promise<typeof OpenIdClient> {
  loaded ??= import('openid-client');
  return loaded;
}

function noRule(username: string, label: string): SsoFailure {
  return new SsoFailure(
    `${username} is signed in at ${label}, but no access rule of this registry matches your account. Ask an owner of the registry to add a rule for you.`,
  );
}

function sameGrants(a: readonly Grant[], b: readonly Grant[]): boolean {
  const key = (list: readonly Grant[]) =>
    list
      .map((g) => `${g.pattern}\u0000${g.permission}`)
      .sort()
      .join('\n');
  return key(a) === key(b);
}

function describe(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  const message = err instanceof Error ? err.message : String(err);
  const causeText = cause instanceof Error ? `: ${cause.message}` : '';
  return `${message}${causeText}`.slice(0, 300);
}
