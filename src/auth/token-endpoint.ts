/**
 * The token service's protocol logic, without HTTP: Docker token auth (`GET /oauth2/token` with
 * Basic or anonymous, `POST` with `grant_type=password|refresh_token`) and ACR's
 * `POST /oauth2/exchange`. The HTTP handler only parses the request and writes the answer.
 *
 * A granted token holds the intersection of what was asked and what the principal may do; an empty
 * grant is not an error here (the registry refuses the request). Every issued token is audited.
 * Tokens derived from other tokens follow token-bounds.ts: never more scope, never a later end.
 *
 * Over 400 lines because every grant's resolution sits next to the others: they share the
 * lifetimes, the principal checks and the audit, and reading them side by side is how one sees
 * that none derives more than another; the rules themselves are in token-bounds.ts.
 */
import type { Logger } from 'pino';
import { refreshTokenUser } from '../api/principals.js';
import type { AuthMetadata, PrincipalKind, PrincipalRecord } from '../metadata/auth-store.js';
import type { Clock } from '../shared/clock.js';
import type { UnverifiedJwt } from '../shared/jwt.js';
import { formatScope, limitAccess, parseScopes, type Access } from './access.js';
import { anonymousPullGrants, grantAccess, type Grant } from './permissions.js';
import { AuthenticationError, grantsFrom, type PrincipalService } from './principals.js';
import type { LoginThrottle } from './throttle.js';
import { FederationError, foreignJwt, type FederatedMatch, type FederationVerifier } from '../federation/verifier.js';
import { CredentialGoneError, earliest, endingBy, narrowed, requestedCeiling, type TokenBounds } from './token-bounds.js';
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
  /**
   * What the principal may do, asked for only when an access token is issued. Most grants read it
   * with the principal (one statement); where it takes a read of its own (anonymous patterns, a
   * federated token without a client id), the exchange, which issues refresh tokens carrying no
   * grants, never makes that read.
   */
  grants: () => Promise<Grant[]>;
  lifetime: { accessMs: number; refreshMs: number };
  /** A refresh grant keeps its token; only credential logins mint new ones. */
  mayMintRefresh: boolean;
}

export class TokenEndpoint {
  private readonly warnedLegacy = new Set<string>();

  constructor(
    private readonly deps: {
      store: AuthMetadata;
      principals: PrincipalService;
      tokens: TokenService;
      bounds: TokenBounds;
      throttle: LoginThrottle;
      clock: Clock;
      logger: Logger;
      service: string;
      issuer: string;
      lifetimes: Lifetimes;
      federation: FederationVerifier;
      /** Registry tokens bought with an OIDC token live at most this long, and never longer than it. */
      federatedLifetimeCapMs: number | undefined;
    },
  ) {}

  async token(request: TokenRequest): Promise<TokenResponse> {
    this.checkService(request.service);
    const resolved = await this.resolve(request);
    const requested = parseScopes(request.scopes);
    const ceiling = resolved.identity.scopeCeiling;
    const granted = grantAccess(await resolved.grants(), requested);
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
        const bound = narrowed(resolved.identity, requestedCeiling(request.scopes));
        const refresh = await this.deps.tokens.issueRefresh(bound, resolved.lifetime.refreshMs);
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
    await this.audit(
      'token.issued',
      resolved.identity,
      request.clientAddress,
      Object.assign({}, scopeSummary('requested', requested), scopeSummary('granted', access), { refreshToken: response.refresh_token !== undefined }),
    );
    return response;
  }

