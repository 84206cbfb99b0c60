/**
 * The authorization hook's presentation: the authorizer (`auth/authorizer.ts`) decides whether a
 * request's required access (from the route table) is covered by its bearer token or by the
 * anonymous-pull policy; this turns the decision into the answer:
 * - a challenge -> 401 with a Bearer challenge naming the realm, service and scope (and
 *   `error="invalid_token"` or `error="insufficient_scope"`, so the client fetches a better token),
 *   and this registry's federation audience (`audience="…"`, api/oidc.ts);
 * - denied -> 403 DENIED naming what is missing.
 */
import type { IncomingMessage } from 'node:http';
import { audienceChallengeParam } from '../api/oidc.js';
import { urls } from '../api/urls.js';
import type { Access } from '../auth/access.js';
import type { ChallengeReason } from '../auth/authorizer.js';
import type { Auth } from '../auth/index.js';
import type { AccessClaims } from '../auth/tokens.js';
import { RegistryError } from '../oci/errors.js';

/** The caller's identity if the request may go on (undefined: anonymous, or auth off); else throws the 401/403. */
export async function authorize(req: IncomingMessage, auth: Auth, required: Access[]): Promise<AccessClaims | undefined> {
  const header = req.headers['authorization'];
  const bearer = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
  const decision = await auth.authorizer.decide(bearer, required);
  switch (decision.kind) {
    case 'allowed':
      return decision.identity;
    case 'challenge':
      throw challenge(req, auth, required, decision.reason, await auth.audience.get());
    case 'denied':
      throw denied(decision.missing);
  }
}

/** 403 DENIED: `missing` is what the principal lacks (no token could grant it). */
export function denied(missing: readonly Access[], message = 'requested access to the resource is denied'): RegistryError {
  return new RegistryError('DENIED', message, {
    missing: missing.map((m) => ({ type: m.type, name: m.name, actions: m.actions })),
  });
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

/** A quoted-string's content (RFC 7230): `"` and `\` escaped. */
function quoted(value: string): string {
  return value.replace(/["\\]/g, (c) => `\\${c}`);
}

function challenge(req: IncomingMessage, auth: Auth, required: Access[], reason: ChallengeReason, audience: string): RegistryError {
  const error = reason === 'missing' ? undefined : reason;
  const realm = `${baseUrl(req, auth)}${urls.token()}`;
  const parts = [`realm="${realm}"`, `service="${auth.config.service}"`, `${audienceChallengeParam}="${quoted(audience)}"`];
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
