/**
 * Metrics, spans and refusal audit entries of the token service, added around the token endpoint
 * and the federation verifier once, when the app is built, so neither carries measuring code:
 * - `berth_token_requests_total{endpoint, grant, result}` and `berth_token_refusals_total{endpoint,
 *   grant, reason}` (reason: the OAuth error code: invalid_grant, invalid_request, slow_down, …);
 * - `berth_federation_exchanges_total{issuer, credential, result}`: result `ok` or the check that
 *   failed (issuer, signature, expired, audience, subject, condition, …), the first question when a
 *   workflow gets a 401. Issuer and credential names are operator-configured, so bounded: an issuer
 *   nobody trusts is `untrusted`, a token with none `none`, and the credential is `none` unless one
 *   matched;
 * - `berth_federation_key_fetches_total{issuer, kind, result}`: discovery and JWKS fetches;
 * - every refused token request is audited as `token.refused` with the grant, the error and its
 *   description (issued tokens and failed logins are audited by the endpoint itself);
 * - a span per token request when the request is traced.
 */
import type { AuditIndex } from '../metadata/auth-store.js';
import type { Metrics } from '../metrics/index.js';
import { tracer } from '../metrics/tracing.js';
import type { Clock } from '../shared/clock.js';
import { decodeClaims, type UnverifiedJwt } from '../shared/jwt.js';
import { refreshTokenUser } from '../api/principals.js';
import { FederationError, type FederationVerifier } from '../federation/verifier.js';
import type { IssuerKeys } from '../federation/issuers.js';
import { OAuthError, tokenExchangeGrant, type TokenEndpoint, type TokenRequest } from './token-endpoint.js';

export interface TokenObservation {
  metrics: Metrics;
  audit: AuditIndex;
  clock: Clock;
  /** Issuers configured in `federation.issuers` (always named in labels). */
  configuredIssuers: readonly string[];
}

export function observeTokenService(endpoint: TokenEndpoint, federation: FederationVerifier, issuerKeys: IssuerKeys, deps: TokenObservation): void {
  const { metrics } = deps;
  const requests = metrics.counter('berth_token_requests_total', 'Token requests by endpoint (token, exchange), grant type and result (issued, refused).', [
    'endpoint',
    'grant',
    'result',
  ]);
  const refusals = metrics.counter('berth_token_refusals_total', 'Refused token requests by endpoint, grant type and reason (the OAuth error code).', [
    'endpoint',
    'grant',
    'reason',
  ]);
  const exchanges = metrics.counter(
    'berth_federation_exchanges_total',
    'Workload identity tokens presented, by issuer, matching federated credential and result (ok, or the check that failed).',
    ['issuer', 'credential', 'result'],
  );
  const fetches = metrics.counter('berth_federation_key_fetches_total', "Fetches of an issuer's discovery document and JWKS, by result (ok, error).", [
    'issuer',
    'kind',
    'result',
  ]);
  const configured = new Set(deps.configuredIssuers);

  const observe = <T>(name: 'token' | 'exchange', request: TokenRequest, work: () => Promise<T>): Promise<T> => {
    const grant = name === 'token' ? tokenGrant(request) : exchangeGrant(request);
    return tracer().span(`token.${name}`, { 'berth.token.grant': grant }, async () => {
      try {
        const result = await work();
        requests.inc({ endpoint: name, grant, result: 'issued' });
        return result;
      } catch (err) {
        const reason = err instanceof OAuthError ? err.error : 'server_error';
        requests.inc({ endpoint: name, grant, result: 'refused' });
        refusals.inc({ endpoint: name, grant, reason });
        if (err instanceof OAuthError) {
          await deps.audit.append({
            at: deps.clock.now(),
            event: 'token.refused',
            clientAddress: request.clientAddress,
            detail: { endpoint: name, grant, error: err.error, status: err.status, reason: err.message.slice(0, 500) },
          });
        }
        throw err;
      }
    });
  };
  const token = endpoint.token.bind(endpoint);
  const exchange = endpoint.exchange.bind(endpoint);
  endpoint.token = (request) => observe('token', request, () => token(request));
  endpoint.exchange = (request) => observe('exchange', request, () => exchange(request));

  const verify = federation.verify.bind(federation);
  federation.verify = async (jwt, clientId) => {
    try {
      const match = await verify(jwt, clientId);
      exchanges.inc({ issuer: match.credential.issuer, credential: match.credential.name, result: 'ok' });
      return match;
    } catch (err) {
      if (err instanceof FederationError) {
        // Read only for a refusal: an accepted token's issuer is its credential's.
        const iss = issuerOf(jwt);
        // Past the issuer check the issuer is one some credential trusts: an operator's name, so a bounded label.
        const trusted = iss !== undefined && (configured.has(iss) || err.check !== 'issuer');
        const issuer = iss === undefined ? 'none' : trusted ? iss : 'untrusted';
        exchanges.inc({ issuer, credential: 'none', result: err.check });
      }
      throw err;
    }
  };

  issuerKeys.observeFetches((issuer, kind, ok) => fetches.inc({ issuer, kind, result: ok ? 'ok' : 'error' }));
}

/** The grant of a `/oauth2/token` request, as a label (a closed set). */
function tokenGrant(request: TokenRequest): string {
  switch (request.grantType) {
    case undefined:
      if (request.username === undefined) return 'anonymous';
      return request.username === refreshTokenUser ? 'refresh_token' : 'password';
    case 'password':
      return request.username === refreshTokenUser ? 'refresh_token' : 'password';
    case 'refresh_token':
    case 'client_credentials':
      return request.grantType;
    case tokenExchangeGrant:
      return 'token_exchange';
    default:
      return 'other';
  }
}

/** The grant of a `/oauth2/exchange` request, as a label. */
function exchangeGrant(request: TokenRequest): string {
  const grant = request.grantType;
  return grant === 'access_token' || grant === 'password' || grant === 'refresh_token' ? grant : 'other';
}

function issuerOf(jwt: string | UnverifiedJwt): string | undefined {
  try {
    const iss = (typeof jwt === 'string' ? decodeClaims(jwt) : jwt.claims)['iss'];
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}
