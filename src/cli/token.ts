/**
 * `berth token`: tokens for scripts, from the login `berth login` (or docker, podman, a
 * credential helper) stored.
 *
 * - `berth token REGISTRY --scope repository:app:pull` prints an access token holding that scope.
 * - `berth token --expose REGISTRY` prints, like `az acr login --expose-token`,
 *   `{"accessToken", "loginServer", "username"}`, where accessToken is a fresh REFRESH token (ACR's
 *   naming) to be used as the password of the null-GUID user: `docker login -u 0000…0000`.
 */
import { defaultLocations, loadCredentials, newRefreshToken } from '../client/credentials.js';
import { discover, LoginError, refreshTokenUser, requestTokens, type Credentials } from '../remote/tokens.js';
import { askCredentials, processIo, resolveRegistry, type CliIo } from './login.js';

export interface TokenOptions {
  scope?: string[];
  expose?: boolean;
  username?: string;
  passwordStdin?: boolean;
}

export async function token(registry: string, options: TokenOptions, io: CliIo = processIo()): Promise<void> {
  const { host, baseUrl } = resolveRegistry(registry);
  const challenge = await discover(baseUrl);
  if (!challenge) throw new LoginError(`${host} does not use tokens (its auth is off): no token needed`);
  const given = options.passwordStdin === true || options.username !== undefined;
  const credentials: Credentials | undefined = given ? await askCredentials(options, io) : await loadCredentials(host, defaultLocations(io.env));
  if (!credentials) throw new LoginError(`not logged in to ${host}: run \`berth login ${host}\` first`);
  try {
    if (options.expose) {
      if (options.scope && options.scope.length > 0) throw new LoginError('--expose prints a refresh token, which carries no scope; drop --scope');
      const refreshToken = await newRefreshToken(challenge, credentials);
      io.stdout.write(`${JSON.stringify({ accessToken: refreshToken, loginServer: host, username: refreshTokenUser }, null, 2)}\n`);
      return;
    }
    const scopes = options.scope ?? [];
    const issued = await requestTokens(challenge, credentials, scopes, false);
    if (scopes.length > 0) {
      if (!issued.scope) throw new LoginError(`${host} granted none of ${scopes.join(' ')} to this login; ask an owner for a grant`);
      const missing = scopes.filter((s) => !issued.scope?.split(' ').includes(s));
      if (missing.length > 0) io.stderr.write(`warning: ${host} granted only ${issued.scope}\n`);
    }
    io.stdout.write(`${issued.accessToken}\n`);
  } catch (err) {
    if (err instanceof LoginError && err.status === 401 && !given) {
      throw new LoginError(`${host} refused the stored login (expired or revoked): run \`berth login ${host}\` again`, 401);
    }
    throw err;
  }
}
