/**
 * The console's session endpoints (docs/console.md):
 * - `GET /console/session` → who is signed in (or not), the single-sign-on providers, the CSRF
 *   token; and, once, why the last single sign-on failed.
 * - `POST /console/session {username, password}` → signs in through the token service (throttled),
 *   sets the session cookie. Refused from other sites, and only as JSON (so a cross-site form
 *   cannot post it).
 * - `DELETE /console/session` → signs out: the session ends on the server. Needs the CSRF token.
 * - `GET /console/sso/{provider}/start?return=#/…` → to the provider (PKCE, state, nonce).
 * - `GET /console/sso/{provider}/callback` → back from it: a session, then to the console.
 */
import type { SessionView } from '../../../api/console.js';
import { signInInput } from '../../../api/console.js';
import { ApiError } from '../../../api/errors.js';
import { SsoFailure, type ActiveSession, type PendingSignIn } from '../../../console/index.js';
import { RegistryError } from '../../../oci/errors.js';
import { baseUrl } from '../../authorize.js';
import { assertCsrf, assertSameOrigin, cookies, isSecure, sessionOf } from '../../console-session.js';
import { send, sendJson } from '../../respond.js';
import type { RouteContext } from '../../route.js';
import { pathParam, readJson } from '../admin/common.js';
import { securityHeaders } from './assets.js';

const noStore = { 'Cache-Control': 'no-store' };

function consoleOf(ctx: RouteContext) {
  const console = ctx.services.console;
  if (!console.enabled) throw new RegistryError('NOT_FOUND', 'the web console is off (console.enabled, or the token service is off)');
  return console;
}

async function view(ctx: RouteContext, session: ActiveSession | undefined): Promise<SessionView> {
  const console = consoleOf(ctx);
  return {
    signedIn: session !== undefined,
    providers: console.sso.list(),
    user: session ? await console.sessions.describe(session) : null,
    csrfToken: session?.csrfToken ?? null,
  };
}

function clientAddress(ctx: RouteContext): string {
  return ctx.req.socket.remoteAddress ?? 'unknown';
}

/** GET /console/session */
export async function get(ctx: RouteContext): Promise<void> {
  consoleOf(ctx);
  const session = await sessionOf(ctx.req, ctx.services);
  const body: SessionView & { ssoError?: string } = await view(ctx, session);
  const headers: Record<string, string> = { ...noStore };
  // A failed single sign-on leaves its reason in the (HttpOnly) sso cookie: shown once, then cleared.
  const pending = readPending(ctx);
  if (pending && 'error' in pending) {
    body.ssoError = pending.error;
    headers['Set-Cookie'] = cookies.clearSso(isSecure(ctx.req, ctx.services));
  }
  sendJson(ctx.res, 200, body, headers);
}

/** POST /console/session {username, password} */
export async function signIn(ctx: RouteContext): Promise<void> {
  const console = consoleOf(ctx);
  assertSameOrigin(ctx.req, ctx.services);
  if (!/^application\/json\b/i.test(ctx.req.headers['content-type'] ?? '')) {
    throw new ApiError('INVALID_REQUEST', 'sign in with a JSON body {username, password} (Content-Type: application/json)');
  }
  const body = await readJson(ctx, signInInput);
  const { id, session } = await console.sessions.signInWithPassword(body.username, body.password, clientAddress(ctx));
  const secure = isSecure(ctx.req, ctx.services);
  sendJson(
    ctx.res,
    200,
    await view(ctx, session),
    Object.assign({}, noStore, { 'Set-Cookie': cookies.session(id, secure, console.settings.sessionLifetimeMs / 1000) }),
  );
}

/** DELETE /console/session */
export async function signOut(ctx: RouteContext): Promise<void> {
  const console = consoleOf(ctx);
  const session = await sessionOf(ctx.req, ctx.services);
  const secure = isSecure(ctx.req, ctx.services);
  if (session) {
    assertCsrf(ctx.req, ctx.services, session);
    await console.sessions.end(session, clientAddress(ctx));
  }
  send(ctx.res, 204, Object.assign({}, noStore, { 'Set-Cookie': cookies.clearSession(secure) }));
}

