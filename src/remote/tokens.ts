/**
 * The client half of Docker/OCI token auth and of Berth's exchange, for every client of a
 * registry (the CLI, the credential helper, the controller, `RemoteRegistry` for import and sync):
 *
 * - `discover`: `GET /v2/`; a 401's `Bearer` challenge names the token realm and service.
 * - `requestTokens`: `POST` to the realm (form, as docker's client does): a password or a
 *   refresh-token grant for scopes, optionally asking for a refresh token (`access_type=offline`).
 * - `fetchToken`: `GET` the realm with Basic credentials or none (docker's pull flow, which every
 *   token service speaks), for one scope.
 * - `exchangeRefreshToken`, `exchangeIdentityToken`: ACR's `POST /oauth2/exchange`, trading an
 *   access token or a workload's OIDC token for a refresh token.
 *
 * Credentials go only to the realm the registry names, and only when that realm is on the
 * registry's own host (`discover` refuses any other: a registry must not be able to send a
 * workload's OIDC token or a password to a third party, see api/oidc.ts), never over plain HTTP
 * except to loopback, and never along a redirect. Failures are `LoginError`s of one line that say what to do; `status`
 * is the token service's HTTP status when it answered, `reason` what kind of failure it was.
 */
import { urls } from '../api/urls.js';
import { isLoopbackUrl } from '../shared/loopback.js';
import { bearerChallenge, type BearerChallenge } from './challenge.js';
import { drain, HttpClient, HttpFailure, readBounded, type HttpResponse } from './http.js';

export type Challenge = BearerChallenge;

export type Credentials = { username: string; password: string } | { refreshToken: string };

export interface Tokens {
  accessToken: string;
  refreshToken: string | undefined;
  expiresIn: number;
  /** What the token service granted (`scope` of the answer), when it says. */
  scope: string | undefined;
}

/**
 * `unreachable`: no answer (or 5xx); `refused`: the token service said no (see `status`), and the
 * default for a login the CLI itself refuses (bad flags, no password); `invalid`: an answer that is
 * not what the protocol says; `insecure`: refused here before sending (plain HTTP off loopback);
 * `egress`: the egress policy refused the destination.
 */
export type LoginFailure = 'unreachable' | 'refused' | 'invalid' | 'insecure' | 'egress';

export class LoginError extends Error {
  override name = 'LoginError';
  constructor(
    message: string,
    /** The token service's HTTP status, when it answered (401 = credentials refused). */
    readonly status?: number,
    readonly reason: LoginFailure = status !== undefined && status >= 500 ? 'unreachable' : 'refused',
  ) {
    super(message);
  }
}

/** The token service refused an identity token; `description` is its `error_description` (it names the failed check). */
export class ExchangeRefusedError extends LoginError {
  override name = 'ExchangeRefusedError';
  constructor(
    readonly description: string,
    status: number,
  ) {
    super(`token exchange refused: ${description}`, status);
  }
}

export interface TokenRequestOptions {
  /** The HTTP client (egress policy, limits, retries); default: no egress policy, one try. */
  http?: HttpClient | undefined;
  signal?: AbortSignal | undefined;
}

/** Docker's conventional user name for "the password is a refresh token" (as ACR uses it). */
export const refreshTokenUser = '00000000-0000-0000-0000-000000000000';

/** A token answer is small; anything larger is not one. */
const maxTokenResponse = 1024 * 1024;

let defaultHttp: HttpClient | undefined;
/** One try, no egress policy: a person is waiting and reads the error. */
const clientFor = (options: TokenRequestOptions) => options.http ?? (defaultHttp ??= new HttpClient({ retries: { attempts: 1 }, userAgent: 'berth-cli' }));

/**
 * GET /v2/ and read the challenge; a registry without auth yields undefined. A realm on another
 * host than `baseUrl`'s is refused (`insecure`): Berth names its own token service, on the host
 * clients reach it at (`auth.publicUrl`, else the request's Host).
 */
