/**
 * docker-credential-berth: docker's credential-helper protocol
 * (https://github.com/docker/docker-credential-helpers), over Berth's own file of refresh tokens.
 *
 * - `get`: server URL on stdin -> `{"ServerURL","Username","Secret"}`: the null-GUID user and a
 *   refresh token, which clients send as a refresh-token login. A token past half its lifetime is
 *   first exchanged for a fresh one (POST /oauth2/exchange grant_type=refresh_token: same ceiling,
 *   never past what bought the login), so a push that starts with it has the other half to finish. A login made with `berth login --oidc`
 *   is renewed from its recorded OIDC source instead: a fresh OIDC token from GitHub, the file or
 *   the variable, exchanged again, so the login lasts as long as the workload's identity does.
 * - `store`: `{"ServerURL","Username","Secret"}` on stdin. A refresh token (user `<token>` or the
 *   null GUID) is kept as is; a password is traded for a refresh token at once and never stored.
 * - `erase`: server URL on stdin. `list`: `{"<server>": "<user name>"}`.
 *
 * Failures are one line on stdout and exit status 1, as the protocol wants; an unknown server is
 * exactly `credentials not found in native keychain`, which clients read as "not logged in".
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CredentialStore, credentialStorePath, type StoredCredential } from '../client/credential-store.js';
import { needsRenewal, newRefreshToken } from '../client/credentials.js';
import { loginCommand, storedLogin, type FederatedLogin } from '../client/federated-login.js';
import { formatOidcSource, OidcSourceError, readOidcToken } from '../client/oidc-sources.js';
import { registryHost, registryUrl } from '../remote/reference.js';
import { packageRoot } from '../shared/package-root.js';
import { discover, ExchangeRefusedError, exchangeIdentityToken, exchangeRefreshToken, LoginError, refreshTokenUser, tokenTimes } from '../remote/tokens.js';

/**
 * A refresh token bought with an OIDC token ends a second or so before it (whole seconds); an OIDC
 * token that would not outlive the current login by more than this is the one it was bought with.
 */
const sameTokenMarginMs = 10_000;

export const credentialsNotFound = 'credentials not found in native keychain';

export class CredentialsNotFoundError extends Error {
  override name = 'CredentialsNotFoundError';
  constructor() {
    super(credentialsNotFound);
  }
}