/** GET /console/sso/{provider}/start?return=#/… */
export async function ssoStart(ctx: RouteContext): Promise<void> {
  const console = consoleOf(ctx);
  const provider = pathParam(ctx, 'provider');
  const requested = ctx.query.get('return') ?? '';
  // Only a route inside the console: never an absolute URL (no open redirect).
  const returnTo = /^#\/[A-Za-z0-9/_.~%?=&:@+-]{0,500}$/.test(requested) ? requested : '#/';
  const { url, pending } = await console.sso.begin(provider, callbackUrl(ctx, provider), returnTo);
  const secure = isSecure(ctx.req, ctx.services);
  send(ctx.res, 302, Object.assign({}, noStore, securityHeaders, { Location: url, 'Set-Cookie': cookies.sso(encodePending(pending), secure, 600) }));
}

/** GET /console/sso/{provider}/callback?code=&state=… */
export async function ssoCallback(ctx: RouteContext): Promise<void> {
  const console = consoleOf(ctx);
  const provider = pathParam(ctx, 'provider');
  const secure = isSecure(ctx.req, ctx.services);
  const pending = readPending(ctx);
  const callback = new URL(`${callbackUrl(ctx, provider)}?${ctx.query.toString()}`);
  try {
    const result = await console.sso.finish(provider, callback, pending && !('error' in pending) ? pending : undefined, clientAddress(ctx));
    const { id } = await console.sessions.start(result.principal, 'sso', provider, clientAddress(ctx));
    const returnTo = pending && !('error' in pending) ? pending.returnTo : '#/';
    ctx.res.setHeader('Set-Cookie', [cookies.session(id, secure, console.settings.sessionLifetimeMs / 1000), cookies.clearSso(secure)]);
    send(ctx.res, 302, Object.assign({}, noStore, securityHeaders, { Location: `/${returnTo}` }));
  } catch (err) {
    if (!(err instanceof SsoFailure)) throw err;
    ctx.logger.info({ provider, reason: err.message }, 'single sign-on failed');
    ctx.res.setHeader('Set-Cookie', cookies.sso(encodeError(err.message), secure, 600));
    send(ctx.res, 302, Object.assign({}, noStore, securityHeaders, { Location: '/#/sign-in?sso=failed' }));
  }
}

/** Where the provider sends the person back: registered at the provider as the redirect URI. */
function callbackUrl(ctx: RouteContext, provider: string): string {
  return `${baseUrl(ctx.req, ctx.auth)}/console/sso/${encodeURIComponent(provider)}/callback`;
}

type PendingCookie = PendingSignIn | { error: string };

function encodePending(pending: PendingSignIn): string {
  return Buffer.from(JSON.stringify(pending)).toString('base64url');
}

function encodeError(message: string): string {
  return Buffer.from(JSON.stringify({ error: message.slice(0, 500) })).toString('base64url');
}

/** The sso cookie: a sign-in under way, or the reason the last one failed; undefined when absent or malformed. */
function readPending(ctx: RouteContext): PendingCookie | undefined {
  const raw = cookies.readSso(ctx.req);
  if (!raw || raw.length > 4096) return undefined;
  try {
    const value = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (typeof value['error'] === 'string') return { error: value['error'] };
    const { provider, state, nonce, codeVerifier, returnTo, expiresAt } = value;
    if (
      typeof provider === 'string' &&
      typeof state === 'string' &&
      typeof nonce === 'string' &&
      typeof codeVerifier === 'string' &&
      typeof returnTo === 'string' &&
      typeof expiresAt === 'number'
    ) {
      return { provider, state, nonce, codeVerifier, returnTo, expiresAt };
    }
  } catch {
    // A tampered or truncated cookie is treated as absent.
  }
  return undefined;
}
