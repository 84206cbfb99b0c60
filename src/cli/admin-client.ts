/**
 * A small client for the management API (/api/v1), used by `berth admin`, `berth keys` and
 * `berth apply`. It gets an access token for `registry:admin:*` from the registry's own token
 * service: with `--username` + `--password-stdin` (password grant), or else with the refresh token
 * `berth login` saved (in $DOCKER_CONFIG/config.json or a credential helper). `berth history`
 * logs in the same way for a repository's pull scope (`connectRegistry`).
 *
 * Every failure is an AdminError whose message is one line saying what went wrong and what to do.
 */
import { urls } from '../api/urls.js';
import { defaultLocations, loadCredentials } from '../client/credentials.js';
import { drain, HttpClient, HttpFailure, readBounded, type HttpResponse } from '../remote/http.js';
import { registryHost, registryUrl } from '../remote/reference.js';
import { discover, LoginError, requestTokens, type Credentials } from '../remote/tokens.js';
import type { AuditEntryView, AuditPageView, RevokedKeyView, SigningKeyView } from '../api/audit.js';
import type { LogLevelName, LogLevelView } from '../api/operations.js';
import type { ClaimConditionView, FederatedCredentialBody, FederatedCredentialView, IssuedSecret, PrincipalKind, PrincipalView } from '../api/principals.js';
import type { HistoryView, PushView } from '../api/repositories.js';

export type { AuditEntryView, ClaimConditionView, FederatedCredentialBody, FederatedCredentialView, HistoryView, IssuedSecret, PrincipalView, PushView };

export class AdminError extends Error {
  override name = 'AdminError';
}

export interface ConnectionOptions {
  /** HOST:PORT (or a URL); default: env BERTH_REGISTRY. */
  registry?: string | undefined;
  username?: string | undefined;
  /** Read the password from standard input (never from an argument). */
  passwordStdin?: boolean | undefined;
}

export interface GrantInput {
  pattern: string;
  permission: string;
}

export const adminScope = 'registry:admin:*';

export class AdminClient {
  /** `session`: the owner's login, which the other management clients (`berth apply`'s lifecycle part) reuse. */
  constructor(readonly session: Session) {}

  /** The registry as the user named it (what `berth login` takes). */
  get registry(): string {
    return this.session.registry;
  }

  /** Who the token says we are (read from the token, not verified: for messages and `apply`'s lockout guard). */
  get actor(): { subject: string; name: string } {
    return this.session.actor;
  }

  /** The federation audience the registry advertises (what presets default to); undefined for a Berth that advertises none. */
  get audience(): string | undefined {
    return this.session.audience;
  }

  listPrincipals(kind?: PrincipalKind): Promise<{ principals: PrincipalView[] }> {
    return this.call('GET', urls.api.principals({ kind }));
  }

  createPrincipal(body: {
    kind: 'user' | 'service' | 'token';
    name?: string;
    description?: string;
    grants: GrantInput[];
    expiresAt?: number;
  }): Promise<{ principal: PrincipalView; secret: IssuedSecret }> {
    return this.call('POST', urls.api.principals(), body);
  }

  getPrincipal(ref: string): Promise<PrincipalView> {
    return this.call('GET', urls.api.principal(ref));
  }

  updatePrincipal(ref: string, body: { disabled?: boolean; description?: string | null; expiresAt?: number | null }): Promise<PrincipalView> {
    return this.call('PATCH', urls.api.principal(ref), body);
  }

  async deletePrincipal(ref: string): Promise<void> {
    await this.call('DELETE', urls.api.principal(ref));
  }

  setGrants(ref: string, grants: GrantInput[]): Promise<PrincipalView> {
    return this.call('PUT', urls.api.grants(ref), { grants });
  }

  setSecret(ref: string, body: { name?: string; expiresAt?: number }): Promise<IssuedSecret> {
    return this.call('POST', urls.api.secrets(ref), body);
  }

  async deleteSecret(ref: string, name: string): Promise<void> {
    await this.call('DELETE', urls.api.secret(ref, name));
  }

  getAnonymousPull(): Promise<{ patterns: string[] }> {
    return this.call('GET', urls.api.anonymousPull());
  }

  setAnonymousPull(patterns: string[]): Promise<{ patterns: string[] }> {
    return this.call('PUT', urls.api.anonymousPull(), { patterns });
  }

  listFederatedCredentials(ref: string): Promise<{ credentials: FederatedCredentialView[] }> {
    return this.call('GET', urls.api.federatedCredentials(ref));
  }

  /** Adds the credential, or replaces the one with its name (revoking the refresh tokens that one bought). */
  putFederatedCredential(ref: string, body: FederatedCredentialBody): Promise<{ credential: FederatedCredentialView; replaced: boolean }> {
    return this.call('POST', urls.api.federatedCredentials(ref), body);
  }

  async deleteFederatedCredential(ref: string, name: string): Promise<void> {
    await this.call('DELETE', urls.api.federatedCredential(ref, name));
  }

