/**
 * The web console (docs/console.md): its page and assets, its session endpoints, and the parts of
 * `/api/v1` it added for every client (browsing repositories, who can reach one, the token test,
 * the OpenAPI document).
 */
import * as assets from '../handlers/console/assets.js';
import * as browse from '../handlers/console/browse.js';
import * as openapi from '../handlers/console/openapi.js';
import * as session from '../handlers/console/session.js';
import { api, name, type Route } from '../route.js';

const provider = '(?<provider>[^/]+)';

export const consoleRoutes: readonly Route[] = [
  { name: 'console', method: 'GET', path: /^\/(?:index\.html)?$/, guard: 'public', handle: assets.page },
  { name: 'console', method: 'HEAD', path: /^\/(?:index\.html)?$/, guard: 'public', handle: assets.page },
  { name: 'console-asset', method: 'GET', path: /^\/assets\/(?<file>[^/]+)$/, guard: 'public', handle: assets.asset },
  { name: 'console-session', method: 'GET', path: /^\/console\/session$/, guard: 'public', handle: session.get },
  { name: 'console-session', method: 'POST', path: /^\/console\/session$/, guard: 'public', handle: session.signIn },
  { name: 'console-session', method: 'DELETE', path: /^\/console\/session$/, guard: 'public', handle: session.signOut },
  { name: 'console-sso-start', method: 'GET', path: new RegExp(`^/console/sso/${provider}/start$`), guard: 'public', handle: session.ssoStart },
  { name: 'console-sso-callback', method: 'GET', path: new RegExp(`^/console/sso/${provider}/callback$`), guard: 'public', handle: session.ssoCallback },
  // /api/v1 for every client. The catalog's visibility rule applies: only what the caller may pull.
  {
    name: 'repositories',
    method: 'GET',
    path: api('repositories'),
    access: () => [{ type: 'registry', name: 'catalog', actions: ['metadata_read'] }],
    handle: browse.repositories,
  },
  // `registry` guard: pull on the repository, like its manifests.
  { name: 'repository-tags', method: 'GET', path: api(`repositories/${name}/tags`), handle: browse.tags },
  { name: 'repository-image', method: 'GET', path: api(`repositories/${name}/images/(?<digest>[^/]+)`), handle: browse.image },
  { name: 'repository-access', method: 'GET', path: api(`repositories/${name}/access`), guard: 'owner', handle: browse.access },
  { name: 'federated-credential-test', method: 'POST', path: api('federated-credentials/test'), guard: 'owner', handle: browse.testToken },
  { name: 'openapi', method: 'GET', path: api('openapi.json'), guard: 'public', handle: openapi.document },
];
