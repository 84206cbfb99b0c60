/**
 * A service-account token becomes registry credentials at Berth, with the registry client the CLI
 * uses (remote/tokens.ts): ACR's three hops, as the seeds describe them.
 *
 * 1. `GET /v2/` -> the 401 challenge names the token realm (which must be on the registry's own
 *    host, else nothing is sent), the service and the audience the SA token is requested for;
 * 2. `POST /oauth2/exchange grant_type=access_token&access_token=<SA token>&client_id=…&scope=…`
 *    -> a registry refresh token bound to the binding's scopes (Berth never grants more through
 *    it, whatever the principal's roles) that never outlives the SA token (`sxp`);
 * 3. `POST /oauth2/token grant_type=refresh_token&scope=<the binding's scopes>` -> an access token,
 *    only to learn what Berth grants; a scope it leaves out is reported, not papered over.
 *
 * What goes into the pull secret is the refresh token, as the password of the null-GUID user:
 * Berth's `GET /oauth2/token` takes it with Basic auth, which is what kubelet/containerd, docker,
 * podman and skopeo all do with a user name and password.
 */
import { legacyAudience } from '../api/oidc.js';
import { formatScope, missingAccess, parseScopes } from '../api/scopes.js';
import { attestationRequirement } from '../remote/attestations.js';
import { registryUrl } from '../remote/reference.js';
import { discover, ExchangeRefusedError, exchangeIdentityToken, LoginError, requestTokens, tokenTimes } from '../remote/tokens.js';

export interface RegistryCredentials {
  /** The refresh token (a password for the null-GUID user). */
  refreshToken: string;
  /** ms since the epoch, read from the token. */
  issuedAt: number;
  expiresAt: number;
  /** Scopes Berth granted out of those asked. */
  granted: string[];
  /** Scopes asked for and not granted. */
  missing: string[];
}

export type ExchangeFailure = 'refused' | 'unreachable';

export class ExchangeError extends Error {
  override name = 'ExchangeError';
  constructor(
    readonly failure: ExchangeFailure,
    message: string,
  ) {
    super(message);
  }
}

/** What the reconciler calls; tests may substitute their own. */
export type Exchanger = (server: string, serviceAccountToken: string, clientId: string | undefined, scopes: string[]) => Promise<RegistryCredentials>;

/** The audience service-account tokens for `server` must carry. */
export type AudienceLookup = (server: string) => Promise<string>;

/**
 * The audience the Berth registry `server` advertises in its 401 challenge (api/oidc.ts); the
 * legacy `berth` for a registry that advertises none. Like the exchange, it refuses a registry
 * whose token service is on another host (`discover`).
 */
export const advertisedAudience: AudienceLookup = async (server) => {
  try {
    const challenge = await discover(registryUrl(server));
    if (!challenge) throw new ExchangeError('refused', `${server} does not ask for credentials (its auth is off): there is nothing to put in a pull secret`);
    return challenge.audience ?? legacyAudience;
  } catch (err) {
    if (err instanceof ExchangeError) throw err;
    if (err instanceof LoginError) throw new ExchangeError(err.reason === 'unreachable' ? 'unreachable' : 'refused', err.message);
    throw new ExchangeError('unreachable', `cannot ask ${server} for its audience: ${(err as Error).message}`);
  }
};

/** Exchanges at the Berth registry `server` (`host[:port]`; plain HTTP only on loopback). */
export const exchangeAtBerth: Exchanger = async (server, serviceAccountToken, clientId, scopes) => {
  const baseUrl = registryUrl(server);
  try {
    const challenge = await discover(baseUrl);
    if (!challenge) throw new ExchangeError('refused', `${server} does not ask for credentials (its auth is off): there is nothing to put in a pull secret`);
    let refreshToken: string;
    try {
      refreshToken = await exchangeIdentityToken(challenge, serviceAccountToken, clientId, scopes);
    } catch (err) {
      if (err instanceof ExchangeRefusedError) {
        const status = err.status !== undefined && err.status >= 500 ? 'unreachable' : 'refused';
        throw new ExchangeError(status, `Berth refused the service-account token: ${err.description}`);
      }
      throw err;
    }
    const times = tokenTimes(refreshToken);
    if (!times) throw new ExchangeError('refused', `${server} returned a refresh token without an expiry`);
    const tokens = await requestTokens(challenge, { refreshToken }, scopes, false);
    const granted = parseScopes(tokens.scope ? [tokens.scope] : []);
    const missing = missingAccess(granted, parseScopes(scopes)).map(formatScope);
    return {
      refreshToken,
      issuedAt: times.issuedAt ?? Date.now(),
      expiresAt: times.expiresAt,
      granted: granted.map(formatScope),
      missing,
    };
  } catch (err) {
    if (err instanceof ExchangeError) throw err;
    if (err instanceof LoginError) {
      // Refused: the registry said no, or named a token service this client will not send the token to.
      const refused = (err.status !== undefined && err.status < 500) || err.reason === 'insecure' || err.reason === 'invalid';
      throw new ExchangeError(refused ? 'refused' : 'unreachable', err.message);
    }
    throw new ExchangeError('unreachable', `exchange at ${server} failed: ${(err as Error).message}`);
  }
};

/** How the attestation requirement of a repository is looked up (tests may substitute their own). */
export type RequirementLookup = (server: string, repository: string) => Promise<{ required: boolean; rules: string[] }>;

/**
 * Defence in depth for clusters (`requireAttestations`): an exchanger that mints pull credentials
 * only for repositories whose Berth policy requires attestations at pull, so a pull secret or a
 * kubelet credential can never fetch an image that is not held to an identity-bound rule. Asks
 * Berth (`GET /api/v1/attestations/required`) for every repository of the scopes before exchanging.
 */
export function requireAttestationPolicy(exchange: Exchanger, lookup: RequirementLookup): Exchanger {
  return async (server, serviceAccountToken, clientId, scopes) => {
    for (const access of parseScopes(scopes)) {
      if (access.type !== 'repository') continue;
      let requirement: { required: boolean };
      try {
        requirement = await lookup(server, access.name);
      } catch (err) {
        throw new ExchangeError('unreachable', `cannot learn whether ${server} requires attestations for ${access.name}: ${(err as Error).message}`);
      }
      if (!requirement.required) {
        throw new ExchangeError(
          'refused',
          `${server} has no attestation rule enforced at pull for ${access.name}; pull credentials are minted only for repositories that require attestations (requireAttestations)`,
        );
      }
    }
    return exchange(server, serviceAccountToken, clientId, scopes);
  };
}

/** `requireAttestationPolicy` asking the registry itself (`remote/attestations.ts`). */
export const requireAttestationsAtBerth = (exchange: Exchanger): Exchanger => requireAttestationPolicy(exchange, attestationRequirement);
