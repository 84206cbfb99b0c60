/** The token service (`/oauth2`): public routes, each grant authenticates itself. */
import * as oauth2 from '../handlers/oauth2.js';
import type { Route } from '../route.js';

export const tokenRoutes: readonly Route[] = [
  { name: 'token', method: 'GET', path: /^\/oauth2\/token$/, guard: 'public', handle: oauth2.getToken },
  { name: 'token', method: 'POST', path: /^\/oauth2\/token$/, guard: 'public', handle: oauth2.postToken },
  { name: 'exchange', method: 'POST', path: /^\/oauth2\/exchange$/, guard: 'public', handle: oauth2.exchange },
  { name: 'jwks', method: 'GET', path: /^\/oauth2\/jwks$/, guard: 'public', handle: oauth2.jwks },
];