  rotateKeys(): Promise<{ kid: string }> {
    return this.call('POST', urls.api.rotateKeys(), {});
  }

  listKeys(): Promise<{ keys: SigningKeyView[] }> {
    return this.call('GET', urls.api.keys());
  }

  revokeKey(kid: string): Promise<RevokedKeyView> {
    return this.call('POST', urls.api.revokeKey(kid), {});
  }

  audit(options: NonNullable<Parameters<typeof urls.api.audit>[0]>): Promise<AuditPageView> {
    return this.call('GET', urls.api.audit(options));
  }

  logLevel(): Promise<LogLevelView> {
    return this.call('GET', urls.api.logLevel());
  }

  setLogLevel(level: LogLevelName): Promise<LogLevelView> {
    return this.call('PUT', urls.api.logLevel(), { level });
  }

  /** Any other owner endpoint of /api/v1 (`path` from `urls.api`), for commands that manage more than principals (`apply`'s cache rules). */
  api<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.call(method, path, body);
  }

  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return apiCall(this.session, method, path, body, { ownerOnly: true });
  }
}

/** How `apiCall` words failures beyond the defaults. */
export interface ApiCallHints {
  /** The route is for owners: a 403 means "log in as an owner". */
  ownerOnly?: boolean;
  /** A message for a failure the caller can explain better (undefined: the default message). */
  explain?: (failure: { status: number; code: string | undefined; message: string }) => string | undefined;
}

/** The CLI's HTTP client (remote/http.ts): one try, no egress policy (a person is waiting and reads the error). */
const http = new HttpClient({ retries: { attempts: 1 }, userAgent: 'berth-cli' });

/** The largest management-API answer read (an audit page of 1000 entries is well under it). */
const maxAnswerBytes = 64 * 1024 * 1024;

/**
 * One request to the management API (`path` from `urls.api`) with the session's token (if any):
 * the status and the JSON answer (undefined when empty or not JSON). An unreachable registry is
 * an AdminError; every status is the caller's to judge.
 */
export async function apiRequest(session: Session, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const answer = await sendOnce(session, method, path, body);
  // An access token lives minutes; a command that waits longer (`berth sync run`, `berth import`
  // following a job) gets a new one from the saved login or the password and asks again, once. A
  // 401 means the request was not carried out, so repeating it is safe.
  if (answer.status === 401 && session.accessToken !== undefined && session.renew) {
    session.accessToken = await session.renew();
    return sendOnce(session, method, path, body);
  }
  return answer;
}

async function sendOnce(session: Session, method: string, path: string, body: unknown): Promise<{ status: number; body: unknown }> {
  const { baseUrl, accessToken } = session;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (accessToken) headers['authorization'] = `Bearer ${accessToken}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: HttpResponse;
  try {
    res = await http.send({ method, url: `${baseUrl}${path}`, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  } catch (err) {
    if (!(err instanceof HttpFailure)) throw err;
    throw new AdminError(`cannot reach ${baseUrl}: ${err.details.cause ?? err.message}; check the address and that the registry is running`);
  }
  try {
    if (res.status === 204) return { status: 204, body: undefined };
    const text = (await readBounded(res, maxAnswerBytes, () => new AdminError(`${baseUrl} sent an answer larger than ${maxAnswerBytes} bytes`))).toString(
      'utf8',
    );
    let parsed: unknown;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed };
  } finally {
    await drain(res);
    res.release();
  }
}

/**
 * One request to /api/v1 (`path` from `urls.api`) with the session's token (if any). JSON in and
 * out; a 204 is undefined. Every failure is an AdminError of one line that says what to do: the
 * registry unreachable, the token refused or missing (log in), not an owner, or the API's own
 * error message and code.
 */
export async function apiCall<T>(session: Session, method: string, path: string, body?: unknown, hints: ApiCallHints = {}): Promise<T> {
  const { registry, accessToken } = session;
  const res = await apiRequest(session, method, path, body);
  const parsed = res.body;
  if (res.status >= 200 && res.status < 300) return parsed as T;
  const first = (parsed as { errors?: Array<{ code?: string; message?: string }> } | undefined)?.errors?.[0];
  const message = first?.message ?? `HTTP ${res.status}`;
  const explained = hints.explain?.({ status: res.status, code: first?.code, message });
  if (explained !== undefined) throw new AdminError(explained);
  if (res.status === 401) {
    throw new AdminError(
      accessToken
        ? `${registry} refused the token (${message}): run \`berth login ${registry}\``
        : `${registry} needs a login: run \`berth login ${registry}\``,
    );
  }
  if (res.status === 403 && hints.ownerOnly) {
    throw new AdminError(`${session.actor.name} is not an owner of ${registry}: log in as an owner (\`berth login ${registry}\`) or pass --username`);
  }
  throw new AdminError(`${message} (HTTP ${res.status}${first?.code ? ` ${first.code}` : ''})`);
}

