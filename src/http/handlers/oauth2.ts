/**
 * The token service's HTTP face: GET/POST /oauth2/token, POST /oauth2/exchange, GET /oauth2/jwks.
 * Parsing only; the protocol lives in auth/token-endpoint.ts.
 */
import type { IncomingMessage } from 'node:http';
import { OAuthError, type TokenRequest } from '../../auth/token-endpoint.js';
import { RegistryError } from '../../oci/errors.js';
import { readBoundedBody } from '../request.js';
import { sendJson } from '../respond.js';
import type { RouteContext } from '../route.js';

const maxFormBytes = 64 * 1024;
const noStore = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

function basicCredentials(req: IncomingMessage): { username: string; password: string } | undefined {
  const header = req.headers['authorization'];
  if (!header?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new OAuthError(400, 'invalid_request', 'malformed Basic credentials');
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new OAuthError(400, 'invalid_request', 'expected an application/x-www-form-urlencoded body');
  }
  const body = await readBoundedBody(req, maxFormBytes, () => new OAuthError(413, 'invalid_request', 'form body too large'));
  return new URLSearchParams(body.toString('utf8'));
}

function optional(params: URLSearchParams, name: string): string | undefined {
  return params.get(name) ?? undefined;
}

/** GET /oauth2/token?service=&scope=…&offline_token=true, with Basic credentials or none. */
export async function getToken(ctx: RouteContext): Promise<void> {
  const basic = basicCredentials(ctx.req);
  const request: TokenRequest = {
    username: basic?.username,
    password: basic?.password,
    service: optional(ctx.query, 'service'),
    scopes: ctx.query.getAll('scope'),
    offline: ctx.query.get('offline_token') === 'true',
    clientAddress: ctx.clientAddress,
  };
  sendJson(ctx.res, 200, await ctx.auth.endpoint.token(request), noStore);
}

/** POST /oauth2/token (form): grant_type=password|refresh_token, service, scope, access_type=offline. */
export async function postToken(ctx: RouteContext): Promise<void> {
  const form = await readForm(ctx.req);
  const basic = basicCredentials(ctx.req);
  const grantType = optional(form, 'grant_type');
  if (!grantType) throw new OAuthError(400, 'invalid_request', 'grant_type is required');
  const request: TokenRequest = {
    grantType,
    username: optional(form, 'username') ?? basic?.username,
    password: optional(form, 'password') ?? basic?.password,
    refreshToken: optional(form, 'refresh_token'),
    service: optional(form, 'service'),
    scopes: form.getAll('scope'),
    offline: form.get('access_type') === 'offline',
    clientAddress: ctx.clientAddress,
    clientId: optional(form, 'client_id'),
    clientAssertionType: optional(form, 'client_assertion_type'),
    clientAssertion: optional(form, 'client_assertion'),
    subjectToken: optional(form, 'subject_token'),
    subjectTokenType: optional(form, 'subject_token_type'),
    requestedTokenType: optional(form, 'requested_token_type'),
  };
  sendJson(ctx.res, 200, await ctx.auth.endpoint.token(request), noStore);
}

/**
 * POST /oauth2/exchange (ACR): grant_type=access_token&service=&access_token=, or
 * grant_type=refresh_token&refresh_token= (renewal), or grant_type=password -> {refresh_token}.
 * Optional `scope` parameters bound the refresh token: every token derived from it grants at most
 * those scopes (what a Kubernetes pull secret for named repositories needs).
 */
export async function exchange(ctx: RouteContext): Promise<void> {
  const form = await readForm(ctx.req);
  const basic = basicCredentials(ctx.req);
  const request: TokenRequest = {
    grantType: optional(form, 'grant_type'),
    accessToken: optional(form, 'access_token'),
    refreshToken: optional(form, 'refresh_token'),
    username: optional(form, 'username') ?? basic?.username,
    password: optional(form, 'password') ?? basic?.password,
    service: optional(form, 'service'),
    scopes: form.getAll('scope'),
    offline: true,
    clientAddress: ctx.clientAddress,
    clientId: optional(form, 'client_id'),
  };
  sendJson(ctx.res, 200, await ctx.auth.endpoint.exchange(request), noStore);
}

/** GET /oauth2/jwks: the public keys that verify Berth's tokens (current and recently rotated). */
export async function jwks(ctx: RouteContext): Promise<void> {
  if (!ctx.auth.enabled) throw new RegistryError('NOT_FOUND', 'the token service is disabled');
  sendJson(ctx.res, 200, await ctx.auth.keys.jwks(), { 'Cache-Control': 'max-age=300' });
}
