/**
 * Where a workload's OIDC identity token comes from, for `berth login --oidc SOURCE` and for
 * docker-credential-berth when it has to log in again:
 *
 * - `github`: GitHub Actions' ID-token endpoint. A job with `permissions: id-token: write` has
 *   `ACTIONS_ID_TOKEN_REQUEST_URL` and `ACTIONS_ID_TOKEN_REQUEST_TOKEN`; a GET of that URL with
 *   `&audience=<aud>` and `Authorization: bearer <request token>` answers `{"value": "<jwt>"}`.
 *   The audience is the one `--audience` names, else the one the registry advertises (api/oidc.ts).
 * - `file:PATH`: a token some platform keeps fresh in a file (a projected Kubernetes service-account
 *   token, a CI job's token written out by a script). Read anew every time.
 * - `env:VAR`: a token in an environment variable (GitLab's `id_tokens`, anything else).
 *
 * A source is what Berth may remember; the token it yields never is. Errors are one line saying
 * what to fix.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { legacyAudience } from '../api/oidc.js';
import { isLoopbackHostname } from '../shared/loopback.js';

/** `github.audience`: the one `--audience` named; undefined: ask for the one the registry advertises. */
export type OidcSource = { type: 'github'; audience: string | undefined } | { type: 'file'; path: string } | { type: 'env'; variable: string };

export class OidcSourceError extends Error {
  override name = 'OidcSourceError';
}

export const githubRequestUrlVar = 'ACTIONS_ID_TOKEN_REQUEST_URL';
export const githubRequestTokenVar = 'ACTIONS_ID_TOKEN_REQUEST_TOKEN';

/** A bound on a hung ID-token endpoint, so a CI step fails with a message instead of hanging. */
const requestTimeoutMs = 30_000;

/**
 * Parses `--oidc github|file:PATH|env:VAR` (with `--audience` for github only). A relative file
 * path is made absolute against `cwd`: the credential helper reads it later from elsewhere.
 */
export function parseOidcSource(spec: string, options: { audience?: string | undefined; cwd?: string } = {}): OidcSource {
  const audience = options.audience;
  if (audience !== undefined && spec !== 'github') {
    throw new OidcSourceError(`--audience applies to --oidc github only: a token from ${spec} already carries its audience`);
  }
  if (spec === 'github') {
    if (audience !== undefined && audience.trim() === '') throw new OidcSourceError('--audience must not be empty');
    return { type: 'github', audience };
  }
  if (spec.startsWith('file:')) {
    const path = spec.slice('file:'.length);
    if (path === '') throw new OidcSourceError('--oidc file: needs a path, e.g. file:/var/run/secrets/tokens/berth');
    return { type: 'file', path: resolve(options.cwd ?? process.cwd(), path) };
  }
  if (spec.startsWith('env:')) {
    const variable = spec.slice('env:'.length);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(variable)) {
      throw new OidcSourceError(`--oidc env: needs an environment variable name, e.g. env:CI_JOB_JWT (got ${JSON.stringify(variable)})`);
    }
    return { type: 'env', variable };
  }
  throw new OidcSourceError(`unknown --oidc source ${JSON.stringify(spec)}: use github, file:PATH or env:VAR`);
}

/** The source as `--oidc` takes it: `github`, `file:/abs/path` or `env:VAR`. */
export function formatOidcSource(source: OidcSource): string {
  switch (source.type) {
    case 'github':
      return 'github';
    case 'file':
      return `file:${source.path}`;
    case 'env':
      return `env:${source.variable}`;
  }
}

export interface ReadOptions {
  env: NodeJS.ProcessEnv;
  /** The audience the registry advertises (its challenge's `audience`), for a github source without its own. */
  advertisedAudience?: string | undefined;
  /** The HTTP client for the GitHub source (tests may count or refuse requests). */
  fetch?: typeof fetch;
}