export interface HelperDeps {
  store: CredentialStore;
  now: () => number;
  /** Where a non-fatal problem is told (stderr): clients ignore it, a person debugging sees it. */
  warn: (line: string) => void;
  version: string;
  /** Where OIDC sources read `ACTIONS_ID_TOKEN_REQUEST_*` and `env:VAR` from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export function defaultHelperDeps(env: NodeJS.ProcessEnv = process.env): HelperDeps {
  return {
    store: new CredentialStore(credentialStorePath(env)),
    now: Date.now,
    warn: (line) => process.stderr.write(`docker-credential-berth: ${line}\n`),
    version: packageVersion(),
    env,
  };
}

/** From Berth's package.json. */
function packageVersion(): string {
  try {
    const manifest = JSON.parse(readFileSync(join(packageRoot(import.meta.url), 'package.json'), 'utf8')) as { version?: unknown };
    return typeof manifest.version === 'string' ? manifest.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Runs one protocol action on its stdin text; resolves with what to print on stdout. */
export async function credentialHelper(action: string | undefined, input: string, deps: HelperDeps): Promise<string> {
  switch (action) {
    case 'get':
      return get(input.trim(), deps);
    case 'store':
      await store(input, deps);
      return '';
    case 'erase':
      await deps.store.remove(registryHost(input.trim()));
      return '';
    case 'list':
      return `${JSON.stringify(await deps.store.list())}\n`;
    case 'version':
      return `docker-credential-berth (Berth) ${deps.version}\n`;
    default:
      throw new Error(`usage: docker-credential-berth get|store|erase|list|version (got ${JSON.stringify(action ?? '')})`);
  }
}

async function get(serverUrl: string, deps: HelperDeps): Promise<string> {
  let host: string;
  try {
    host = registryHost(serverUrl);
  } catch {
    throw new CredentialsNotFoundError();
  }
  let credential = await deps.store.get(host);
  if (!credential) throw new CredentialsNotFoundError();
  if (needsRenewal(credential.refreshToken, deps.now())) {
    credential = await deps.store.update(host, (current) => renew(host, current, deps));
    if (!credential) throw new CredentialsNotFoundError();
  }
  return `${JSON.stringify({ ServerURL: serverUrl, Username: credential.username, Secret: credential.refreshToken })}\n`;
}

/**
 * Under the store's lock, so concurrent `get`s renew once: re-checks the entry (another helper may
 * have renewed it), exchanges it, and keeps the old token when the registry cannot be reached but
 * the token is still valid.
 *
 * A login bought with an OIDC token is renewed from its source, not by exchanging the refresh token:
 * the refresh token was meant to end with the OIDC token, and a new OIDC token is checked against
 * the federated credential again (a removed credential or a changed claim ends the login).
 */
async function renew(host: string, current: StoredCredential | undefined, deps: HelperDeps): Promise<StoredCredential | undefined> {
  if (!current || !needsRenewal(current.refreshToken, deps.now())) return current;
  const federated = storedLogin(current);
  try {
    const challenge = await discover(registryUrl(host));
    if (!challenge) return current;
    if (!federated) return { ...current, refreshToken: await exchangeRefreshToken(challenge, current.refreshToken) };
    const oidcToken = await readOidcToken(federated.source, { env: deps.env ?? process.env, advertisedAudience: challenge.audience });
    const oidcExpiresAt = tokenTimes(oidcToken)?.expiresAt ?? Infinity;
    if (oidcExpiresAt - (tokenTimes(current.refreshToken)?.expiresAt ?? 0) < sameTokenMarginMs) {
      // The source still holds the token this login was bought with (a projected token is rotated
      // late in its life): another exchange would buy nothing longer.
      if (oidcExpiresAt > deps.now()) return current;
      throw new OidcSourceError(`the token it holds expired at ${new Date(oidcExpiresAt).toISOString()} and was not replaced`);
    }
    return { ...current, refreshToken: await exchangeIdentityToken(challenge, oidcToken, federated.identity) };
  } catch (err) {
    const expiresAt = tokenTimes(current.refreshToken)?.expiresAt ?? 0;
    const refused = err instanceof LoginError && (err.status === 400 || err.status === 401);
    if (refused || expiresAt <= deps.now()) throw renewalFailed(host, federated, err as Error, expiresAt <= deps.now());
    deps.warn(`could not renew the refresh token for ${host}, using the current one: ${(err as Error).message}`);
    return current;
  }
}

function renewalFailed(host: string, federated: FederatedLogin | undefined, err: Error, expired: boolean): Error {
  if (!federated) return new Error(`the stored login for ${host} has expired or was revoked (${err.message}); run: berth login ${host}`);
  const source = formatOidcSource(federated.source);
  const why =
    err instanceof OidcSourceError
      ? `its source ${source} gave no new OIDC token`
      : err instanceof ExchangeRefusedError
        ? `the registry refused a new OIDC token from ${source}`
        : `it could not be renewed from ${source}`;
  const detail = err instanceof ExchangeRefusedError ? err.description : err.message;
  return new Error(
    `the stored login for ${host} ${expired ? 'has expired and ' : ''}cannot be renewed: ${why} (${detail}); run: ${loginCommand(host, federated)}`,
  );
}

async function store(input: string, deps: HelperDeps): Promise<void> {
  let request: { ServerURL?: unknown; Username?: unknown; Secret?: unknown };
  try {
    request = JSON.parse(input) as typeof request;
  } catch {
    throw new Error('store expects {"ServerURL","Username","Secret"} as JSON on stdin');
  }
  if (typeof request.ServerURL !== 'string' || typeof request.Secret !== 'string' || request.Secret === '') {
    throw new Error('store expects {"ServerURL","Username","Secret"} with a non-empty Secret');
  }
  const host = registryHost(request.ServerURL);
  const username = typeof request.Username === 'string' ? request.Username : '';
  let refreshToken = request.Secret;
  if (username !== '<token>' && username !== refreshTokenUser && username !== '') {
    // A password: trade it for a refresh token now, so the password itself is never written down.
    const challenge = await discover(registryUrl(host));
    if (!challenge) throw new Error(`${host} does not ask for credentials (its auth is off): nothing to store`);
    refreshToken = await newRefreshToken(challenge, { username, password: request.Secret });
  }
  await deps.store.put(host, { username: refreshTokenUser, refreshToken });
}
