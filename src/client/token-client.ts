/**
 * The client half of Docker/OCI token auth, shared by the CLI, the credential helper and tests:
 * discover the realm from a 401 challenge, then get access and refresh tokens from it.
 * Credentials are sent only to the realm the registry names, and only over HTTPS unless the realm
 * is on loopback.
 */
import { isLoopbackHost, isLoopbackUrl } from '../shared/loopback.js';

export interface Challenge {
  realm: string;
  service: string | undefined;
  scope: string | undefined;
}

export type Credentials = { username: string; password: string } | { refreshToken: string };

export interface Tokens {
  accessToken: string;
  refreshToken: string | undefined;
  expiresIn: number;
  /** What the token service granted (`scope` of the answer), when it says. */
  scope: string | undefined;
}

export class LoginError extends Error {
  override name = 'LoginError';
  constructor(
    message: string,
    /** The token service's HTTP status, when it answered (401 = credentials refused). */
    readonly status?: number,
  ) {
    super(message);
  }
}

/** The registry's base URL: `http://` for loopback hosts unless told otherwise, else `https://`. */
export function registryUrl(registry: string, insecure = false): string {
  if (/^https?:\/\//.test(registry)) return registry.replace(/\/+$/, '');
  const host = registry.split('/')[0] ?? registry;
  return `${insecure || isLoopbackHost(host) ? 'http' : 'https'}://${host}`;
}

export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header || !/^Bearer\s/i.test(header)) return undefined;
  const params: Record<string, string> = {};
  for (const match of header.slice(header.indexOf(' ') + 1).matchAll(/(\w+)="([^"]*)"/g)) params[match[1] as string] = match[2] as string;
  if (!params['realm']) return undefined;
  return { realm: params['realm'], service: params['service'], scope: params['scope'] };
}

/** GET /v2/ and read the challenge; a registry without auth yields undefined. */
export async function discover(baseUrl: string): Promise<Challenge | undefined> {
  let res: Response;
  try {
    res = await fetch(`${baseUrl}/v2/`);
  } catch (err) {
    throw new LoginError(`cannot reach ${baseUrl}: ${fetchFailure(err)}; check the address and that the registry is running`);
  }
  await res.body?.cancel();
  if (res.status === 200) return undefined;
  const challenge = parseChallenge(res.headers.get('www-authenticate'));
  if (res.status !== 401 || !challenge) throw new LoginError(`${baseUrl}/v2/ answered ${res.status} without a Bearer challenge; is this an OCI registry?`);
  assertSafeRealm(challenge.realm);
  return challenge;
}

function assertSafeRealm(realm: string): void {
  const url = new URL(realm);
  if (url.protocol !== 'https:' && !isLoopbackUrl(url)) {
    throw new LoginError(`refusing to send credentials to ${realm} over plain HTTP; serve the registry over HTTPS`);
  }
}

/**
 * POSTs to the realm (form, as Docker's client does): a password login or a refresh-token grant,
 * for `scopes`, optionally asking for a refresh token (`offline`).
 */
export async function requestTokens(challenge: Challenge, credentials: Credentials, scopes: string[], offline: boolean): Promise<Tokens> {
  assertSafeRealm(challenge.realm);
  const form = new URLSearchParams({ client_id: 'berth-cli' });
  if (challenge.service) form.set('service', challenge.service);
  if (scopes.length > 0) form.set('scope', scopes.join(' '));
  if ('refreshToken' in credentials) {
    form.set('grant_type', 'refresh_token');
    form.set('refresh_token', credentials.refreshToken);
  } else {
    form.set('grant_type', 'password');
    form.set('username', credentials.username);
    form.set('password', credentials.password);
  }
  if (offline) form.set('access_type', 'offline');
  let res: Response;
  try {
    res = await fetch(challenge.realm, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: form,
    });
  } catch (err) {
    throw new LoginError(`cannot reach the token service ${challenge.realm}: ${fetchFailure(err)}; check that the registry is running`);
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) {
    const reason = typeof body['error_description'] === 'string' ? body['error_description'] : `HTTP ${res.status}`;
    throw new LoginError(`login refused by ${new URL(challenge.realm).host}: ${reason}`, res.status);
  }
  const accessToken = body['access_token'] ?? body['token'];
  if (typeof accessToken !== 'string') throw new LoginError(`${challenge.realm} returned no access token`);
  return {
    accessToken,
    refreshToken: typeof body['refresh_token'] === 'string' ? body['refresh_token'] : undefined,
    expiresIn: typeof body['expires_in'] === 'number' ? body['expires_in'] : 60,
    scope: typeof body['scope'] === 'string' ? body['scope'] : undefined,
  };
}

