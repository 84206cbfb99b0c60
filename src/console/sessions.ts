/**
 * Web console sessions: what a browser holds instead of a token.
 *
 * - A session id is 32 random bytes (base64url) given to the browser once, in an HttpOnly cookie;
 *   the database keeps only its SHA-256, so a copy of the database signs nobody in.
 * - A session maps to a principal. Its requests carry no token: `Authorizer.decideSession` decides
 *   them by the principal's grants as they are at that moment (a grant removed, or the principal
 *   disabled or deleted, takes effect on the next request).
 * - It ends at sign-out (the row is deleted: the cookie is worthless from then on), after
 *   `idleTimeoutMs` without a request, or `sessionLifetimeMs` after sign-in, whichever comes first.
 * - Every state-changing request needs the session's CSRF token in a header. The token is derived
 *   from the session id (HMAC-free: SHA-256 over a fixed label and the id), so it is stable for the
 *   session, needs no storage, and does not reveal the id.
 *
 * Password sign-in goes through the token service (`TokenEndpoint.token`, password grant), so it
 * is throttled and audited exactly like `docker login`.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/schema.js';
import type { Auth } from '../auth/index.js';
import type { SessionPrincipal } from '../auth/authorizer.js';
import { OAuthError } from '../auth/token-endpoint.js';
import { AuthenticationError } from '../auth/principals.js';
import { isOwner } from '../auth/permissions.js';
import type { ConsoleMetadata, ConsoleSessionRecord } from '../metadata/console-store.js';
import type { PrincipalRecord } from '../metadata/auth-store.js';
import type { Clock } from '../shared/clock.js';
import type { Actor } from '../shared/actor.js';
import type { GrantView } from '../api/principals.js';
import { principalNameProblem } from '../api/principals.js';
import { ApiError } from '../api/errors.js';
import type { PrincipalIndex } from '../metadata/auth-store.js';

export type Settings = Pick<Config['console'], 'sessionLifetimeMs' | 'idleTimeoutMs'>;

/** A live session, resolved from its cookie. */
export interface ActiveSession {
  record: ConsoleSessionRecord;
  principal: PrincipalRecord;
  /** The CSRF token every state-changing request must carry. */
  csrfToken: string;
}

/** Activity is written at most this often per session (the idle timeout's resolution). */
const touchIntervalMs = 60_000;
/** Ended sessions' rows are deleted at a sign-in at most this often. */
const pruneIntervalMs = 10 * 60_000;
/** Kinds of principal that may sign in to the console with a password (people, not workloads). */
const passwordKinds: ReadonlySet<string> = new Set(['user', 'admin']);

export class ConsoleSessions {
  private prunedAt = 0;

  constructor(
    private readonly deps: {
      store: ConsoleMetadata;
      /** The principals (read only: whether a session's principal still exists and may sign in). */
      principals: Pick<PrincipalIndex, 'get'>;
      auth: Auth;
      clock: Clock;
      settings: Settings;
    },
  ) {}

  /**
   * Signs in with a name and password through the token service (throttled per name and address,
   * audited). Returns the new session's id, for the cookie. Errors are `ApiError`s whose
   * message a person can act on.
   */
  async signInWithPassword(username: string, password: string, clientAddress: string): Promise<{ id: string; session: ActiveSession }> {
    // The reserved refresh-token name would turn the password into a refresh token: not a person's login.
    if (principalNameProblem(username) !== undefined) throw new ApiError('SIGN_IN_FAILED', 'The name or password is wrong. Check both and try again.');
    let subject: string;
    try {
      const issued = await this.deps.auth.endpoint.token({ grantType: 'password', username, password, scopes: [], offline: false, clientAddress });
      const claims = await this.deps.auth.tokens.verifyAccess(issued.access_token);
      // A workload's OIDC token given as the password signs a workload in, never a person.
      if (claims.provenance !== undefined) throw new ApiError('SIGN_IN_FAILED', 'The name or password is wrong. Check both and try again.');
      subject = claims.subject;
    } catch (err) {
      throw signInError(err);
    }
    const principal = await this.usable(subject);
    if (!principal || !passwordKinds.has(principal.kind)) {
      throw new ApiError(
        'SIGN_IN_FAILED',
        'This login belongs to a service principal or a repository token, which cannot sign in to the console. Sign in as a user.',
      );
    }
    return this.start(principal, 'password', undefined, clientAddress);
  }

  /** Starts a session for a principal the caller has authenticated (password or single sign-on). */
  async start(
    principal: PrincipalRecord,
    method: 'password' | 'sso',
    provider: string | undefined,
    clientAddress: string,
  ): Promise<{ id: string; session: ActiveSession }> {
    const id = randomBytes(32).toString('base64url');
    const now = this.deps.clock.now();
    const record: ConsoleSessionRecord = {
      idHash: hashId(id),
      principalId: principal.id,
      method,
      provider,
      createdAt: now,
      expiresAt: now + this.deps.settings.sessionLifetimeMs,
      lastSeenAt: now,
    };
    await this.deps.store.sessions.add(record);
    // Housekeeping rides on sign-ins: ended sessions' rows go at most every few minutes (any replica may do it).
    if (now - this.prunedAt >= pruneIntervalMs) {
      this.prunedAt = now;
      await this.prune();
    }
    await this.deps.auth.admin.audit.record(actorOf(principal, clientAddress), 'console.signed_in', { method, ...(provider ? { provider } : {}) });
    return { id, session: { record, principal, csrfToken: csrfTokenOf(id) } };
  }

