// Berth login (OIDC): the GitHub Action. `berth login REGISTRY --oidc github --identity CLIENT_ID`
// without installing Berth: Node 20 built-ins only, no dependencies, no build step.
//
// 1. Find the registry's token service: GET /v2/ -> 401 WWW-Authenticate: Bearer realm=…,service=…,
//    audience=…. The realm must be on the registry's own host: the ID token goes nowhere else.
// 2. Ask GitHub for the job's ID token for the registry's audience (the `audience` input, else the
//    one the challenge advertises, else `berth` for a Berth that advertises none):
//    GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=<audience> with
//    `Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN` -> {"value": "<jwt>"}.
// 3. Exchange the ID token beside the realm: POST …/oauth2/exchange
//    grant_type=access_token&access_token=<jwt>&client_id=<identity>&service=<service> -> {refresh_token}
// 4. Store the refresh token as docker's own login does, in $DOCKER_CONFIG/config.json (default
//    ~/.docker/config.json): auths[host] = {auth: base64("00000000-0000-0000-0000-000000000000:"),
//    identitytoken}. The ID token is never written down.
//
// Both tokens are masked in the log. Errors are one `::error::` line saying what to fix.
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

const nullUser = '00000000-0000-0000-0000-000000000000';
/** What a Berth from before instance audiences accepts; asked for only when the registry advertises none. */
const legacyAudience = 'berth';
const timeoutMs = 30_000;

class ActionError extends Error {}

/** An input as the runner passes it: INPUT_<NAME> (upper case, spaces as underscores). */
function input(name, fallback = '') {
  const value = process.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] ?? '';
  return value.trim() === '' ? fallback : value.trim();
}

