/**
 * An in-process Berth on a random loopback port with a fresh data directory: the real HTTP server
 * and real storage/metadata, only without a separate process. Process-level tests (restart, real
 * clients) use `berth-process.ts` instead.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createApp, type App } from '../../src/app/app.js';
import { loadConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { openMetadata, openStorage } from '../../src/app/backends.js';
import type { Clock } from '../../src/shared/clock.js';
import { backendConfig } from './backends.js';

export const ownerName = 'owner';
export const ownerPassword = 'owner-password-1';

export interface TestServer {
  url: string;
  dataDir: string;
  app: App;
  stop(): Promise<void>;
}

export interface TestServerOptions {
  maxManifestBytes?: number;
  uploadTtlMs?: number;
  clock?: Clock;
  /**
   * Turn the token service on (default off: the registry-core tests exercise the API itself).
   * With auth on, an owner `owner` / `owner-password-1` is bootstrapped.
   */
  auth?: boolean;
  /** Trust these OIDC issuers (loopback test issuers are allowed plain HTTP and, past the egress policy, the loopback network). */
  federationIssuers?: Array<{ issuer: string; jwks?: { keys: unknown[] }; maxTokenAgeMs?: number; caFile?: string }>;
  /** Cap on registry tokens bought with OIDC tokens. */
  federationLifetimeCapMs?: number;
  /** Capture the server's log lines (at debug level) instead of discarding them. */
  logLines?: string[];
  /** With auth on, also enable the admin user (`auth.adminUser`) under this name, created without secrets. */
  adminUser?: string;
  /** Serve HTTPS with these PEM files. */
  tls?: { cert: string; key: string };
  /** Reuse a data directory (e.g. to restart on the same data); it is then not deleted on stop. */
  dataDir?: string;
  /**
   * Any other configuration, merged over the test defaults section by section (a section given
   * here replaces the same keys of the default section). Prefer this to adding options above.
   */
  config?: ConfigInput;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const parent = options.dataDir ? undefined : await mkdtemp(join(tmpdir(), 'berth-test-'));
  const dataDir = options.dataDir ?? join(parent as string, 'data');
  const defaults: ConfigInput = {
    addr: '127.0.0.1:0',
    dataDir,
    logLevel: 'silent',
    ...(options.tls ? { tls: options.tls } : {}),
    federation: {
      issuers: (options.federationIssuers ?? []).map((i) => ({
        issuer: i.issuer,
        allowInsecureLoopback: true,
        allowPrivateNetwork: true,
        ...(i.jwks ? { jwks: i.jwks as { keys: Array<Record<string, unknown>> } } : {}),
        ...(i.maxTokenAgeMs !== undefined ? { maxTokenAgeMs: i.maxTokenAgeMs } : {}),
        ...(i.caFile !== undefined ? { caFile: i.caFile } : {}),
      })),
      ...(options.federationLifetimeCapMs !== undefined ? { lifetimeCapMs: options.federationLifetimeCapMs } : {}),
      keyRefetchCooldownMs: 0,
    },
    auth: {
      enabled: options.auth ?? false,
      bootstrap: { user: ownerName, password: ownerPassword },
      ...(options.adminUser !== undefined ? { adminUser: { enabled: true, username: options.adminUser } } : {}),
    },
    limits: {
      ...(options.maxManifestBytes !== undefined ? { maxManifestBytes: options.maxManifestBytes } : {}),
      ...(options.uploadTtlMs !== undefined ? { uploadTtlMs: options.uploadTtlMs } : {}),
    },
  };
  const config = loadConfig({ env: {}, overrides: mergeSections(mergeSections(defaults, await backendConfig(dataDir)), options.config ?? {}) });
  const app = createApp({
    config,
    storage: await openStorage(config),
    metadata: await openMetadata(config),
    logger: options.logLines
      ? pino({ level: 'debug' }, { write: (line: string) => void options.logLines?.push(line) })
      : pino({ level: process.env['BERTH_TEST_LOG'] ?? 'silent' }),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  if (options.auth) await app.auth.principals.bootstrap();
  if (options.auth && options.adminUser !== undefined) await app.auth.principals.ensureAdminUser();
  const url = await app.listen();
  return {
    url,
    dataDir,
    app,
    async stop() {
      await app.close();
      if (parent) await rm(parent, { recursive: true, force: true });
    },
  };
}

/** Top-level keys of `extra` win; object sections are merged one level deep. */
function mergeSections(base: ConfigInput, extra: ConfigInput): ConfigInput {
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = merged[key];
    const bothObjects = isPlainObject(current) && isPlainObject(value);
    merged[key] = bothObjects ? { ...current, ...value } : value;
  }
  return merged as ConfigInput;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
