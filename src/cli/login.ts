/**
 * `berth login` and `berth logout`: a password (or refresh-token) login against the token service
 * the registry's 401 challenge names, keeping only the refresh token where docker, podman and
 * skopeo look for it (see client/credentials.ts). Errors are one line saying what to do next.
 *
 * `berth login REG --oidc github|file:PATH|env:VAR [--identity CLIENT_ID]` logs a workload in with
 * its OIDC token instead (see client/federated-login.ts): no password, no stored secret.
 */
import type { ReadStream } from 'node:tty';
import { defaultLocations, forgetCredentials, newRefreshToken, saveRefreshToken } from '../client/credentials.js';
import { saveFederatedLogin, type FederatedLogin } from '../client/federated-login.js';
import { formatOidcSource, parseOidcSource, readOidcToken } from '../client/oidc-sources.js';
import { registryHost, registryUrl } from '../remote/reference.js';
import { discover, ExchangeRefusedError, exchangeIdentityToken, LoginError, refreshTokenUser, tokenTimes, type Credentials } from '../remote/tokens.js';
import { isLoopbackHost } from '../shared/loopback.js';

export interface LoginOptions {
  username?: string;
  passwordStdin?: boolean;
  /** Log in with a workload identity token from this source: `github`, `file:PATH`, `env:VAR`. */
  oidc?: string;
  /** With `oidc`: the service principal's client id. */
  identity?: string;
  /** With `oidc: 'github'`: the audience to request (default: the one the registry advertises). */
  audience?: string;
}

