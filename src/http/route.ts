/**
 * What a route is: method, path pattern, guard and handler, and what a handler is given. The route
 * tables themselves are in `routes/` (one file per API), put together in `routes.ts`.
 *
 * Repository names may contain `/`, so patterns are anchored on the fixed suffix and the name part
 * is matched greedily; handlers validate names and references against the spec grammar.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Access } from '../auth/access.js';
import type { Auth } from '../auth/index.js';
import type { AccessClaims } from '../auth/tokens.js';
import type { Registry } from '../registry/index.js';
import type { Services } from './services.js';

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  /** Named groups of the route's path pattern, undecoded (names and references never need decoding). */
  params: Record<string, string>;
  query: URLSearchParams;
  registry: Registry;
  auth: Auth;
  /** Every service, including `registry` and `auth` (kept as shortcuts). */
  services: Services;
  /** Who is calling, once the guard has run (undefined when anonymous or auth is off). */
  identity: AccessClaims | undefined;
  /** The client's address: the peer, or what trusted proxies report (`client-address.ts`). */
  clientAddress: string;
  logger: Logger;
}

/**
 * Who may call a route: `registry` routes need the access `requiredAccess` derives; `owner` routes
 * (management) need `registry:admin:*`; `public` routes (the token service itself) need nothing;
 * `token` routes need any valid access token and leave the rest to the handler (import: an owner,
 * or push on every target repository the request names).
 */
export type Guard = 'registry' | 'owner' | 'public' | 'token';

export interface Route {
  name: string;
  method: Method;
  path: RegExp;
  guard?: Guard;
  /** For a `registry` route that is not about one repository: the access it needs (else derived from the method). */
  access?(params: Record<string, string>, query: URLSearchParams): Access[];
  handle(ctx: RouteContext): Promise<void>;
}

/** Path pattern builders for the route tables. */
export const name = '(?<name>.+)';
export const v2 = (suffix: string) => new RegExp(`^/v2/${suffix}$`);
export const api = (suffix: string) => new RegExp(`^/api/v1/${suffix}$`);
export const principal = 'principals/(?<principal>[^/]+)';
export const importJob = 'imports/(?<id>[^/]+)';
export const webhook = 'webhooks/(?<webhook>[^/]+)';
export const syncRule = 'sync/rules/(?<rule>[^/]+)';
