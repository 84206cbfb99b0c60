/**
 * The token service's protocol logic, without HTTP: Docker token auth (`GET /oauth2/token` with
 * Basic or anonymous, `POST` with `grant_type=password|refresh_token`) and ACR's
 * `POST /oauth2/exchange`. The HTTP handler only parses the request and writes the answer.
 *
 * A granted token holds the intersection of what was asked and what the principal may do; an empty
 * grant is not an error here (the registry refuses the request). Every issued token is audited.
 */
import type { Logger } from 'pino';
import { refreshTokenUser } from '../api/principals.js';
import type { AuthMetadata, PrincipalRecord } from '../metadata/auth-store.js';
import type { Clock } from '../shared/clock.js';
import { formatScope, limitAccess, parseScopes, type Access } from './access.js';
import { anonymousPullGrants, grantAccess, type Grant } from './permissions.js';
import { AuthenticationError, type PrincipalService } from './principals.js';
import type { LoginThrottle } from './throttle.js';
import { FederationError, isForeignJwt, type FederatedMatch, type FederationVerifier } from '../federation/verifier.js';
import { InvalidTokenError, type Identity, type TokenService } from './tokens.js';

/** Docker's convention: this user name means "the password is a refresh token" (a wire constant, see api/). */
export { refreshTokenUser };

export const jwtBearerAssertion = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const tokenExchangeGrant = 'urn:ietf:params:oauth:grant-type:token-exchange';
const tokenTypes = {
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
  idToken: 'urn:ietf:params:oauth:token-type:id_token',
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  refreshToken: 'urn:ietf:params:oauth:token-type:refresh_token',
} as const;

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
  /** Federation: the principal's client id (Entra's client_credentials, the exchanges). */
  clientId?: string | undefined;
  clientAssertionType?: string | undefined;
  clientAssertion?: string | undefined;
  /** RFC 8693 token exchange. */
  subjectToken?: string | undefined;
  subjectTokenType?: string | undefined;
  requestedTokenType?: string | undefined;
}