  /**
   * ACR's exchange, returning a registry refresh token for:
   * - `grant_type=access_token` with a workload's OIDC token (federation), or with an access token
   *   Berth issued: the new token's ceiling is that token's `access` and it ends when that token
   *   does (a leaked five-minute pull token buys nothing more than itself);
   * - `grant_type=refresh_token` with a Berth refresh token: renewal, keeping its ceiling and its
   *   session's end (what `berth token --expose` and the credential helper use);
   * - `grant_type=password`.
   * `scope` parameters narrow the new token further (they never widen it).
   */
  async exchange(request: TokenRequest): Promise<{ refresh_token: string }> {
    this.checkService(request.service);
    let identity: Identity;
    let refreshMs: number | undefined;
    const oidcToken = request.grantType === 'access_token' && request.accessToken ? foreignJwt(request.accessToken, this.deps.issuer) : undefined;
    if (oidcToken) {
      const federated = await this.fromFederated(oidcToken, request.clientId, request.clientAddress);
      identity = federated.identity;
      refreshMs = federated.lifetime.refreshMs;
    } else if (request.grantType === 'access_token') {
      identity = await this.fromAccessToken(request.accessToken, request.clientAddress);
    } else if (request.grantType === 'refresh_token') {
      identity = (await this.fromRefreshToken(request.refreshToken, request.clientAddress)).identity;
    } else if (request.grantType === 'password') {
      const login = await this.login(request.username, request.password, request.clientAddress);
      const { principal } = login;
      const base: Identity = { subject: principal.id, name: principal.name, kind: principal.kind, credentialId: login.credentialId, credentialKind: 'secret' };
      identity = this.deps.bounds.bind(base, principal, login.credentialExpiresAt);
    } else {
      throw new OAuthError(400, 'unsupported_grant_type', 'grant_type must be access_token, refresh_token or password');
    }
    identity = narrowed(identity, requestedCeiling(request.scopes));
    const refresh = await this.deps.tokens.issueRefresh(identity, refreshMs ?? this.deps.lifetimes[principalKind(identity)].refreshMs);
    await this.audit('refresh_token.issued', identity, request.clientAddress, {
      via: `exchange:${request.grantType}`,
      ...(identity.scopeCeiling ? { limitedTo: identity.scopeCeiling.map(formatScope) } : {}),
      ...(identity.sessionExpiresAt !== undefined ? { sessionEndsAt: new Date(identity.sessionExpiresAt).toISOString() } : {}),
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
    const oidcPassword = (grantType === 'password' || grantType === undefined) && request.password ? foreignJwt(request.password, this.deps.issuer) : undefined;
    if (oidcPassword) {
      // `docker login -u <client id> -p <OIDC token>`: the password is the workload's identity token.
      return Object.assign({}, await this.fromFederated(oidcPassword, request.username, request.clientAddress), { mayMintRefresh: true });
    }
    if (grantType === 'password' || (grantType === undefined && request.username !== undefined)) {
      const login = await this.login(request.username, request.password, request.clientAddress);
      const { principal } = login;
      const identity: Identity = {
        subject: principal.id,
        name: principal.name,
        kind: principal.kind,
        credentialId: login.credentialId,
        credentialKind: 'secret',
      };
      return {
        identity: this.deps.bounds.bind(identity, principal, login.credentialExpiresAt),
        grants: async () => login.grants,
        lifetime: this.deps.lifetimes[principal.kind],
        mayMintRefresh: true,
      };
    }
    if (grantType === undefined) {
      return {
        identity: { subject: 'anonymous', name: 'anonymous', kind: 'anonymous' },
        grants: async () => anonymousPullGrants(await this.deps.store.anonymousPull.list()),
        lifetime: this.deps.lifetimes.user,
        mayMintRefresh: false,
      };
    }
    throw new OAuthError(400, 'unsupported_grant_type', `grant_type must be password, refresh_token, client_credentials or ${tokenExchangeGrant}`);
  }

  /** A workload's OIDC token, checked against federated credentials (optionally one client's). */
  private async fromFederated(token: string | UnverifiedJwt, clientId: string | undefined, clientAddress: string): Promise<Resolved> {
    let match: FederatedMatch;
    try {
      match = await this.deps.federation.verify(token, clientId);
    } catch (err) {
      if (!(err instanceof FederationError)) throw err;
      // The caller learns which check failed in general terms; the audit log keeps the whole reason.
      await this.audit('login.failed', undefined, clientAddress, {
        federated: true,
        check: err.check,
        reason: err.message.slice(0, 1000),
        clientId: clientId?.slice(0, 128),
      });
      throw new OAuthError(401, 'invalid_grant', `federated login refused: ${err.publicMessage}`);
    }
    // The verifier read this principal a moment ago, in this request, to find its credentials: not read again.
    const principal = this.usable(match.principal);
    if (match.legacyAudience) this.warnLegacyAudience(match.credential.id, principal.name, match.credential.name);
    const now = this.deps.clock.now();
    const base = this.deps.lifetimes[principal.kind];
    // Never outlive the OIDC token that bought it; an explicit cap only shortens that.
    const limit = Math.max(1000, Math.min(match.expiresAt - now, this.deps.federatedLifetimeCapMs ?? Number.POSITIVE_INFINITY));
    const identity: Identity = {
      subject: principal.id,
      name: principal.name,
      kind: principal.kind,
      credentialId: match.credential.id,
      credentialKind: 'federated',
      provenance: match.provenance,
      sessionExpiresAt: now + limit,
    };
    return {
      identity: this.deps.bounds.bind(identity, principal, undefined),
      // Read with the principal when the client was named (the verifier's one read); else read now.
      grants: async () => (match.grants ? grantsFrom(principal, match.grants) : this.deps.principals.grantsFor(principal)),
      lifetime: { accessMs: Math.min(base.accessMs, limit), refreshMs: Math.min(base.refreshMs, limit) },
      mayMintRefresh: false,
    };
  }

  private async fromRefreshToken(token: string | undefined, clientAddress: string): Promise<Resolved> {
    if (!token) throw new OAuthError(400, 'invalid_request', 'refresh_token is required');
    const verified = await this.deps.tokens.verifyRefresh(token).catch(async (err: unknown) => {
      if (!(err instanceof InvalidTokenError)) throw err;
      await this.audit('login.failed', undefined, clientAddress, { reason: 'refresh token rejected' });
      throw new OAuthError(401, 'invalid_grant', 'refresh token is invalid, expired or revoked: log in again');
    });
    // The principal and its grants in one read.
    const found = await this.deps.principals.withGrants(verified.subject);
    const principal = this.usable(found?.principal);
    const identity: Identity = {
      subject: principal.id,
      name: principal.name,
      kind: principal.kind,
      credentialId: verified.credentialId,
      credentialKind: verified.credentialKind,
      provenance: verified.provenance,
      sessionExpiresAt: verified.sessionExpiresAt,
      scopeCeiling: verified.scopeCeiling,
    };
    const credentialEnd = await this.standing(identity, clientAddress);
    return {
      identity: this.deps.bounds.bind(identity, principal, credentialEnd),
      grants: async () => found?.grants ?? [],
      lifetime: this.capped(this.deps.lifetimes[principal.kind], verified.expiresAt),
      mayMintRefresh: false,
    };
  }

  /**
   * A Berth access token at the exchange: the refresh token it buys holds at most its `access`
   * and ends when it does. One that grants nothing is refused (it would buy a token granting
   * nothing; clients renewing a login exchange the refresh token itself).
   */
  private async fromAccessToken(token: string | undefined, clientAddress: string): Promise<Identity> {
    if (!token) throw new OAuthError(400, 'invalid_request', 'access_token is required');
    const claims = await this.deps.tokens.verifyAccess(token).catch((err: unknown) => {
      if (err instanceof InvalidTokenError) throw new OAuthError(401, 'invalid_grant', `access token rejected: ${err.message}`);
      throw err;
    });
    const principal = await this.usablePrincipal(claims.subject);
    if (claims.access.length === 0) {
      throw new OAuthError(
        400,
        'invalid_grant',
        'this access token grants nothing, and a refresh token exchanged for it would grant no more than it: to renew a login, exchange the refresh token itself (grant_type=refresh_token)',
      );
    }
    const identity: Identity = {
      subject: principal.id,
      name: principal.name,
      kind: principal.kind,
      credentialId: claims.credentialId,
      credentialKind: claims.credentialKind,
      provenance: claims.provenance,
      sessionExpiresAt: earliest(claims.sessionExpiresAt, claims.expiresAt),
      scopeCeiling: claims.access,
    };
    const credentialEnd = await this.standing(identity, clientAddress);
    return endingBy(this.deps.bounds.bind(identity, principal, credentialEnd), claims.expiresAt);
  }

  /** The credential behind a derived token still stands (see token-bounds.ts); its expiry, if any. */
  private async standing(identity: Identity, clientAddress: string): Promise<number | undefined> {
    try {
      return await this.deps.bounds.check(identity);
    } catch (err) {
      if (!(err instanceof CredentialGoneError)) throw err;
      await this.audit('login.failed', identity, clientAddress, { reason: err.message });
      throw new OAuthError(401, 'invalid_grant', `${err.message}: log in again`);
    }
  }

  /** Once per credential and process: a token for the legacy audience `berth` was accepted (see federation.acceptLegacyAudience). */
  private warnLegacyAudience(credentialId: string, principal: string, credential: string): void {
    if (this.warnedLegacy.has(credentialId) || this.warnedLegacy.size >= 1000) return;
    this.warnedLegacy.add(credentialId);
    this.deps.logger.warn(
      { principal, credential },
      "accepted an OIDC token for the legacy audience berth, which every Berth accepted: have the workload ask for this registry's audience (its 401 challenge names it), then set federation.acceptLegacyAudience: false",
    );
  }

  private async usablePrincipal(id: string): Promise<PrincipalRecord> {
    return this.usable(await this.deps.store.principals.get(id));
  }

  /** `principal` if it exists and may log in (not disabled or expired); otherwise the grant is refused. */
  private usable(principal: PrincipalRecord | undefined): PrincipalRecord {
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
   * attempt holds its throttle slots while its secret is verified, so parallel attempts count, and
   * one that finds the slots taken by attempts in flight waits (up to `loginSlotWaitMs`) for one.
   */
  private async login(username: string | undefined, password: string | undefined, clientAddress: string) {
    if (!username || password === undefined) throw new OAuthError(400, 'invalid_request', 'username and password are required');
    const admission = await this.deps.throttle.admitWhenFree(username, clientAddress, loginSlotWaitMs);
    if (admission.kind === 'refused') {
      const why = admission.busy ? 'too many logins in progress for this name from this address' : 'too many failed logins';
      throw new OAuthError(429, 'slow_down', `${why}; try again later`, {
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

/** The principal kind whose lifetimes apply (refresh tokens are never issued to anonymous). */
function principalKind(identity: Identity): PrincipalKind {
  if (identity.kind === 'anonymous') throw new OAuthError(400, 'invalid_grant', 'an anonymous token cannot be exchanged');
  return identity.kind;
}

/**
 * How long a login waits for a throttle slot held by attempts in flight: ample for parallel logins
 * of one name (a secret verification is ~70 ms, a cached one well under 1 ms), short enough that a
 * flood of parallel guesses is answered 429 rather than held open.
 */
const loginSlotWaitMs = 5_000;

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
