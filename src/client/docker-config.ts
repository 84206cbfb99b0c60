/**
 * Docker's client config ($DOCKER_CONFIG/config.json, default ~/.docker/config.json): the file
 * docker, podman and skopeo read credentials from. Berth stores only a refresh token there, as
 * `identitytoken` (with the conventional null-GUID user name), never a password.
 *
 * Writes are atomic (temp file + rename) and keep every key Berth does not own.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export interface AuthEntry {
  auth?: string;
  identitytoken?: string;
  registrytoken?: string;
}

export interface DockerConfig {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  [key: string]: unknown;
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env['DOCKER_CONFIG'] ?? join(homedir(), '.docker'), 'config.json');
}

export async function readDockerConfig(path = dockerConfigPath()): Promise<DockerConfig> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as DockerConfig;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new Error(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

export async function writeDockerConfig(config: DockerConfig, path = dockerConfigPath()): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600 });
  await rename(temp, path);
}

/** Records a refresh token for `registry` (host[:port]) the way docker's own login does. */
export async function storeIdentityToken(registry: string, refreshToken: string, path = dockerConfigPath()): Promise<void> {
  const config = await readDockerConfig(path);
  const auth = Buffer.from('00000000-0000-0000-0000-000000000000:').toString('base64');
  config.auths = { ...config.auths, [registry]: { auth, identitytoken: refreshToken } };
  await writeDockerConfig(config, path);
}

/** Removes `registry`'s entry; returns false if there was none. */
export async function removeAuth(registry: string, path = dockerConfigPath()): Promise<boolean> {
  const config = await readDockerConfig(path);
  if (!config.auths?.[registry]) return false;
  const { [registry]: _removed, ...rest } = config.auths;
  config.auths = rest;
  await writeDockerConfig(config, path);
  return true;
}

/**
 * The credential helper docker consults for `registry` (`credHelpers[registry]`, else
 * `credsStore`), e.g. `berth` for docker-credential-berth; undefined when config.json itself holds
 * the credentials.
 */
export function credentialHelperFor(config: DockerConfig, registry: string): string | undefined {
  const helper = config.credHelpers?.[registry] ?? (typeof config['credsStore'] === 'string' ? config['credsStore'] : undefined);
  return helper === '' ? undefined : helper;
}