  /**
   * The live session a cookie names, or undefined when it names none: unknown, ended, idle too
   * long, or its principal disabled, expired or deleted (an ended session's row is removed).
   */
  async resolve(id: string): Promise<ActiveSession | undefined> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const idHash = hashId(id);
    const record = await this.deps.store.sessions.get(idHash);
    if (!record) return undefined;
    const now = this.deps.clock.now();
    if (record.expiresAt <= now || now - record.lastSeenAt > this.deps.settings.idleTimeoutMs) {
      await this.deps.store.sessions.delete(idHash);
      return undefined;
    }
    const principal = await this.usable(record.principalId);
    if (!principal) {
      await this.deps.store.sessions.delete(idHash);
      return undefined;
    }
    if (now - record.lastSeenAt >= touchIntervalMs) await this.deps.store.sessions.touch(idHash, now);
    return { record, principal, csrfToken: csrfTokenOf(id) };
  }

  /** The session's principal as the authorizer decides its requests. */
  principalOf(session: ActiveSession): SessionPrincipal {
    const idleEnd = session.record.lastSeenAt + this.deps.settings.idleTimeoutMs;
    return {
      subject: session.principal.id,
      name: session.principal.name,
      kind: session.principal.kind,
      expiresAt: Math.min(session.record.expiresAt, idleEnd),
    };
  }

  /** True if `given` is the session's CSRF token (constant time). */
  csrfMatches(session: ActiveSession, given: string | undefined): boolean {
    if (given === undefined) return false;
    const expected = Buffer.from(session.csrfToken);
    const actual = Buffer.from(given);
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }

  /** What the console shows about the person signed in: name, kind, how, until when, and the grants it acts with. */
  async describe(session: ActiveSession): Promise<{
    name: string;
    kind: string;
    method: 'password' | 'sso';
    provider: string | null;
    expiresAt: string;
    owner: boolean;
    grants: GrantView[];
  }> {
    const grants = await this.deps.auth.principals.grantsFor(session.principal);
    const principal = this.principalOf(session);
    return {
      name: session.principal.name,
      kind: session.principal.kind,
      method: session.record.method,
      provider: session.record.provider ?? null,
      expiresAt: new Date(principal.expiresAt).toISOString(),
      owner: isOwner(grants),
      grants: grants.map((g) => ({ pattern: g.pattern, permission: g.permission })),
    };
  }

  /** Ends the session on the server (sign-out): its cookie signs nobody in from now on. */
  async end(session: ActiveSession, clientAddress: string): Promise<void> {
    await this.deps.store.sessions.delete(session.record.idHash);
    await this.deps.auth.admin.audit.record(actorOf(session.principal, clientAddress), 'console.signed_out', {});
  }

  /** The principal if it exists and may sign in now (not disabled or expired). */
  async usable(id: string): Promise<PrincipalRecord | undefined> {
    const principal = await this.deps.principals.get(id);
    if (!principal) return undefined;
    try {
      this.deps.auth.principals.assertUsable(principal);
      return principal;
    } catch (err) {
      if (err instanceof AuthenticationError) return undefined;
      throw err;
    }
  }

  /** Removes ended sessions' rows (housekeeping; an ended session is refused whether or not its row is gone). */
  async prune(): Promise<number> {
    const now = this.deps.clock.now();
    return this.deps.store.sessions.prune(now, now - this.deps.settings.idleTimeoutMs);
  }
}

function hashId(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}

function csrfTokenOf(id: string): string {
  return createHash('sha256').update('berth-console-csrf\u0000').update(id).digest('base64url');
}

function actorOf(principal: PrincipalRecord, clientAddress: string): Actor {
  return { principalId: principal.id, principalName: principal.name, clientAddress };
}

/** The token service's refusal as a sentence a person can act on. */
function signInError(err: unknown): Error {
  if (err instanceof ApiError) return err;
  if (err instanceof OAuthError) {
    if (err.status === 429) {
      const wait = Number(err.headers['Retry-After'] ?? '60');
      return new ApiError('SIGN_IN_THROTTLED', `Too many failed sign-ins. Wait ${Math.ceil(wait / 60)} minute(s), then try again.`, { retryAfter: wait });
    }
    if (/disabled/.test(err.message)) return new ApiError('SIGN_IN_FAILED', 'This login is disabled. Ask an owner of the registry to enable it.');
    if (/expired/.test(err.message)) return new ApiError('SIGN_IN_FAILED', 'This login has expired. Ask an owner of the registry to extend it.');
    return new ApiError('SIGN_IN_FAILED', 'The name or password is wrong. Check both and try again.');
  }
  if (err instanceof AuthenticationError) return new ApiError('SIGN_IN_FAILED', 'The name or password is wrong. Check both and try again.');
  return err instanceof Error ? err : new Error(String(err));
}
