/**
 * Console sessions at the HTTP edge: the cookies, the CSRF and same-origin checks, and the
 * authorization hook for requests that carry a session cookie instead of a bearer token.
 *
 * - Cookies are HttpOnly and `SameSite=Strict` (the session) or `Lax` (the few minutes of a
 *   single sign-on round trip, which comes back as a top-level navigation from the provider);
 *   `Secure` with the `__Host-` prefix when the browser reaches Berth over TLS (Berth's own, or a
 *   `publicUrl` starting with https).
 * - A request with an `Authorization` header is decided by its token alone; the cookie is ignored.
 * - A session request that changes anything (any method but GET and HEAD) must carry the
 *   session's CSRF token in `X-Berth-CSRF` and must not come from another site (`Origin`,
 *   `Sec-Fetch-Site`); otherwise 403 CSRF_REFUSED. The decision itself is the authorizer's
 *   (`decideSession`): the principal's grants, as for a token.
 */
import type { IncomingMessage } from 'node:http';
import { csrfHeader } from '../api/console.js';
import { ApiError } from '../api/errors.js';
import type { Access } from '../auth/access.js';
import type { AccessClaims } from '../auth/tokens.js';
import type { ActiveSession } from '../console/index.js';
import { authorize, baseUrl, denied } from './authorize.js';
import type { Services } from './services.js';

const sessionCookie = 'berth_session';
const ssoCookie = 'berth_sso';

/** True when the browser reaches Berth over TLS (so cookies are `Secure`, `__Host-` prefixed). */
export function isSecure(req: IncomingMessage, services: Pick<Services, 'auth'>): boolean {
  const tls = 'encrypted' in req.socket && Boolean((req.socket as { encrypted?: boolean }).encrypted);
  return tls || (services.auth.config.publicUrl?.startsWith('https:') ?? false);
}

function cookieName(base: string, secure: boolean): string {
  return secure ? `__Host-${base}` : base;
}

/** The value of one cookie of the request (either prefix form), or undefined. */
export function readCookie(req: IncomingMessage, base: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    const name = part.slice(0, eq).trim();
    if (name === base || name === `__Host-${base}`) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function setCookie(base: string, value: string, options: { secure: boolean; sameSite: 'Strict' | 'Lax'; maxAgeSeconds: number }): string {
  return [
    `${cookieName(base, options.secure)}=${value}`,
    'Path=/',
    'HttpOnly',
    `SameSite=${options.sameSite}`,
    ...(options.secure ? ['Secure'] : []),
    `Max-Age=${Math.max(0, Math.floor(options.maxAgeSeconds))}`,
  ].join('; ');
}

export const cookies = {
  session: (value: string, secure: boolean, maxAgeSeconds: number) => setCookie(sessionCookie, value, { secure, sameSite: 'Strict', maxAgeSeconds }),
  clearSession: (secure: boolean) => setCookie(sessionCookie, '', { secure, sameSite: 'Strict', maxAgeSeconds: 0 }),
  sso: (value: string, secure: boolean, maxAgeSeconds: number) => setCookie(ssoCookie, value, { secure, sameSite: 'Lax', maxAgeSeconds }),
  clearSso: (secure: boolean) => setCookie(ssoCookie, '', { secure, sameSite: 'Lax', maxAgeSeconds: 0 }),
  readSession: (req: IncomingMessage) => readCookie(req, sessionCookie),
  readSso: (req: IncomingMessage) => readCookie(req, ssoCookie),
};

/** The live session the request's cookie names, or undefined (no cookie, or the session ended). */
export async function sessionOf(req: IncomingMessage, services: Pick<Services, 'console'>): Promise<ActiveSession | undefined> {
  if (!services.console.enabled) return undefined;
  const id = cookies.readSession(req);
  return id ? services.console.sessions.resolve(id) : undefined;
}

/**
 * Rule: a state-changing request made with a session comes from the console's own pages: it is
 * not marked cross-site by the browser and its `Origin`, when sent, is Berth's.
 */
export function assertSameOrigin(req: IncomingMessage, services: Pick<Services, 'auth'>): void {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new ApiError('CSRF_REFUSED', 'This request came from another site, so it was refused. Use the console itself.');
  }
  const origin = req.headers.origin;
  if (origin === undefined) return;
  const own = new Set([baseUrl(req, services.auth)]);
  const host = req.headers.host;
  if (host) own.add(`${isSecure(req, services) ? 'https' : 'http'}://${host}`);
  if (!own.has(origin)) throw new ApiError('CSRF_REFUSED', 'This request came from another origin, so it was refused. Use the console itself.');
}

/** Rule: a state-changing session request carries the session's CSRF token and comes from Berth's own pages. */
export function assertCsrf(req: IncomingMessage, services: Pick<Services, 'auth' | 'console'>, session: ActiveSession): void {
  assertSameOrigin(req, services);
  const given = req.headers[csrfHeader];
  if (!services.console.sessions.csrfMatches(session, typeof given === 'string' ? given : undefined)) {
    throw new ApiError('CSRF_REFUSED', "The request lacks this session's CSRF token (X-Berth-CSRF). Reload the console and try again.");
  }
}

/**
 * The authorization hook for every guarded route: a bearer token (or none) as before
 * (`authorize`); without an `Authorization` header, a console session cookie, decided by the
 * authorizer from the session's principal.
 */
export async function authorizeRequest(req: IncomingMessage, services: Services, required: Access[]): Promise<AccessClaims | undefined> {
  if (req.headers.authorization === undefined && services.console.enabled && cookies.readSession(req) !== undefined) {
    const session = await sessionOf(req, services);
    if (session) {
      if (req.method !== 'GET' && req.method !== 'HEAD') assertCsrf(req, services, session);
      const decision = await services.auth.authorizer.decideSession(services.console.sessions.principalOf(session), required);
      if (decision.kind === 'allowed') return decision.identity;
      if (decision.kind === 'denied') throw denied(decision.missing);
    }
  }
  return authorize(req, services.auth, required);
}
