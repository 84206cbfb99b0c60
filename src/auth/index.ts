/** The token service's parts, built once per app from the metadata store and config. */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { AuthMetadata } from '../metadata/auth-store.js';
import { configuredAudience, InstanceAudience } from '../federation/audience.js';
import { IssuerKeys } from '../federation/issuers.js';
import { TokenTester } from '../federation/token-test.js';
import { FederationVerifier } from '../federation/verifier.js';
import type { Metrics } from '../metrics/index.js';
import type { Clock } from '../shared/clock.js';
import { AuditLog } from './admin/audit.js';
import { FederatedCredentialAdmin } from './admin/federated.js';
import { PrincipalAdmin } from './admin/principals.js';
import { RepositoryReach } from './admin/reach.js';
import { SettingsAdmin } from './admin/settings.js';
import { Authorizer } from './authorizer.js';
import { KeyRing } from './keys.js';
import { PrincipalService } from './principals.js';
import { observeTokenService } from './observability.js';
import { LoginThrottle } from './throttle.js';
import { TokenBounds } from './token-bounds.js';
import { TokenEndpoint } from './token-endpoint.js';
import { TokenService } from './tokens.js';

/** The management API's auth services: each change writes its audit entry. */
export interface AuthAdmin {
  principals: PrincipalAdmin;
  federatedCredentials: FederatedCredentialAdmin;
  settings: SettingsAdmin;
  audit: AuditLog;
  /** Who may pull, push or delete on a repository (`admin/reach.ts`). */
  reach: RepositoryReach;
  /** "Test a token": which federated credential would accept an OIDC token, or which check fails. */
  tokenTest: TokenTester;
}

export interface Auth {
  enabled: boolean;
  config: Config['auth'];
  keys: KeyRing;
  tokens: TokenService;
  principals: PrincipalService;
  endpoint: TokenEndpoint;
  /** The access decision every route and listing uses. */
  authorizer: Authorizer;
  admin: AuthAdmin;
  /** This registry's federation audience (federation/audience.ts), advertised in every Bearer challenge. */
  audience: InstanceAudience;
  /** Closes the connections the issuers' key fetches keep. */
  close(): Promise<void>;
}

/** With `metrics`, the token service is measured, traced and its refusals audited (`observability.ts`). */
export function createAuth(
  config: Config['auth'],
  federationConfig: Config['federation'],
  egress: Config['egress'],
  store: AuthMetadata,
  clock: Clock,
  logger: Logger,
  metrics?: Metrics,
): Auth {
  const longestRefreshMs = Math.max(...Object.values(config.lifetimes).map((l) => l.refreshMs));
  // Retired keys stay published until every token they signed has expired (plus clock skew).
  const keys = new KeyRing(store.signingKeys, clock, longestRefreshMs + 60_000, config.keyRevocationCheckMs);
  const tokens = new TokenService(keys, store.refreshTokens, clock, { issuer: config.issuer, service: config.service });
  const principals = new PrincipalService(store, clock, { adminUser: config.adminUser, bootstrap: config.bootstrap }, logger);
  const throttle = new LoginThrottle(config.throttle, clock);
  const issuerKeys = new IssuerKeys(
    federationConfig.issuers,
    federationConfig.discoveryTimeoutMs,
    federationConfig.keyRefetchCooldownMs,
    () => clock.now(),
    egress,
  );
  const audience = new InstanceAudience(configuredAudience(federationConfig.audience, config.publicUrl), store.instance, clock);
  const federation = new FederationVerifier(store, issuerKeys, federationConfig, clock, () => audience.get());
  const endpoint = new TokenEndpoint({
    store,
    principals,
    tokens,
    bounds: new TokenBounds(store, clock),
    throttle,
    clock,
    logger,
    service: config.service,
    issuer: config.issuer,
    lifetimes: config.lifetimes,
    federation,
    federatedLifetimeCapMs: federationConfig.lifetimeCapMs,
  });
  if (metrics) {
    observeTokenService(endpoint, federation, issuerKeys, {
      metrics,
      audit: store.audit,
      clock,
      configuredIssuers: federationConfig.issuers.map((i) => i.issuer),
    });
  }
  const authorizer = new Authorizer({
    enabled: config.enabled,
    verifyAccess: (token) => tokens.verifyAccess(token),
    keyRevoked: (kid) => tokens.keyRevoked(kid),
    grantsOf: (id) => principals.grantsOf(id),
    anonymousPull: store.anonymousPull,
    clock,
  });
  const audit = new AuditLog(store, clock);
  const admin: AuthAdmin = {
    principals: new PrincipalAdmin(store, principals, audit, clock),
    federatedCredentials: new FederatedCredentialAdmin(store, audit, clock, federationConfig, () => audience.get()),
    settings: new SettingsAdmin(store.anonymousPull, keys, audit, clock),
    audit,
    reach: new RepositoryReach(store, principals),
    tokenTest: new TokenTester(federation),
  };
  return {
    enabled: config.enabled,
    config,
    keys,
    tokens,
    principals,
    endpoint,
    authorizer,
    admin,
    audience,
    close: () => issuerKeys.close(),
  };
}