export async function discover(baseUrl: string, options: TokenRequestOptions = {}): Promise<Challenge | undefined> {
  const url = `${baseUrl}${urls.base()}`;
  let res: HttpResponse;
  try {
    // No credentials go with it, so a redirect (to the canonical host, to HTTPS) may be followed.
    res = await clientFor(options).send({ method: 'GET', url, maxRedirections: 5, retry: true, signal: options.signal });
  } catch (err) {
    throw unreachable(err, `cannot reach ${baseUrl}`, 'check the address and that the registry is running');
  }
  await drain(res);
  res.release();
  if (res.status === 200) return undefined;
  const challenge = bearerChallenge(res.headers['www-authenticate']);
  if (res.status !== 401 || !challenge)
    throw new LoginError(`${url} answered ${res.status} without a Bearer challenge; is this an OCI registry?`, undefined, 'invalid');
  const realm = assertSafeRealm(challenge.realm);
  const registry = new URL(baseUrl);
  if (realm.host !== registry.host) {
    throw new LoginError(
      `${registry.host} names a token service on another host (${realm.host}); credentials and identity tokens go only to the registry's own host (if this is your Berth, set its auth.publicUrl to the address clients use)`,
      undefined,
      'insecure',
    );
  }
  return challenge;
}

/** Credentials may go to `realm` only over HTTPS, or plain HTTP to loopback. */
function assertSafeRealm(realm: string, what = 'credentials'): URL {
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    throw new LoginError(`the registry names an invalid token realm ${JSON.stringify(realm.slice(0, 200))}`, undefined, 'invalid');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackUrl(url))) {
    throw new LoginError(`refusing to send ${what} to ${realm} over plain HTTP; serve the registry over HTTPS`, undefined, 'insecure');
  }
  return url;
}

/**
 * POSTs to the realm (form, as Docker's client does): a password login or a refresh-token grant,
 * for `scopes`, optionally asking for a refresh token (`offline`).
 */
export async function requestTokens(
  challenge: Challenge,
  credentials: Credentials,
  scopes: readonly string[],
  offline: boolean,
  options: TokenRequestOptions = {},
): Promise<Tokens> {
  const realm = assertSafeRealm(challenge.realm);
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
  const { status, body } = await postForm(realm, form, options, `cannot reach the token service ${challenge.realm}`, 'check that the registry is running');
  if (status < 200 || status >= 300) throw new LoginError(`login refused by ${realm.host}: ${reasonOf(body, status)}`, status);
  const accessToken = body['access_token'] ?? body['token'];
  if (typeof accessToken !== 'string') throw new LoginError(`${challenge.realm} returned no access token`, undefined, 'invalid');
  return {
    accessToken,
    refreshToken: typeof body['refresh_token'] === 'string' ? body['refresh_token'] : undefined,
    expiresIn: typeof body['expires_in'] === 'number' ? body['expires_in'] : 60,
    scope: typeof body['scope'] === 'string' ? body['scope'] : undefined,
  };
}

/**
 * GETs a token for `scope` from the realm with `authorization` (Basic) or anonymously, as docker
 * pulls do. `expiresIn` defaults to 60 s, as the token spec says. Errors name the token service;
 * the caller adds which registry and credentials it was about.
 */
export async function fetchToken(
  challenge: Challenge,
  request: { scope?: string | undefined; authorization?: string | undefined },
  options: TokenRequestOptions = {},
): Promise<{ token: string; expiresIn: number }> {
  const url = request.authorization ? assertSafeRealm(challenge.realm) : new URL(challenge.realm);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new LoginError(`the token realm ${url.origin} is not http(s)`, undefined, 'invalid');
  if (challenge.service) url.searchParams.set('service', challenge.service);
  if (request.scope) url.searchParams.set('scope', request.scope);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (request.authorization) headers['authorization'] = request.authorization;
  let res: HttpResponse;
  try {
    res = await clientFor(options).send({ method: 'GET', url, headers, retry: true, signal: options.signal });
  } catch (err) {
    throw unreachable(err, `cannot reach the token service ${url.origin}`, 'retry later');
  }
  try {
    if (res.status === 401 || res.status === 403)
      throw new LoginError(`the token service ${url.origin} refused the credentials (HTTP ${res.status})`, res.status);
    const body = await readJson(res, `the token service ${url.origin}`);
    if (res.status !== 200) {
      throw new LoginError(
        `the token service ${url.origin} answered HTTP ${res.status}: ${reasonOf(body, res.status)}`,
        res.status,
        res.status >= 500 ? 'unreachable' : 'invalid',
      );
    }
    const token = body['token'] ?? body['access_token'];
    if (typeof token !== 'string' || token.length === 0) throw new LoginError(`the token service ${url.origin} returned no token`, undefined, 'invalid');
    const expiresIn = typeof body['expires_in'] === 'number' && body['expires_in'] > 0 ? body['expires_in'] : 60;
    return { token, expiresIn };
  } finally {
    await drain(res);
    res.release();
  }
}