export interface CliIo {
  /** Prompts need a TTY (`isTTY`, and then `setRawMode`); otherwise only read to its end. */
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

export const processIo = (): CliIo => ({ stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env });

export async function login(registry: string, options: LoginOptions, io: CliIo = processIo()): Promise<void> {
  if (options.oidc !== undefined) return oidcLogin(registry, options.oidc, options, io);
  if (options.identity !== undefined || options.audience !== undefined) {
    throw new LoginError('--identity and --audience go with --oidc github|file:PATH|env:VAR');
  }
  const { host, baseUrl } = resolveRegistry(registry);
  const challenge = await discover(baseUrl);
  if (!challenge) {
    io.stderr.write(`${host} does not ask for credentials (its auth is off): nothing to store\n`);
    return;
  }
  const credentials = await askCredentials(options, io);
  let refreshToken: string;
  try {
    refreshToken = await newRefreshToken(challenge, credentials);
  } catch (err) {
    if (err instanceof LoginError && err.status === 401) {
      const next =
        'refreshToken' in credentials
          ? 'the refresh token is invalid, expired or revoked; get a new one (`berth token --expose`) or log in with a password'
          : 'invalid username or password; check them and try again';
      throw new LoginError(`login to ${host} failed: ${next}`, 401);
    }
    throw err;
  }
  const where = await saveRefreshToken(host, refreshToken, defaultLocations(io.env));
  io.stderr.write(`Stored a refresh token for ${host} in ${where} (never the password).\n`);
  io.stdout.write('Login Succeeded\n');
}

/**
 * A workload logs in with its OIDC token: read it from the source, exchange it at the registry for
 * a refresh token, store that (and, in docker-credential-berth's file, the source) as a password
 * login would be stored. The registry's refusal is passed on as it is: it names the failed check.
 */
async function oidcLogin(registry: string, spec: string, options: LoginOptions, io: CliIo): Promise<void> {
  if (options.username !== undefined || options.passwordStdin) {
    throw new LoginError('--oidc logs in with an identity token, not a password: leave out --username and --password-stdin');
  }
  if (options.identity !== undefined && options.identity.trim() === '') throw new LoginError('--identity must name a client id');
  const source = parseOidcSource(spec, { audience: options.audience });
  const federated: FederatedLogin = { source, identity: options.identity };
  const { host, baseUrl } = resolveRegistry(registry);
  const challenge = await discover(baseUrl);
  if (!challenge) {
    io.stderr.write(`${host} does not ask for credentials (its auth is off): nothing to store\n`);
    return;
  }
  // The token is asked for (github) or read only now, after the registry named its audience and
  // `discover` checked that its token service is on its own host: the token goes nowhere else.
  const oidcToken = await readOidcToken(source, { env: io.env, advertisedAudience: challenge.audience });
  let refreshToken: string;
  try {
    refreshToken = await exchangeIdentityToken(challenge, oidcToken, options.identity);
  } catch (err) {
    if (err instanceof ExchangeRefusedError) {
      const hint = err.description.replace('pass client_id', 'pass --identity CLIENT_ID');
      throw new LoginError(`login to ${host} with the ${formatOidcSource(source)} token failed: ${hint}`, err.status);
    }
    throw err;
  }
  const saved = await saveFederatedLogin(host, refreshToken, federated, defaultLocations(io.env));
  const expiresAt = tokenTimes(refreshToken)?.expiresAt;
  const until = expiresAt !== undefined ? ` until ${new Date(expiresAt).toISOString()}` : '';
  io.stderr.write(
    saved.renewable
      ? `Stored a refresh token for ${host} in ${saved.where} with its source (${formatOidcSource(source)}), never the OIDC token; docker-credential-berth logs in again from the source when it runs out.\n`
      : `Stored a refresh token for ${host} in ${saved.where}, valid${until} (as long as the OIDC token that bought it); never the OIDC token.\n`,
  );
  io.stdout.write('Login Succeeded\n');
}

export async function logout(registry: string, io: CliIo = processIo()): Promise<void> {
  const host = registryHost(registry);
  if (await forgetCredentials(host, defaultLocations(io.env))) io.stdout.write(`Removing login credentials for ${host}\n`);
  else io.stdout.write(`Not logged in to ${host}\n`);
}

/**
 * The registry's credential key and base URL. Plain HTTP is refused off loopback before anything
 * is sent: the stored token would cross the network in clear on every pull.
 */
export function resolveRegistry(registry: string): { host: string; baseUrl: string } {
  const host = registryHost(registry);
  const scheme = /^(https?):\/\//i.exec(registry.trim())?.[1]?.toLowerCase();
  const baseUrl = scheme ? `${scheme}://${host}` : registryUrl(host);
  if (baseUrl.startsWith('http:') && !isLoopbackHost(host)) {
    throw new LoginError(
      `refusing to log in to ${host} over plain HTTP (credentials would cross the network in clear); serve it over HTTPS and use https://${host}`,
    );
  }
  return { host, baseUrl };
}

/**
 * From the flags, stdin and the terminal: `--username` + `--password-stdin`, or prompts when stdin
 * is a TTY. The null-GUID user name means the "password" is a refresh token.
 */
export async function askCredentials(options: LoginOptions, io: CliIo): Promise<Credentials> {
  let username = options.username;
  let password: string;
  if (options.passwordStdin) {
    if (!username) throw new LoginError('--password-stdin needs --username NAME (the password alone is read from stdin)');
    password = trimNewline(await readAll(io.stdin));
  } else {
    if (!io.stdin.isTTY) throw new LoginError('no terminal to ask for a password: pass --username NAME --password-stdin and the password on stdin');
    username ??= await promptLine(io, 'Username: ');
    password = await promptHidden(io, 'Password: ');
  }
  if (!username) throw new LoginError('a user name is required (--username NAME)');
  if (!password) throw new LoginError(`no password given for ${username}; pass it on stdin with --password-stdin`);
  return username === refreshTokenUser ? { refreshToken: password } : { username, password };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** As docker does: one trailing newline (\n or \r\n) is not part of the password. */
function trimNewline(text: string): string {
  return text.replace(/\r?\n$/, '');
}

function promptLine(io: CliIo, question: string): Promise<string> {
  return readTerminal(io, question, true);
}

function promptHidden(io: CliIo, question: string): Promise<string> {
  return readTerminal(io, question, false);
}

/** Reads one line from the TTY in raw mode, echoing it or not; Ctrl-C and Ctrl-D abort. */
function readTerminal(io: CliIo, question: string, echo: boolean): Promise<string> {
  const stdin = io.stdin as ReadStream;
  const { stderr } = io;
  stderr.write(question);
  return new Promise((resolve, reject) => {
    let line = '';
    const finish = (error?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      stderr.write('\n');
      if (error) reject(error);
      else resolve(line);
    };
    const onData = (data: Buffer) => {
      for (const char of data.toString('utf8')) {
        if (char === '\r' || char === '\n') return finish();
        if (char === '\u0003' || char === '\u0004') return finish(new LoginError('login cancelled'));
        if (char === '\u007f' || char === '\b') {
          if (line.length > 0 && echo) stderr.write('\b \b');
          line = line.slice(0, -1);
        } else if (char >= ' ') {
          line += char;
          if (echo) stderr.write(char);
        }
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}
