/**
 * The token service's protocol logic, without HTTP: Docker token auth (`GET /oauth2/token` with
 * Basic or anonymous, `POST` with `grant_type=password|refresh_token`) and ACR's
 * `POST /oauth2/exchange`. The HTTP handler only parses the request and writes the answer.
 *
 * A granted token holds the intersection of what was asked and what the principal may do; an empty
 * grant is not an error here (the registry refuses the request). Every issued token is audited.
 */
import type { Logger } from 'pino';
import type { AuthMetadata, PrincipalRecord } from '../metadata/auth-store.js';
import type { Clock } from '../registry/context.js';
import { formatScope, parseScopes } from './access.js';
import { grantAccess, type Grant } from './permissions.js';
import { AuthenticationError, type PrincipalService } from './principals.js';
import type { LoginThrottle } from './throttle.js';
import { InvalidTokenError, type Identity, type TokenService } from './tokens.js';

/** Docker's convention: this user name means "the password is a refresh token". */
export const refreshTokenUser = '00000000-0000-0000-0000-000000000000';

export class OAuthError extends Error {
  override name = 'OAuthError';
  constructor(
    readonly status: number,
    readonly error: string,
    description: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
  }
}

export interface TokenRequest {
  /** Absent for the GET form (Basic credentials or anonymous). */
  grantType?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  refreshToken?: string | undefined;
  accessToken?: string | undefined;
  service?: string | undefined;
  scopes: string[];
  /** `offline_token=true` (GET) or `access_type=offline` (POST): also return a refresh token. */
  offline: boolean;
  clientAddress: string;
}

export interface TokenResponse {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
  scope?: string;
}

export type Lifetimes = Record<PrincipalRecord['kind'], { accessMs: number; refreshMs: number }>;

interface Resolved {
  identity: Identity;
  grants: Grant[];
  lifetime: { accessMs: number; refreshMs: number };
  /** A refresh grant keeps its token; only credential logins mint new ones. */
  mayMintRefresh: boolean;
}

export class TokenEndpoint {
  constructor(
    private readonly deps: {
      store: AuthMetadata;
      principals: PrincipalService;
      tokens: TokenService;
      throttle: LoginThrottle;
      clock: Clock;
      logger: Logger;
      service: string;
      lifetimes: Lifetimes;
    },
  ) {}

  async token(request: TokenRequest): Promise<TokenResponse> {
    this.checkService(request.service);
    const resolved = await this.resolve(request);
    const requested = parseScopes(request.scopes);
    const access = grantAccess(resolved.grants, requested);
    const issued = await this.deps.tokens.issueAccess(resolved.identity, access, resolved.lifetime.accessMs);
    const response: TokenResponse = {
      token: issued.token,
      access_token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt,
    };
    if (access.length > 0) response.scope = access.map(formatScope).join(' ');
    if (request.offline && resolved.mayMintRefresh) {
      response.refresh_token = (await this.deps.tokens.issueRefresh(resolved.identity, resolved.lifetime.refreshMs)).token;
    }
    await this.audit('token.issued', resolved.identity, request.clientAddress, {
      requested: requested.map(formatScope),
      granted: access.map(formatScope),
      refreshToken: response.refresh_token !== undefined,
    });
    return response;
  }

  /**
   * ACR's exchange: `grant_type=access_token` with an access token Berth issued (later also a
   * federated identity token), or `grant_type=password`, returns a registry refresh token.
   */
  async exchange(request: TokenRequest): Promise<{ refresh_token: string }> {
    this.checkService(request.service);
    let identity: Identity;
    let principal: PrincipalRecord;
    if (request.grantType === 'access_token') {
      if (!request.accessToken) throw new OAuthError(400, 'invalid_request', 'access_token is required');
      const claims = await this.deps.tokens.verifyAccess(request.accessToken).catch((err: unknown) => {
        if (err instanceof InvalidTokenError) throw new OAuthError(401, 'invalid_grant', `access token rejected: ${err.message}`);
        throw err;
      });
      principal = await this.usablePrincipal(claims.subject);
      identity = { subject: principal.id, name: principal.name, kind: principal.kind, credentialId: claims.credentialId };
    } else if (request.grantType === 'password') {
      const login = await this.login(request.username, request.password, request.clientAddress);
      principal = login.principal;
      identity = { subject: principal.id, name: principal.name, kind: principal.kind, credentialId: login.credentialId };
    } else {
      throw new OAuthError(400, 'unsupported_grant_type', 'grant_type must be access_token or password');
    }
    const refresh = await this.deps.tokens.issueRefresh(identity, this.deps.lifetimes[principal.kind].refreshMs);
    await this.audit('refresh_token.issued', identity, request.clientAddress, { via: `exchange:${request.grantType}` });
    return { refresh_token: refresh.token };
  }

