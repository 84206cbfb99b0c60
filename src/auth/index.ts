/** The token service's parts, built once per app from the metadata store and config. */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { AuthMetadata } from '../metadata/auth-store.js';
import type { Clock } from '../registry/context.js';
import { KeyRing } from './keys.js';
import { PrincipalService } from './principals.js';
import { LoginThrottle } from './throttle.js';
import { TokenEndpoint } from './token-endpoint.js';
import { TokenService } from './tokens.js';

export interface Auth {
  enabled: boolean;
  config: Config['auth'];
  store: AuthMetadata;
  keys: KeyRing;
  tokens: TokenService;
  principals: PrincipalService;
  endpoint: TokenEndpoint;
}

export function createAuth(config: Config['auth'], store: AuthMetadata, clock: Clock, logger: Logger): Auth {
  const longestRefreshMs = Math.max(...Object.values(config.lifetimes).map((l) => l.refreshMs));
  // Retired keys stay published until every token they signed has expired (plus clock skew).
  const keys = new KeyRing(store.signingKeys, clock, longestRefreshMs + 60_000);
  const tokens = new TokenService(keys, store.refreshTokens, clock, { issuer: config.issuer, service: config.service });
  const principals = new PrincipalService(store, clock, { adminUser: config.adminUser, bootstrap: config.bootstrap }, logger);
  const throttle = new LoginThrottle(config.throttle.maxFailures, config.throttle.windowMs, clock);
  const endpoint = new TokenEndpoint({ store, principals, tokens, throttle, clock, logger, service: config.service, lifetimes: config.lifetimes });
  return { enabled: config.enabled, config, store, keys, tokens, principals, endpoint };
}