/**
 * Connects as an owner: finds the registry, then logs in with the password on stdin or the saved
 * refresh token, asking only for `registry:admin:*`.
 */
export async function connectAdmin(options: ConnectionOptions, io: { env?: NodeJS.ProcessEnv; readStdin?: () => Promise<string> } = {}): Promise<AdminClient> {
  return new AdminClient(await connectOwner(options, io));
}

/** An owner's session for the management API (`registry:admin:*`), as every management command opens it. */
export async function connectOwner(options: ConnectionOptions, io: { env?: NodeJS.ProcessEnv; readStdin?: () => Promise<string> } = {}): Promise<OwnerSession> {
  return ownerSession(await connectRegistry(options, [adminScope], { ...io, anonymous: false }));
}

export type OwnerSession = Session & { accessToken: string };

/** The session with its token; refused in one line when the registry runs without the token service. */
export function ownerSession(session: Session): OwnerSession {
  if (session.accessToken === undefined)
    throw new AdminError(`${session.registry} runs without the token service (auth.enabled=false); the management API needs it`);
  return { ...session, accessToken: session.accessToken };
}

export interface Session {
  /** The registry as the user named it. */
  registry: string;
  baseUrl: string;
  /** Undefined: the registry runs without auth, or (with `anonymous`) nothing is saved for it. */
  accessToken: string | undefined;
  actor: { subject: string; name: string };
  /** Gets a new access token for the same scopes with the same credentials (when there is a login). */
  renew?: () => Promise<string>;
  /** The federation audience the registry's challenge advertises, if any. */
  audience?: string | undefined;
}

/**
 * Finds the registry (`options.registry`, else env BERTH_REGISTRY) and gets an access token for
 * `scopes` with the password on stdin or the saved login. With `anonymous`, a registry nobody has
 * logged in to is used without a token (anonymous pull may still allow the request).
 */
export async function connectRegistry(
  options: ConnectionOptions,
  scopes: string[],
  io: { env?: NodeJS.ProcessEnv; readStdin?: () => Promise<string>; anonymous?: boolean } = {},
): Promise<Session> {
  const env = io.env ?? process.env;
  const registry = (options.registry ?? env['BERTH_REGISTRY'] ?? '').trim();
  if (!registry) throw new AdminError('no registry given: pass --registry HOST:PORT or set BERTH_REGISTRY');
  const baseUrl = registryUrl(registry);
  const anonymousActor = { subject: '', name: 'anonymous' };

  let credentials: Credentials | undefined;
  if (options.username !== undefined) {
    if (!options.passwordStdin) throw new AdminError('--username needs --password-stdin: pipe the password in (it never goes on the command line)');
    const password = (await (io.readStdin ?? readStdin)()).replace(/\r?\n$/, '');
    if (!password) throw new AdminError('no password on standard input (--password-stdin)');
    credentials = { username: options.username, password };
  } else {
    if (options.passwordStdin) throw new AdminError('--password-stdin needs --username');
    // Wherever `berth login` (or docker/podman login, or a credential helper) left it.
    credentials = await loadCredentials(registryHost(registry), defaultLocations(env)).catch((err: unknown) => {
      throw new AdminError(`cannot read the saved login for ${registry}: ${(err as Error).message}; run \`berth login ${registry}\``);
    });
    if (!credentials && !io.anonymous)
      throw new AdminError(`not logged in to ${registry}: run \`berth login ${registry}\`, or pass --username and --password-stdin`);
  }

  try {
    const challenge = await discover(baseUrl);
    if (!challenge || !credentials) return { registry, baseUrl, accessToken: undefined, actor: anonymousActor, audience: challenge?.audience };
    const tokens = await requestTokens(challenge, credentials, scopes, false);
    const renew = async (): Promise<string> => {
      try {
        return (await requestTokens(challenge, credentials, scopes, false)).accessToken;
      } catch (err) {
        if (err instanceof LoginError) throw new AdminError(`${registry} refused a new token (${err.message}): run \`berth login ${registry}\``);
        throw err;
      }
    };
    return { registry, baseUrl, accessToken: tokens.accessToken, actor: tokenSubject(tokens.accessToken), audience: challenge.audience, renew };
  } catch (err) {
    if (!(err instanceof LoginError)) throw err;
    if (credentials && 'refreshToken' in credentials)
      throw new AdminError(`the saved login for ${registry} no longer works (${err.message}): run \`berth login ${registry}\``);
    throw new AdminError(err.message);
  }
}

/** The `sub` and `name` claims of a JWT, unverified. */
function tokenSubject(token: string): { subject: string; name: string } {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub?: unknown; name?: unknown };
    return { subject: typeof payload.sub === 'string' ? payload.sub : '', name: typeof payload.name === 'string' ? payload.name : 'this principal' };
  } catch {
    return { subject: '', name: 'this principal' };
  }
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new AdminError('--password-stdin reads a pipe: echo "$PASSWORD" | berth … --password-stdin');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}