/** Workflow commands escape %, CR and LF in their data. */
function escapeData(text) {
  return String(text).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function mask(secret) {
  process.stdout.write(`::add-mask::${escapeData(secret)}\n`);
}

function setOutput(name, value) {
  const file = process.env.GITHUB_OUTPUT;
  if (!file) return;
  const delimiter = `berth_${randomBytes(8).toString('hex')}`;
  appendFileSync(file, `${name}<<${delimiter}\n${value}\n${delimiter}\n`);
}

function isLoopback(hostname) {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** HOST[:PORT] (docker's key for the login) and the base URL: https, or http for loopback only. */
function parseRegistry(registry) {
  const scheme = /^(https?):\/\//i.exec(registry)?.[1]?.toLowerCase();
  const host = registry
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .split('/')[0]
    .toLowerCase();
  if (!/^[a-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-f:.]+\](:\d{1,5})?$/.test(host)) {
    throw new ActionError(`registry ${JSON.stringify(registry)} is not a registry address; expected HOST[:PORT], e.g. registry.example.com`);
  }
  const hostname = host.replace(/:\d+$/, '');
  const base = `${scheme ?? (isLoopback(hostname) ? 'http' : 'https')}://${host}`;
  if (base.startsWith('http:') && !isLoopback(hostname)) {
    throw new ActionError(`refusing to log in to ${host} over plain HTTP; serve it over HTTPS and use https://${host}`);
  }
  return { host, base };
}

function reason(err) {
  const cause = err?.cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  if (cause && typeof cause.message === 'string') return cause.message;
  return err?.message ?? String(err);
}

async function githubIdToken(audience) {
  const requestUrl = process.env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const requestToken = process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  if (!requestUrl || !requestToken) {
    throw new ActionError(
      'this job may not request an ID token (ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN are not set): add `permissions: id-token: write` to the workflow or job',
    );
  }
  const url = new URL(requestUrl);
  url.searchParams.set('audience', audience);
  let res;
  try {
    res = await fetch(url, { headers: { Authorization: `bearer ${requestToken}`, Accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new ActionError(`cannot reach GitHub's ID-token endpoint: ${reason(err)}`);
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    throw new ActionError(
      `GitHub refused the ID-token request (HTTP ${res.status}${body?.message ? `: ${body.message}` : ''}); check \`permissions: id-token: write\``,
    );
  }
  if (typeof body?.value !== 'string' || body.value === '') throw new ActionError("GitHub's ID-token endpoint answered without a token");
  return body.value;
}

/**
 * GET /v2/: the token service's realm, service and audience from the 401 challenge; undefined when
 * auth is off. A realm on another host than the registry is refused: a registry must not be able
 * to have the job's ID token sent to a third party.
 */
async function discover(base, host) {
  let res;
  try {
    res = await fetch(`${base}/v2/`, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new ActionError(`cannot reach ${base}: ${reason(err)}; check the registry address and that the runner can reach it`);
  }
  await res.body?.cancel();
  if (res.status === 200) return undefined;
  const header = res.headers.get('www-authenticate') ?? '';
  const params = {};
  for (const [, key, value] of header.matchAll(/(\w+)="([^"]*)"/g)) params[key] = value;
  if (res.status !== 401 || !/^Bearer\s/i.test(header) || !params.realm) {
    throw new ActionError(`${base}/v2/ answered ${res.status} without a Bearer challenge; is this a Berth registry?`);
  }
  let realm;
  try {
    realm = new URL(params.realm);
  } catch {
    throw new ActionError(`${base} names an invalid token realm`);
  }
  if (realm.protocol !== 'https:' && !isLoopback(realm.hostname)) {
    throw new ActionError(`refusing to send the ID token to ${realm.href} over plain HTTP`);
  }
  if (realm.host.toLowerCase() !== host) {
    throw new ActionError(
      `${host} names a token service on another host (${realm.host}); the ID token goes only to the registry's own host (if this is your Berth, set its auth.publicUrl to the address the job uses)`,
    );
  }
  return { realm: realm.href, service: params.service, audience: params.audience };
}

async function exchange(challenge, idToken, identity) {
  const endpoint = new URL('exchange', challenge.realm).href;
  const form = new URLSearchParams({ grant_type: 'access_token', access_token: idToken, client_id: identity });
  if (challenge.service) form.set('service', challenge.service);
  let res;
  try {
    res = await fetch(endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: form,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new ActionError(`cannot reach ${endpoint}: ${reason(err)}`);
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok || typeof body?.refresh_token !== 'string') {
    const description = typeof body?.error_description === 'string' ? body.error_description : `HTTP ${res.status}`;
    throw new ActionError(`the registry refused the login as ${identity}: ${description}`);
  }
  return body.refresh_token;
}

/** Writes auths[host] into the docker config, keeping everything else in it; 0600, atomic. */
async function storeLogin(host, refreshToken) {
  const path = join(process.env.DOCKER_CONFIG || join(homedir(), '.docker'), 'config.json');
  let config = {};
  try {
    config = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    if (err.code !== 'ENOENT') throw new ActionError(`cannot read ${path}: ${err.message}`);
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new ActionError(`${path} is not a JSON object`);
  const helper = config.credHelpers?.[host] ?? config.credsStore;
  if (helper) {
    process.stdout.write(
      `::warning::${escapeData(`${path} sends ${host} to docker-credential-${helper}, so docker will not read the login stored in auths`)}\n`,
    );
  }
  config.auths = { ...config.auths, [host]: { auth: Buffer.from(`${nullUser}:`).toString('base64'), identitytoken: refreshToken } };
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temp, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600, flag: 'wx' });
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  return path;
}

function expiry(token) {
  try {
    const exp = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')).exp;
    return typeof exp === 'number' ? new Date(exp * 1000).toISOString() : '';
  } catch {
    return '';
  }
}

async function main() {
  const registry = input('registry');
  const identity = input('identity');
  if (!registry) throw new ActionError('input `registry` is required (HOST[:PORT] of the Berth registry)');
  if (!identity) throw new ActionError('input `identity` is required (the client id of the Berth service principal)');
  const { host, base } = parseRegistry(registry);

  const challenge = await discover(base, host);
  if (!challenge) {
    process.stdout.write(`::warning::${escapeData(`${host} does not ask for credentials (its auth is off): nothing to store`)}\n`);
    return;
  }
  const audience = input('audience', challenge.audience || legacyAudience);
  const idToken = await githubIdToken(audience);
  mask(idToken);
  const refreshToken = await exchange(challenge, idToken, identity);
  mask(refreshToken);
  const path = await storeLogin(host, refreshToken);
  const expiresAt = expiry(refreshToken);

  setOutput('registry', host);
  setOutput('docker-config', path);
  setOutput('expires-at', expiresAt);
  process.stdout.write(`Logged in to ${host} as ${identity}; stored a refresh token in ${path}${expiresAt ? ` (valid until ${expiresAt})` : ''}\n`);
}

main().catch((err) => {
  const message = err instanceof ActionError ? err.message : `unexpected failure: ${err?.stack ?? err}`;
  process.stdout.write(`::error::${escapeData(`Berth login: ${message}`)}\n`);
  process.exitCode = 1;
});