export interface TokenResponse {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
  scope?: string;
  token_type?: string;
  issued_token_type?: string;
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
      issuer: string;
      lifetimes: Lifetimes;
      federation: FederationVerifier;
      /** Registry tokens bought with an OIDC token live at most this long (else: until it expires). */
      federatedLifetimeCapMs: number | undefined;
    },
  ) {}

  async token(request: TokenRequest): Promise<TokenResponse> {
    this.checkService(request.service);
    const resolved = await this.resolve(request);
    const requested = parseScopes(request.scopes);
    const ceiling = resolved.identity.scopeCeiling;
    const granted = grantAccess(resolved.grants, requested);
    const access = ceiling ? limitAccess(granted, ceiling) : granted;
    const issued = await this.deps.tokens.issueAccess(resolved.identity, access, resolved.lifetime.accessMs);
    const response: TokenResponse = {
      token: issued.token,
      access_token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt,
    };
    if (access.length > 0) response.scope = access.map(formatScope).join(' ');
    if (request.grantType === 'client_credentials' || request.grantType === tokenExchangeGrant) {
      response.token_type = 'Bearer';
    }
    if (request.grantType === tokenExchangeGrant) {
      if (request.requestedTokenType === tokenTypes.refreshToken) {
        const refresh = await this.deps.tokens.issueRefresh(bounded(resolved.identity, requested), resolved.lifetime.refreshMs);
        response.access_token = response.token = refresh.token;
        response.expires_in = refresh.expiresIn;
        response.token_type = 'N_A';
        response.issued_token_type = tokenTypes.refreshToken;
      } else {
        response.issued_token_type = tokenTypes.accessToken;
      }
    }
    if (request.offline && resolved.mayMintRefresh) {
      response.refresh_token = (await this.deps.tokens.issueRefresh(resolved.identity, resolved.lifetime.refreshMs)).token;
    }
    await this.audit('token.issued', resolved.identity, request.clientAddress, {
      ...scopeSummary('requested', requested),
      ...scopeSummary('granted', access),
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
    let refreshMs: number | undefined;
    if (request.grantType === 'access_token' && request.accessToken && isForeignJwt(request.accessToken, this.deps.issuer)) {
      const federated = await this.fromFederated(request.accessToken, request.clientId, request.clientAddress);
      principal = await this.usablePrincipal(federated.identity.subject);
      identity = federated.identity;
      refreshMs = federated.lifetime.refreshMs;
    } else if (request.grantType === 'access_token') {
      if (!request.accessToken) throw new OAuthError(400, 'invalid_request', 'access_token is required');
      const claims = await this.deps.tokens.verifyAccess(request.accessToken).catch((err: unknown) => {
        if (err instanceof InvalidTokenError) throw new OAuthError(401, 'invalid_grant', `access token rejected: ${err.message}`);
        throw err;
      });
      principal = await this.usablePrincipal(claims.subject);
      identity = {
        subject: principal.id,
        name: principal.name,
        kind: principal.kind,
        credentialId: claims.credentialId,
        provenance: claims.provenance,
        sessionExpiresAt: claims.sessionExpiresAt,
        scopeCeiling: claims.scopeCeiling,
      };
    } else if (request.grantType === 'password') {
      const login = await this.login(request.username, request.password, request.clientAddress);
      principal = login.principal;
      identity = { subject: principal.id, name: principal.name, kind: principal.kind, credentialId: login.credentialId };
    } else {
      throw new OAuthError(400, 'unsupported_grant_type', 'grant_type must be access_token or password');
    }
    identity = bounded(identity, parseScopes(request.scopes));
    const refresh = await this.deps.tokens.issueRefresh(identity, refreshMs ?? this.deps.lifetimes[principal.kind].refreshMs);
    await this.audit('refresh_token.issued', identity, request.clientAddress, {
      via: `exchange:${request.grantType}`,
      ...(identity.scopeCeiling ? { limitedTo: identity.scopeCeiling.map(formatScope) } : {}),
    });
    return { refresh_token: refresh.token };
  }

  /** Tokens derived from a refresh token never outlive it. */
  private capped(lifetime: { accessMs: number; refreshMs: number }, until: number): { accessMs: number; refreshMs: number } {
    const left = Math.max(1000, until - this.deps.clock.now());
    return { accessMs: Math.min(lifetime.accessMs, left), refreshMs: Math.min(lifetime.refreshMs, left) };
  }

  private checkService(service: string | undefined): void {
    if (service !== undefined && service !== '' && service !== this.deps.service) {
      throw new OAuthError(400, 'invalid_request', `unknown service ${JSON.stringify(service.slice(0, 100))}; this registry is ${this.deps.service}`);
    }
  }

  private async resolve(request: TokenRequest): Promise<Resolved> {
    const grantType = request.grantType;
    if (grantType === 'refresh_token' || ((grantType === undefined || grantType === 'password') && request.username === refreshTokenUser)) {
      const token = grantType === 'refresh_token' ? request.refreshToken : request.password;
      return this.fromRefreshToken(token, request.clientAddress);
    }
    if (grantType === 'client_credentials') {
      if (request.clientAssertionType !== jwtBearerAssertion) {
        throw new OAuthError(400, 'invalid_request', `client_assertion_type must be ${jwtBearerAssertion}`);
      }
      if (!request.clientAssertion) throw new OAuthError(400, 'invalid_request', 'client_assertion is required');
      return this.fromFederated(request.clientAssertion, request.clientId, request.clientAddress);
    }
    if (grantType === tokenExchangeGrant) {
      if (!request.subjectToken) throw new OAuthError(400, 'invalid_request', 'subject_token is required');
      if (request.subjectTokenType !== tokenTypes.jwt && request.subjectTokenType !== tokenTypes.idToken) {
        throw new OAuthError(400, 'invalid_request', `subject_token_type must be ${tokenTypes.jwt} or ${tokenTypes.idToken}`);
      }
      if (
        request.requestedTokenType !== undefined &&
        request.requestedTokenType !== tokenTypes.accessToken &&
        request.requestedTokenType !== tokenTypes.refreshToken
      ) {
        throw new OAuthError(400, 'invalid_request', 'requested_token_type must be an access or refresh token');
      }
      return this.fromFederated(request.subjectToken, request.clientId, request.clientAddress);
    }
    if ((grantType === 'password' || grantType === undefined) && request.password && isForeignJwt(request.password, this.deps.issuer)) {
      // `docker login -u <client id> -p <OIDC token>`: the password is the workload's identity token.
      return { ...(await this.fromFederated(request.password, request.username, request.clientAddress)), mayMintRefresh: true };
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
        grants: anonymousPullGrants(patterns),
        lifetime: this.deps.lifetimes.user,
        mayMintRefresh: false,
      };
    }
    throw new OAuthError(400, 'unsupported_grant_type', `grant_type must be password, refresh_token, client_credentials or ${tokenExchangeGrant}`);
  }

  /** A workload's OIDC token, checked against federated credentials (optionally one client's). */
  private async fromFederated(token: string, clientId: string | undefined, clientAddress: string): Promise<Resolved> {
    let match: FederatedMatch;
    try {
      match = await this.deps.federation.verify(token, clientId);
    } catch (err) {
      if (!(err instanceof FederationError)) throw err;
      await this.audit('login.failed', undefined, clientAddress, { federated: true, check: err.check, clientId: clientId?.slice(0, 128) });
      throw new OAuthError(401, 'invalid_grant', `federated login refused: ${err.message}`);
    }
    const principal = await this.usablePrincipal(match.principal.id);
    const now = this.deps.clock.now();
    const base = this.deps.lifetimes[principal.kind];
    // Never outlive the OIDC token that bought it, unless an explicit cap says otherwise.
    const limit = this.deps.federatedLifetimeCapMs ?? Math.max(1000, match.expiresAt - now);
    return {
      identity: {
        subject: principal.id,
        name: principal.name,
        kind: principal.kind,
        credentialId: match.credential.id,
        provenance: match.provenance,
        sessionExpiresAt: now + limit,
      },
      grants: await this.deps.principals.grantsFor(principal),
      lifetime: { accessMs: Math.min(base.accessMs, limit), refreshMs: Math.min(base.refreshMs, limit) },
      mayMintRefresh: false,
    };
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
      identity: {
        subject: principal.id,
        name: principal.name,
        kind: principal.kind,
        credentialId: identity.credentialId,
        provenance: identity.provenance,
        sessionExpiresAt: identity.sessionExpiresAt,
        scopeCeiling: identity.scopeCeiling,
      },
      grants: await this.deps.principals.grantsFor(principal),
      lifetime: this.capped(this.deps.lifetimes[principal.kind], identity.expiresAt),
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
      // Logging in again cannot help here (the principal is gone, disabled or expired): say only what it is.
      if (err instanceof AuthenticationError) throw new OAuthError(401, 'invalid_grant', err.message);
      throw err;
    }
  }

  /**
   * A password login, throttled per name, per client address and per both (`throttle.ts`); an
   * attempt holds its throttle slots while its secret is verified, so parallel attempts count.
   */
  private async login(username: string | undefined, password: string | undefined, clientAddress: string) {
    if (!username || password === undefined) throw new OAuthError(400, 'invalid_request', 'username and password are required');
    const admission = this.deps.throttle.admit(username, clientAddress);
    if (admission.kind === 'refused') {
      throw new OAuthError(429, 'slow_down', 'too many failed logins; try again later', {
        'Retry-After': String(Math.max(1, Math.ceil(admission.retryAfterMs / 1000))),
      });
    }
    const { attempt } = admission;
    let result: Awaited<ReturnType<PrincipalService['authenticate']>>;
    try {
      result = await this.deps.principals.authenticate(username, password);
    } catch (err) {
      if (!(err instanceof AuthenticationError)) {
        attempt.abandoned();
        throw err;
      }
      attempt.failed();
      await this.audit('login.failed', undefined, clientAddress, { username: username.slice(0, 128) });
      throw new OAuthError(401, 'invalid_grant', 'invalid username or password', { 'WWW-Authenticate': 'Basic realm="berth"' });
    }
    attempt.succeeded();
    return result;
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

/**
 * The identity a refresh token requested for `scopes` is issued to: bounded by them (and by any
 * ceiling it already had, so a bounded token can only be narrowed). No scopes: unchanged.
 */
function bounded(identity: Identity, scopes: readonly Access[]): Identity {
  if (scopes.length === 0) return identity;
  const ceiling = identity.scopeCeiling ? limitAccess(scopes, identity.scopeCeiling) : [...scopes];
  return { ...identity, scopeCeiling: ceiling };
}

/** Scopes an audit entry records in full; beyond that it records the first ones and the count. */
const auditedScopes = 10;

/**
 * A bounded record of a scope list for the audit log: every token request, anonymous ones included,
 * writes one entry, so what a client sends must not decide its size (each scope is at most
 * `maxScopeLength` characters, `parseScope` drops longer ones). `<field>Count` is added when the
 * list was cut.
 */
function scopeSummary(field: 'requested' | 'granted', scopes: readonly Access[]): Record<string, unknown> {
  const summary: Record<string, unknown> = { [field]: scopes.slice(0, auditedScopes).map(formatScope) };
  if (scopes.length > auditedScopes) summary[`${field}Count`] = scopes.length;
  return summary;
}
