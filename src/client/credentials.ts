/**
 * Where the Berth CLI keeps and finds a registry's credentials, by docker's own rule: if
 * config.json names a credential helper for the registry (`credHelpers`, else `credsStore`), that
 * helper holds them (docker-credential-berth's file directly; any other helper through its
 * `store`/`get` protocol, as docker does); otherwise config.json's `auths` entry does.
 *
 * What is stored is always a refresh token, never a password.
 */
import { execFile } from 'node:child_process';
import { dockerConfigPath, credentialHelperFor, readDockerConfig, removeAuth, storeIdentityToken } from './docker-config.js';
import { CredentialStore, credentialStorePath } from './credential-store.js';
import { exchangeRefreshToken, LoginError, refreshTokenUser, requestTokens, tokenTimes, type Challenge, type Credentials } from '../remote/tokens.js';

export interface CredentialLocations {
  /** $DOCKER_CONFIG/config.json. */
  dockerConfig: string;
  /** docker-credential-berth's file. */
  store: CredentialStore;
}

export function defaultLocations(env: NodeJS.ProcessEnv = process.env): CredentialLocations {
  return { dockerConfig: dockerConfigPath(env), store: new CredentialStore(credentialStorePath(env)) };
}

/** Docker's user name for "Secret is an identity (refresh) token" in credential helpers. */
const helperTokenUser = '<token>';

/** Records `refreshToken` for `registry` wherever docker will look; returns where, for the user. */
export async function saveRefreshToken(registry: string, refreshToken: string, at: CredentialLocations): Promise<string> {
  const helper = credentialHelperFor(await readDockerConfig(at.dockerConfig), registry);
  if (helper === 'berth') {
    await at.store.put(registry, { username: refreshTokenUser, refreshToken });
    return at.store.path;
  }
  if (helper !== undefined) {
    await runHelper(helper, 'store', JSON.stringify({ ServerURL: registry, Username: helperTokenUser, Secret: refreshToken }));
    return `docker-credential-${helper}`;
  }
  await storeIdentityToken(registry, refreshToken, at.dockerConfig);
  return at.dockerConfig;
}

/**
 * The credentials stored for `registry`: a refresh token (identitytoken, or the null-GUID user's
 * password as `podman login` writes it), or a user name and password someone else's login left in
 * config.json. Undefined when there are none.
 */
export async function loadCredentials(registry: string, at: CredentialLocations): Promise<Credentials | undefined> {
  const config = await readDockerConfig(at.dockerConfig);
  const helper = credentialHelperFor(config, registry);
  if (helper === 'berth') {
    const stored = await at.store.get(registry);
    return stored && { refreshToken: stored.refreshToken };
  }
  if (helper !== undefined) {
    const out = await runHelper(helper, 'get', registry).catch((err: unknown) => {
      if (/credentials not found/i.test((err as Error).message)) return undefined;
      throw err;
    });
    if (out === undefined) return undefined;
    const { Username: username, Secret: secret } = JSON.parse(out) as { Username?: string; Secret?: string };
    if (!secret) return undefined;
    return username === helperTokenUser || username === refreshTokenUser || !username ? { refreshToken: secret } : { username, password: secret };
  }
  const entry = config.auths?.[registry];
  if (entry?.identitytoken) return { refreshToken: entry.identitytoken };
  if (!entry?.auth) return undefined;
  const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0 || colon === decoded.length - 1) return undefined;
  const username = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  return username === refreshTokenUser ? { refreshToken: password } : { username, password };
}

/** Forgets `registry` everywhere Berth may have put it; false if nothing was stored. */
export async function forgetCredentials(registry: string, at: CredentialLocations): Promise<boolean> {
  const helper = credentialHelperFor(await readDockerConfig(at.dockerConfig), registry);
  let found = await removeAuth(registry, at.dockerConfig);
  if (helper === 'berth' || (await at.store.get(registry))) found = (await at.store.remove(registry)) || found;
  else if (helper !== undefined)
    found =
      (await runHelper(helper, 'erase', registry).then(
        () => true,
        () => false,
      )) || found;
  return found;
}

/**
 * A new refresh token with a full lifetime: a password login with `access_type=offline`, or ACR's
 * exchange for a refresh token.
 */
export async function newRefreshToken(challenge: Challenge, credentials: Credentials): Promise<string> {
  if ('refreshToken' in credentials) return exchangeRefreshToken(challenge, credentials.refreshToken);
  const tokens = await requestTokens(challenge, credentials, [], true);
  if (!tokens.refreshToken)
    throw new LoginError(`${new URL(challenge.realm).host} issued no refresh token; is this a Berth (or ACR-compatible) token service?`);
  return tokens.refreshToken;
}

/**
 * The renewal rule: renew once less than half of a refresh token's lifetime is left, so whatever
 * starts with it (a long push) has at least that half to finish. Tokens whose times cannot be read
 * are left alone (the registry decides).
 */
export function needsRenewal(refreshToken: string, now: number): boolean {
  const times = tokenTimes(refreshToken);
  if (!times) return false;
  const lifetime = times.issuedAt !== undefined ? times.expiresAt - times.issuedAt : 0;
  return times.expiresAt - now < lifetime / 2;
}

/** Runs `docker-credential-<helper> <action>` with `input` on stdin; resolves with its stdout. */
function runHelper(helper: string, action: 'get' | 'store' | 'erase', input: string): Promise<string> {
  if (!/^[A-Za-z0-9._-]+$/.test(helper)) return Promise.reject(new Error(`invalid credential helper name ${JSON.stringify(helper)} in config.json`));
  return new Promise((resolve, reject) => {
    const child = execFile(`docker-credential-${helper}`, [action], { encoding: 'utf8', timeout: 60_000 }, (error, stdout, stderr) => {
      if (!error) return resolve(stdout);
      const detail = (stdout.trim() || stderr.trim() || error.message).split('\n')[0];
      reject(new Error(`docker-credential-${helper} ${action} failed: ${detail}`));
    });
    child.stdin?.end(input);
  });
}