/** A fresh OIDC token from `source`; never cached. */
export async function readOidcToken(source: OidcSource, options: ReadOptions): Promise<string> {
  switch (source.type) {
    case 'github':
      // A registry that advertises none is a Berth from before instance audiences: it accepts the legacy one.
      return githubIdToken(source.audience ?? options.advertisedAudience ?? legacyAudience, options);
    case 'file':
      return fileToken(source.path);
    case 'env':
      return envToken(source.variable, options.env);
  }
}

async function githubIdToken(audience: string, options: ReadOptions): Promise<string> {
  const requestUrl = options.env[githubRequestUrlVar];
  const requestToken = options.env[githubRequestTokenVar];
  if (!requestUrl || !requestToken) {
    const missing = [!requestUrl && githubRequestUrlVar, !requestToken && githubRequestTokenVar].filter(Boolean).join(' and ');
    throw new OidcSourceError(
      `--oidc github needs a GitHub Actions job allowed to request ID tokens (${missing} not set): add \`permissions: id-token: write\` to the workflow or job`,
    );
  }
  let url: URL;
  try {
    url = new URL(requestUrl);
  } catch {
    throw new OidcSourceError(`${githubRequestUrlVar} is not a URL`);
  }
  // The request token is a credential: HTTPS only, except to a loopback endpoint (tests, act).
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHostname(url.hostname))) {
    throw new OidcSourceError(`refusing to send ${githubRequestTokenVar} to ${url.protocol}//${url.host} over plain HTTP`);
  }
  url.searchParams.set('audience', audience);
  let res: Response;
  try {
    res = await (options.fetch ?? fetch)(url, {
      headers: { Authorization: `bearer ${requestToken}`, Accept: 'application/json' },
      signal: AbortSignal.timeout(requestTimeoutMs),
    });
  } catch (err) {
    throw new OidcSourceError(`cannot reach GitHub's ID-token endpoint ${url.origin}: ${failure(err)}`);
  }
  const text = await res.text().catch(() => '');
  if (!res.ok) {
    throw new OidcSourceError(`GitHub refused the ID-token request (HTTP ${res.status}${detail(text)}); check \`permissions: id-token: write\``);
  }
  let value: unknown;
  try {
    value = (JSON.parse(text) as { value?: unknown }).value;
  } catch {
    value = undefined;
  }
  if (typeof value !== 'string' || value === '') throw new OidcSourceError('GitHub\'s ID-token endpoint answered without a token (no "value")');
  assertJwt(value, "GitHub's ID-token endpoint");
  return value;
}

async function fileToken(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'it is a directory'
            : (err as Error).message;
    throw new OidcSourceError(`cannot read the OIDC token file ${path}: ${reason}`);
  }
  const token = text.trim();
  if (token === '') throw new OidcSourceError(`the OIDC token file ${path} is empty`);
  assertJwt(token, `the OIDC token file ${path}`);
  return token;
}

function envToken(variable: string, env: NodeJS.ProcessEnv): string {
  const token = env[variable]?.trim();
  if (!token) throw new OidcSourceError(`the environment variable ${variable} is not set or empty (it should hold the OIDC token)`);
  assertJwt(token, `the environment variable ${variable}`);
  return token;
}

/**
 * A compact JWS whose payload names an issuer. Checked here so a wrong file or variable fails with
 * a message about the file, not with the registry's opinion of a garbled token.
 */
function assertJwt(token: string, where: string): void {
  const parts = token.split('.');
  let iss: unknown;
  try {
    if (parts.length === 3) iss = (JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8')) as { iss?: unknown }).iss;
  } catch {
    iss = undefined;
  }
  if (typeof iss !== 'string') throw new OidcSourceError(`${where} does not hold an OIDC token (a JWT with an issuer)`);
}

function detail(body: string): string {
  let message: unknown;
  try {
    message = (JSON.parse(body) as { message?: unknown }).message;
  } catch {
    message = body.trim();
  }
  return typeof message === 'string' && message !== '' ? `: ${message.replace(/\s+/g, ' ').slice(0, 200)}` : '';
}

function failure(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  if (cause && typeof cause.message === 'string') return cause.message;
  return (err as Error).message;
}