/**
 * Renews a refresh token: `POST /oauth2/exchange grant_type=refresh_token` returns a new one with
 * the same ceiling, ending no later than what bought the login (the secret's or principal's expiry,
 * the OIDC token), else a full lifetime. The old one stays valid until it expires; both die
 * together if the credential behind them is rotated or the principal disabled.
 *
 * A Berth older than this grant (`unsupported_grant_type`) is asked the old way: a refresh grant
 * buys an access token, which its exchange trades for a refresh token.
 */
export async function exchangeRefreshToken(challenge: Challenge, refreshToken: string, options: TokenRequestOptions = {}): Promise<string> {
  const endpoint = exchangeEndpoint(challenge.realm);
  const url = assertSafeRealm(endpoint);
  const exchange = async (form: URLSearchParams) => {
    if (challenge.service) form.set('service', challenge.service);
    return postForm(url, form, options, `cannot reach ${endpoint}`, 'check that the registry is running');
  };
  let answer = await exchange(new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }));
  if (answer.status === 400 && answer.body['error'] === 'unsupported_grant_type') {
    const { accessToken } = await requestTokens(challenge, { refreshToken }, [], false, options);
    answer = await exchange(new URLSearchParams({ grant_type: 'access_token', access_token: accessToken }));
  }
  const { status, body } = answer;
  if (status < 200 || status >= 300 || typeof body['refresh_token'] !== 'string') {
    throw new LoginError(`token exchange refused by ${url.host}: ${reasonOf(body, status)}`, status);
  }
  return body['refresh_token'];
}

/**
 * Trades a workload's OIDC token for a registry refresh token at the exchange endpoint beside the
 * realm. `scopes` bind the refresh token to them (Berth then never grants more through it,
 * whatever the principal's roles); none: the principal's full grants. A refusal is an
 * `ExchangeRefusedError` carrying the token service's reason.
 */
export async function exchangeIdentityToken(
  challenge: Challenge,
  identityToken: string,
  clientId: string | undefined,
  scopes: readonly string[] = [],
  options: TokenRequestOptions = {},
): Promise<string> {
  const endpoint = exchangeEndpoint(challenge.realm);
  const url = assertSafeRealm(endpoint, 'an identity token');
  const form = new URLSearchParams({ grant_type: 'access_token', access_token: identityToken });
  if (clientId !== undefined) form.set('client_id', clientId);
  if (challenge.service) form.set('service', challenge.service);
  for (const scope of scopes) form.append('scope', scope);
  const { status, body } = await postForm(url, form, options, `cannot reach ${endpoint}`, 'check that the registry is running');
  if (status < 200 || status >= 300 || typeof body['refresh_token'] !== 'string') throw new ExchangeRefusedError(reasonOf(body, status), status);
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

/** POSTs a form (never following a redirect: the body holds credentials); the status and the JSON body ({} when it is not JSON). */
async function postForm(
  url: URL,
  form: URLSearchParams,
  options: TokenRequestOptions,
  cannotReach: string,
  advice: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  let res: HttpResponse;
  try {
    res = await clientFor(options).send({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      signal: options.signal,
    });
  } catch (err) {
    throw unreachable(err, cannotReach, advice);
  }
  try {
    return { status: res.status, body: await readJson(res, url.origin).catch(() => ({})) };
  } finally {
    await drain(res);
    res.release();
  }
}

async function readJson(res: HttpResponse, what: string): Promise<Record<string, unknown>> {
  const bytes = await readBounded(res, maxTokenResponse, () => new LoginError(`the answer of ${what} is too large`, undefined, 'invalid'));
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    parsed = undefined;
  }
  return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
}

/** The token service's `error_description`, else the status. */
function reasonOf(body: Record<string, unknown>, status: number): string {
  return typeof body['error_description'] === 'string' ? body['error_description'] : `HTTP ${status}`;
}

/** `${what}: ECONNREFUSED; ${advice}` for a request that got no answer; the egress policy's refusal as it is. */
function unreachable(err: unknown, what: string, advice: string): unknown {
  if (!(err instanceof HttpFailure)) return err;
  if (err.kind === 'egress') return new LoginError(`${what}: ${err.message}`, undefined, 'egress');
  if (err.kind === 'unreachable') return new LoginError(`${what}: ${err.details.cause ?? err.message}; ${advice}`, undefined, 'unreachable');
  return new LoginError(`${what}: ${err.message}; ${advice}`, err.status, 'unreachable');
}
