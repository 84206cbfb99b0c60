/**
 * The client half of Docker/OCI token auth, shared by the CLI, the credential helper and tests:
 * discover the realm from a 401 challenge, then get access and refresh tokens from it.
 * Credentials are sent only to the realm the registry names, and only over HTTPS unless the realm
 * is on loopback.
 */

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
}

export class LoginError extends Error {
  override name = 'LoginError';
}

/** The registry's base URL: `http://` for loopback hosts unless told otherwise, else `https://`. */
export function registryUrl(registry: string, insecure = false): string {
  if (/^https?:\/\//.test(registry)) return registry.replace(/\/+$/, '');
  const host = registry.split('/')[0] ?? registry;
  const loopback = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/.test(host);
  return `${insecure || loopback ? 'http' : 'https'}://${host}`;
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
    throw new LoginError(`cannot reach ${baseUrl}: ${(err as Error).message}; check the address and that the registry is running`);
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
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname) || url.hostname.startsWith('127.');
  if (url.protocol !== 'https:' && !loopback) {
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
  const res = await fetch(challenge.realm, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: form,
  });
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) {
    const reason = typeof body['error_description'] === 'string' ? body['error_description'] : `HTTP ${res.status}`;
    throw new LoginError(`login refused by ${new URL(challenge.realm).host}: ${reason}`);
  }
  const accessToken = body['access_token'] ?? body['token'];
  if (typeof accessToken !== 'string') throw new LoginError(`${challenge.realm} returned no access token`);
  return {
    accessToken,
    refreshToken: typeof body['refresh_token'] === 'string' ? body['refresh_token'] : undefined,
    expiresIn: typeof body['expires_in'] === 'number' ? body['expires_in'] : 60,
  };
}
