/**
 * The authorization hook: every registry request's required access (from the route table) must be
 * covered by a valid Berth access token, or by the anonymous-pull policy. Otherwise:
 * - no or invalid token -> 401 with a Bearer challenge naming the realm, service and scope;
 * - a token without the scope, for a principal that has the right -> 401 insufficient_scope
 *   (the client fetches a better token);
 * - a principal without the right -> 403 DENIED.
 */
import type { IncomingMessage } from 'node:http';
import { urls } from '../api/urls.js';
import { missingAccess, type Access } from '../auth/access.js';
import type { Auth } from '../auth/index.js';
import { grantAccess, matchesPattern } from '../auth/permissions.js';
import { InvalidTokenError, type AccessClaims } from '../auth/tokens.js';
import { RegistryError } from '../oci/errors.js';

/** Verified tokens, so a burst of requests with one token costs one signature check. */
const verifiedCache = new WeakMap<Auth, Map<string, AccessClaims>>();
const maxCachedTokens = 10_000;
/** The anonymous-pull patterns, re-read at most this often. */
const anonymousTtlMs = 5_000;
const anonymousCache = new WeakMap<Auth, { at: number; patterns: string[] }>();

export async function authorize(req: IncomingMessage, auth: Auth, required: Access[], now: number): Promise<AccessClaims | undefined> {
  const header = req.headers['authorization'];
  const bearer = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
  if (!bearer) {
    if (required.length > 0 && (await anonymousMayPull(auth, required, now))) return undefined;
    throw challenge(req, auth, required, undefined);
  }
  let claims: AccessClaims;
  try {
    claims = await verify(auth, bearer, now);
  } catch (err) {
    if (err instanceof InvalidTokenError) throw challenge(req, auth, required, 'invalid_token');
    throw err;
  }
  const missing = missingAccess(claims.access, required);
  if (missing.length === 0) return claims;
  if (claims.kind === 'anonymous') throw challenge(req, auth, required, 'insufficient_scope');
  const principal = await auth.store.principals.get(claims.subject);
  const grants = principal ? await auth.principals.grantsFor(principal) : [];
  if (missingAccess(grantAccess(grants, missing), missing).length === 0) throw challenge(req, auth, required, 'insufficient_scope');
  throw new RegistryError('DENIED', 'requested access to the resource is denied', {
    missing: missing.map((m) => ({ type: m.type, name: m.name, actions: m.actions })),
  });
}

async function verify(auth: Auth, token: string, now: number): Promise<AccessClaims> {
  let cache = verifiedCache.get(auth);
  if (!cache) verifiedCache.set(auth, (cache = new Map()));
  const hit = cache.get(token);
  if (hit && hit.expiresAt > now) return hit;
  const claims = await auth.tokens.verifyAccess(token);
  if (cache.size >= maxCachedTokens) cache.clear();
  cache.set(token, claims);
  return claims;
}

async function anonymousMayPull(auth: Auth, required: Access[], now: number): Promise<boolean> {
  let cached = anonymousCache.get(auth);
  if (!cached || now - cached.at > anonymousTtlMs) {
    cached = { at: now, patterns: await auth.store.anonymousPull.list() };
    anonymousCache.set(auth, cached);
  }
  const patterns = cached.patterns;
  if (patterns.length === 0) return false;
  return required.every(
    (r) => r.type === 'repository' && r.actions.every((a) => a === 'pull' || a === 'metadata_read') && patterns.some((p) => matchesPattern(p, r.name)),
  );
}

/**
 * Narrow actions are asked for by their Docker names, which is what clients know; the catalog as
 * Docker names it, `registry:catalog:*` (the token endpoint grants what the principal may see).
 */
function dockerScope(access: Access): string {
  if (access.type === 'registry' && access.name === 'catalog') return 'registry:catalog:*';
  const actions = access.actions.map((a) => (a === 'metadata_read' ? 'pull' : a === 'metadata_write' ? 'delete' : a));
  return `${access.type}:${access.name}:${[...new Set(actions)].join(',')}`;
}

function challenge(req: IncomingMessage, auth: Auth, required: Access[], error: 'invalid_token' | 'insufficient_scope' | undefined): RegistryError {
  const realm = `${baseUrl(req, auth)}${urls.token()}`;
  const parts = [`realm="${realm}"`, `service="${auth.config.service}"`];
  const scopes = required.map(dockerScope);
  if (scopes.length > 0) parts.push(`scope="${scopes.join(' ')}"`);
  if (error) parts.push(`error="${error}"`);
  const message = error === 'invalid_token' ? 'the access token is invalid or expired' : 'authentication required';
  return new RegistryError(
    'UNAUTHORIZED',
    message,
    required.length > 0 ? required.map((r) => ({ type: r.type, name: r.name, actions: r.actions })) : undefined,
    {
      'WWW-Authenticate': `Bearer ${parts.join(',')}`,
    },
  );
}

/** Where clients reach Berth: the configured public URL, else the request's own Host (sanitised). */
export function baseUrl(req: IncomingMessage, auth: Auth): string {
  if (auth.config.publicUrl) return auth.config.publicUrl.replace(/\/+$/, '');
  const host = req.headers.host ?? '';
  const safeHost = /^[A-Za-z0-9.\-:[\]]{1,255}$/.test(host) ? host : '127.0.0.1';
  const tls = 'encrypted' in req.socket && Boolean((req.socket as { encrypted?: boolean }).encrypted);
  return `${tls ? 'https' : 'http'}://${safeHost}`;
}
