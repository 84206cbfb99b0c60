/**
 * One source's auth state for `RemoteRegistry`: how the source wants to be authenticated, learnt
 * from its first 401, and the tokens it handed out.
 *
 * - `Bearer realm=…,service=…`: a token is fetched from the realm per scope (tokens.ts
 *   `fetchToken`: GET with Basic credentials, as docker does; anonymous without) and cached until
 *   shortly before it expires.
 * - `Basic`: the credentials go on every request.
 * - `oidc` credentials are Basic with the client id and the JWT read afresh from `tokenFile` each
 *   time they are needed (the file is rotated by its platform).
 *
 * Credentials never go over plain HTTP except to loopback. Failures are ApiErrors worded for
 * the source (UPSTREAM_DENIED, UPSTREAM_INVALID, UPSTREAM_UNREACHABLE, EGRESS_REFUSED).
 */
import { readFile } from 'node:fs/promises';
import { ApiError } from '../api/errors.js';
import { isLoopbackHost } from '../shared/loopback.js';
import { parseChallenges, type BearerChallenge } from './challenge.js';
import type { HttpClient } from './http.js';
import { fetchToken, LoginError } from './tokens.js';

export type RemoteCredentials =
  | { kind: 'anonymous' }
  /** Basic auth, or the credentials for Docker token auth. */
  | { kind: 'basic'; username: string; password: string }
  /**
   * Federation into another Berth: token endpoint Basic with clientId + the OIDC JWT read fresh
   * from tokenFile each time; by `readToken` instead when given (a caller that confines which
   * files may be read, e.g. sync's API-given references, reads through it; its errors pass as they are).
   */
  | { kind: 'oidc'; clientId: string; tokenFile: string; readToken?: () => Promise<string> };

type Scheme = { kind: 'unknown' } | { kind: 'basic' } | ({ kind: 'bearer' } & BearerChallenge);

export class SourceAuth {
  private scheme: Scheme = { kind: 'unknown' };
  /** Bearer tokens by scope ('' for none), with their expiry (ms, wall clock). */
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();
  private readonly host: string;

  constructor(
    private readonly source: URL,
    private readonly credentials: RemoteCredentials,
    /** For the token service (maybe another host than the source). */
    private readonly http: HttpClient,
  ) {
    this.host = source.host;
  }

  /** The Authorization header for a request in `scope`, fetching a token when the source uses Bearer auth. */
  async header(scope: string | undefined, signal: AbortSignal | undefined): Promise<string | undefined> {
    const scheme = this.scheme;
    if (scheme.kind === 'basic') return this.basic(this.source.origin);
    if (scheme.kind !== 'bearer') return undefined;
    const key = scope ?? '';
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return `Bearer ${cached.token}`;
    const token = await this.fetch(scheme, scope, signal);
    this.tokens.set(key, token);
    return `Bearer ${token.token}`;
  }

  /** A 401's `WWW-Authenticate`: how to authenticate from now on; the tokens for `scope` are forgotten. */
  learn(challenge: string | string[], scope: string | undefined): void {
    const challenges = parseChallenges(challenge);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) {
      const realmText = bearer.params['realm'];
      if (!realmText) throw invalid(`${this.host} sent a Bearer challenge without a realm`);
      let realm: URL;
      try {
        realm = new URL(realmText);
      } catch {
        throw invalid(`${this.host} sent a Bearer challenge with an invalid realm`);
      }
      if (realm.protocol !== 'https:' && realm.protocol !== 'http:') throw invalid(`${this.host} names a token realm that is not http(s)`);
      this.scheme = { kind: 'bearer', realm: realm.toString(), service: bearer.params['service'], scope: undefined };
    } else if (challenges.some((c) => c.scheme === 'basic')) {
      if (this.credentials.kind === 'anonymous') {
        throw new ApiError('UPSTREAM_DENIED', `${this.host} needs credentials (Basic auth): give the source's username and password`);
      }
      this.scheme = { kind: 'basic' };
    } else {
      const scheme = challenges[0]?.scheme ?? 'an unreadable challenge';
      throw invalid(`${this.host} asks for an unsupported auth scheme (${scheme.slice(0, 40)})`);
    }
    if (scope !== undefined) this.tokens.delete(scope);
    this.tokens.delete('');
  }

  /** The credentials in words, for messages (never the secret). */
  describe(): string {
    const c = this.credentials;
    if (c.kind === 'anonymous') return 'anonymous access';
    if (c.kind === 'basic') return `the credentials of ${JSON.stringify(c.username.slice(0, 128))}`;
    return `the OIDC token of client ${JSON.stringify(c.clientId.slice(0, 128))}`;
  }

  private async basic(target: string): Promise<string | undefined> {
    const credentials = this.credentials;
    if (credentials.kind === 'anonymous') return undefined;
    const url = new URL(target);
    if (url.protocol !== 'https:' && !isLoopbackHost(url.host)) {
      throw new ApiError('UPSTREAM_DENIED', `refusing to send credentials to ${url.origin} over plain HTTP: the source must use HTTPS`);
    }
    let username: string;
    let password: string;
    if (credentials.kind === 'basic') {
      ({ username, password } = credentials);
    } else {
      username = credentials.clientId;
      try {
        password = (await (credentials.readToken ? credentials.readToken() : readFile(credentials.tokenFile, 'utf8'))).trim();
      } catch (err) {
        if (credentials.readToken) throw err;
        throw new ApiError(
          'UPSTREAM_DENIED',
          `cannot read the OIDC token file ${credentials.tokenFile} (${(err as NodeJS.ErrnoException).code ?? 'error'}): check the path and that its platform writes it`,
        );
      }
      if (!password) throw new ApiError('UPSTREAM_DENIED', `the OIDC token file ${credentials.tokenFile} is empty`);
    }
    return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  }

  /** A token for `scope` from the source's token service, its failures worded for this source. */
  private async fetch(challenge: BearerChallenge, scope: string | undefined, signal: AbortSignal | undefined): Promise<{ token: string; expiresAt: number }> {
    const authorization = await this.basic(new URL(challenge.realm).origin);
    let answer: { token: string; expiresIn: number };
    try {
      answer = await fetchToken(challenge, { scope, authorization }, { http: this.http, signal });
    } catch (err) {
      if (!(err instanceof LoginError)) throw err;
      switch (err.reason) {
        case 'refused':
        case 'insecure':
          throw new ApiError(
            'UPSTREAM_DENIED',
            `the token service of ${this.host} refused ${this.describe()}${scope ? ` for ${scope}` : ''}: check the source credentials`,
          );
        case 'egress':
          throw new ApiError('EGRESS_REFUSED', `the token service of ${this.host}: ${err.message}`);
        case 'unreachable':
          throw new ApiError('UPSTREAM_UNREACHABLE', `${this.host}: ${err.message}`);
        case 'invalid':
          throw invalid(`${this.host}: ${err.message}`);
      }
    }
    const { token, expiresIn } = answer;
    // Renew a little early so a token never expires between being picked and being checked.
    return { token, expiresAt: Date.now() + Math.max(1, expiresIn - Math.min(30, expiresIn / 4)) * 1000 };
  }
}

function invalid(message: string): ApiError {
  return new ApiError('UPSTREAM_INVALID', message);
}
