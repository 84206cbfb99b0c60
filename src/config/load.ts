/**
 * Loading configuration: defaults <- config file (YAML or JSON) <- environment <- flags.
 * Fails fast with every problem listed, and warns loudly about insecure settings.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import type * as Yaml from 'yaml';
import { configSchema, type Config, type ConfigInput } from './schema.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface ConfigSources {
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  overrides?: ConfigInput;
}

export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env;
  const fromFile = readConfigFile(sources.file ?? env['BERTH_CONFIG']);
  const fromEnv: Record<string, unknown> = {};
  if (env['BERTH_ADDR']) fromEnv['addr'] = env['BERTH_ADDR'];
  if (env['BERTH_DATA']) fromEnv['dataDir'] = env['BERTH_DATA'];
  if (env['BERTH_LOG_LEVEL']) fromEnv['logLevel'] = env['BERTH_LOG_LEVEL'];
  if (env['BERTH_LOG_FORMAT']) fromEnv['logFormat'] = env['BERTH_LOG_FORMAT'];
  if (env['BERTH_METADATA_URL']) {
    // The URL alone implies PostgreSQL (the only driver that takes one), unless the file says otherwise.
    const fileMetadata = (fromFile['metadata'] ?? {}) as Record<string, unknown>;
    fromEnv['metadata'] = { driver: 'postgres', ...fileMetadata, url: env['BERTH_METADATA_URL'] };
  }
  const fileAuth = (fromFile['auth'] ?? {}) as Record<string, unknown>;
  const envAuth: Record<string, unknown> = {};
  if (env['BERTH_AUTH_ENABLED']) envAuth['enabled'] = !['false', '0', 'off', 'no'].includes(env['BERTH_AUTH_ENABLED'].toLowerCase());
  if (env['BERTH_BOOTSTRAP_USER'] || env['BERTH_BOOTSTRAP_PASSWORD']) {
    envAuth['bootstrap'] = stripUndefined({ user: env['BERTH_BOOTSTRAP_USER'], password: env['BERTH_BOOTSTRAP_PASSWORD'] });
  }
  if (Object.keys(envAuth).length > 0) fromEnv['auth'] = { ...fileAuth, ...envAuth };
  const merged = { ...fromFile, ...fromEnv, ...stripUndefined(sources.overrides ?? {}) };
  const parsed = configSchema().safeParse(merged);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  parseAddress(parsed.data.addr);
  return parsed.data;
}

function readConfigFile(file: string | undefined): Record<string, unknown> {
  if (!file) return {};
  let text: string;
  try {
    text = readFileSync(resolve(file), 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  // The YAML parser (about 0.5 MiB of heap) is loaded only when there is a file to parse.
  const { parse: parseYaml } = createRequire(import.meta.url)('yaml') as typeof Yaml;
  const value: unknown = parseYaml(text);
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(`config file ${file} must hold a mapping`);
  return value as Record<string, unknown>;
}

function stripUndefined(value: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}

/** Splits HOST:PORT (IPv6 hosts in brackets). */
export function parseAddress(addr: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new ConfigError(`invalid address ${JSON.stringify(addr)}: expected HOST:PORT`);
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}