/** Docker's conventional user name for "the password is a refresh token" (as ACR uses it). */
export const refreshTokenUser = '00000000-0000-0000-0000-000000000000';

/**
 * The key docker, podman and skopeo file a registry's credentials under: `host[:port]`, without
 * scheme or path (`http://127.0.0.1:5000/` and `127.0.0.1:5000` are the same registry).
 */
export function registryHost(registry: string): string {
  const withoutScheme = registry.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const host = withoutScheme.split('/')[0] ?? '';
  if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host)) {
    throw new LoginError(`${JSON.stringify(registry)} is not a registry address; expected HOST[:PORT], e.g. registry.example.com or 127.0.0.1:5000`);
  }
  return host.toLowerCase();
}

/**
 * ACR's exchange, done with a refresh token: a refresh grant buys an access token (no scopes),
 * and `POST /oauth2/exchange` trades it for a new refresh token with a full lifetime. The old
 * refresh token stays valid until it expires; both die together if the credential behind them is
 * rotated or the principal disabled.
 */
export async function exchangeRefreshToken(challenge: Challenge, refreshToken: string): Promise<string> {
  const { accessToken } = await requestTokens(challenge, { refreshToken }, [], false);
  const form = new URLSearchParams({ grant_type: 'access_token', access_token: accessToken });
  if (challenge.service) form.set('service', challenge.service);
  const endpoint = exchangeEndpoint(challenge.realm);
  let res: Response;
  try {
    res = await fetch(endpoint, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: form });
  } catch (err) {
    throw new LoginError(`cannot reach ${endpoint}: ${fetchFailure(err)}; check that the registry is running`);
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok || typeof body['refresh_token'] !== 'string') {
    const reason = typeof body['error_description'] === 'string' ? body['error_description'] : `HTTP ${res.status}`;
    throw new LoginError(`token exchange refused by ${new URL(endpoint).host}: ${reason}`, res.status);
  }
  return body['refresh_token'];
}

/** ACR's layout: the exchange endpoint sits beside the token realm (`…/oauth2/token` -> `…/oauth2/exchange`). */
export function exchangeEndpoint(realm: string): string {
  return new URL('exchange', realm).toString();
}

/**
 * `iat` and `exp` (ms) read from a JWT without verifying it: the client only uses them to decide
 * when to renew; the registry verifies. Undefined for anything that is not a JWT with `exp`.
 */
export function tokenTimes(token: string): { issuedAt: number | undefined; expiresAt: number } | undefined {
  const payload = token.split('.')[1];
  if (token.split('.').length !== 3 || !payload) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { iat?: unknown; exp?: unknown };
    if (typeof claims.exp !== 'number') return undefined;
    return { issuedAt: typeof claims.iat === 'number' ? claims.iat * 1000 : undefined, expiresAt: claims.exp * 1000 };
  } catch {
    return undefined;
  }
}

/** undici says only "fetch failed"; the cause (ECONNREFUSED, ENOTFOUND, a TLS error) is what helps. */
function fetchFailure(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  if (cause && typeof cause.message === 'string') return cause.message;
  return (err as Error).message;
}
