/**
 * Logging in with a workload's OIDC token instead of a password: ACR's exchange,
 * `POST /oauth2/exchange` with `grant_type=access_token&access_token=<OIDC token>&client_id=<client
 * id>&service=<service>` (remote/tokens.ts `exchangeIdentityToken`), returns a registry refresh
 * token that lives no longer than the OIDC token (or `federation.lifetimeCapMs`).
 *
 * What is kept is that refresh token, stored where docker looks (see credentials.ts), and, when
 * docker-credential-berth holds it, the OIDC source next to it (`github` with audience and client
 * id, `file:PATH`, `env:VAR`) so the helper can log in again once it runs out. The OIDC token itself
 * is never written anywhere.
 */
import type { StoredCredential } from './credential-store.js';
import { saveRefreshToken, type CredentialLocations } from './credentials.js';
import { credentialHelperFor, readDockerConfig } from './docker-config.js';
import { legacyAudience } from '../api/oidc.js';
import { formatOidcSource, parseOidcSource, type OidcSource } from './oidc-sources.js';
import { refreshTokenUser } from '../remote/tokens.js';

export interface FederatedLogin {
  source: OidcSource;
  /** The service principal's client id (`client_id`); without it Berth finds the one principal the token fits. */
  identity: string | undefined;
}

/** A federated login's source as docker-credential-berth's file records it. */
export interface StoredOidcLogin {
  /** As `--oidc` takes it: `github`, `file:/abs/path`, `env:VAR`. */
  source: string;
  /**
   * `github` only: the audience `--audience` named (absent: the one the registry advertises). The
   * legacy `berth`, which releases before instance audiences always wrote, counts as absent.
   */
  audience?: string;
  identity?: string;
}

export interface FederatedStoredCredential extends StoredCredential {
  oidc?: StoredOidcLogin;
}

export function toStoredLogin(login: FederatedLogin): StoredOidcLogin {
  return {
    source: formatOidcSource(login.source),
    ...(login.source.type === 'github' && login.source.audience !== undefined ? { audience: login.source.audience } : {}),
    ...(login.identity !== undefined ? { identity: login.identity } : {}),
  };
}

/** The federated login recorded with a stored credential, if any (a damaged record counts as none). */
export function storedLogin(credential: StoredCredential): FederatedLogin | undefined {
  const oidc = (credential as FederatedStoredCredential).oidc as unknown;
  if (oidc === null || typeof oidc !== 'object') return undefined;
  const { source, audience, identity } = oidc as Record<string, unknown>;
  if (typeof source !== 'string') return undefined;
  try {
    return {
      source: parseOidcSource(source, typeof audience === 'string' && audience !== legacyAudience ? { audience } : {}),
      identity: typeof identity === 'string' ? identity : undefined,
    };
  } catch {
    return undefined;
  }
}

/** `berth login HOST --oidc …`, to tell a person how to log in again. */
export function loginCommand(host: string, login: FederatedLogin): string {
  const parts = ['berth login', host, '--oidc', formatOidcSource(login.source)];
  if (login.identity !== undefined) parts.push('--identity', login.identity);
  if (login.source.type === 'github' && login.source.audience !== undefined) parts.push('--audience', login.source.audience);
  return parts.join(' ');
}

/**
 * Stores the refresh token where docker will look, as `berth login` does. When that is
 * docker-credential-berth's file, the source goes with it (`renewable`); config.json and other
 * helpers can only hold the token, which then ends with the OIDC token.
 */
export async function saveFederatedLogin(
  host: string,
  refreshToken: string,
  login: FederatedLogin,
  at: CredentialLocations,
): Promise<{ where: string; renewable: boolean }> {
  if (credentialHelperFor(await readDockerConfig(at.dockerConfig), host) === 'berth') {
    const credential: FederatedStoredCredential = { username: refreshTokenUser, refreshToken, oidc: toStoredLogin(login) };
    await at.store.put(host, credential);
    return { where: at.store.path, renewable: true };
  }
  return { where: await saveRefreshToken(host, refreshToken, at), renewable: false };
}