  private checkService(service: string | undefined): void {
    if (service !== undefined && service !== '' && service !== this.deps.service) {
      throw new OAuthError(400, 'invalid_request', `unknown service ${JSON.stringify(service.slice(0, 100))}; this registry is ${this.deps.service}`);
    }
  }

  private async resolve(request: TokenRequest): Promise<Resolved> {
    const grantType = request.grantType;
    if (grantType === 'refresh_token' || (grantType === undefined || grantType === 'password') && request.username === refreshTokenUser) {
      const token = grantType === 'refresh_token' ? request.refreshToken : request.password;
      return this.fromRefreshToken(token, request.clientAddress);
    }
    if (grantType === 'password' || (grantType === undefined && request.username !== undefined)) {
      const { principal, credentialId } = await this.login(request.username, request.password, request.clientAddress);
      return {
        identity: { subject: principal.id, name: principal.name, kind: principal.kind, credentialId },
        grants: await this.deps.principals.grantsFor(principal),
        lifetime: this.deps.lifetimes[principal.kind],
        mayMintRefresh: true,
      };
    }
    if (grantType === undefined) {
      const patterns = await this.deps.store.anonymousPull.list();
      return {
        identity: { subject: 'anonymous', name: 'anonymous', kind: 'anonymous' },
        grants: patterns.map((pattern) => ({ pattern, permission: 'pull' })),
        lifetime: this.deps.lifetimes.user,
        mayMintRefresh: false,
      };
    }
    throw new OAuthError(400, 'unsupported_grant_type', 'grant_type must be password or refresh_token');
  }

  private async fromRefreshToken(token: string | undefined, clientAddress: string): Promise<Resolved> {
    if (!token) throw new OAuthError(400, 'invalid_request', 'refresh_token is required');
    const identity = await this.deps.tokens.verifyRefresh(token).catch(async (err: unknown) => {
      if (!(err instanceof InvalidTokenError)) throw err;
      await this.audit('login.failed', undefined, clientAddress, { reason: 'refresh token rejected' });
      throw new OAuthError(401, 'invalid_grant', 'refresh token is invalid, expired or revoked: log in again');
    });
    const principal = await this.usablePrincipal(identity.subject);
    return {
      identity: { subject: principal.id, name: principal.name, kind: principal.kind, credentialId: identity.credentialId },
      grants: await this.deps.principals.grantsFor(principal),
      lifetime: this.deps.lifetimes[principal.kind],
      mayMintRefresh: false,
    };
  }

  private async usablePrincipal(id: string): Promise<PrincipalRecord> {
    const principal = await this.deps.store.principals.get(id);
    try {
      if (!principal) throw new AuthenticationError('principal no longer exists');
      this.deps.principals.assertUsable(principal);
      return principal;
    } catch (err) {
      if (err instanceof AuthenticationError) throw new OAuthError(401, 'invalid_grant', `${err.message}: log in again`);
      throw err;
    }
  }

  /** A password login, throttled per name and per client address. */
  private async login(username: string | undefined, password: string | undefined, clientAddress: string) {
    if (!username || password === undefined) throw new OAuthError(400, 'invalid_request', 'username and password are required');
    const keys = [`name:${username}`, `address:${clientAddress}`];
    const wait = this.deps.throttle.retryAfter(keys);
    if (wait > 0) {
      throw new OAuthError(429, 'slow_down', 'too many failed logins; try again later', { 'Retry-After': String(Math.ceil(wait / 1000)) });
    }
    try {
      const result = await this.deps.principals.authenticate(username, password);
      this.deps.throttle.succeed(keys[0] as string);
      return result;
    } catch (err) {
      if (!(err instanceof AuthenticationError)) throw err;
      this.deps.throttle.fail(keys);
      await this.audit('login.failed', undefined, clientAddress, { username: username.slice(0, 128) });
      throw new OAuthError(401, 'invalid_grant', 'invalid username or password', { 'WWW-Authenticate': 'Basic realm="berth"' });
    }
  }

  private async audit(event: string, identity: Identity | undefined, clientAddress: string, detail: unknown): Promise<void> {
    await this.deps.store.audit.append({
      at: this.deps.clock.now(),
      event,
      principalId: identity?.subject,
      principalName: identity?.name,
      clientAddress,
      detail,
    });
  }
}
