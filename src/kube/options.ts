/**
 * `berth controller` settings: one schema, every field described, each settable by a flag or an
 * environment variable (flags win). docs/kubernetes.md lists them.
 */
import { z } from 'zod';
import { defaultBackoff } from './work-queue.js';
import type { ControllerOptions } from './controller.js';

export const controllerSettingsSchema = z
  .object({
    kubeconfig: z.string().optional().describe('Kubeconfig file (env KUBECONFIG); without it the in-cluster service account is used.'),
    allowedRegistries: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Registry servers bindings may name: `host[:port]`, or `*.domain` for any host under a domain (env BERTH_ALLOWED_REGISTRIES, comma-separated). Empty allows none: service-account tokens are only ever sent to these.',
      ),
    audience: z
      .string()
      .min(1)
      .optional()
      .describe(
        "The only audience service-account tokens are requested for (env BERTH_TOKEN_AUDIENCE); Berth's federated credentials must accept it. Default: the audience each registry advertises in its 401 challenge (`berth` for a registry that advertises none).",
      ),
    tokenExpirationSeconds: z
      .number()
      .int()
      .min(600)
      .max(86_400)
      .default(3600)
      .describe(
        'Lifetime asked for in each TokenRequest (env BERTH_TOKEN_EXPIRATION_SECONDS). Kubernetes refuses less than 600; registry credentials never outlive the token.',
      ),
    refreshFraction: z
      .number()
      .gt(0)
      .lt(1)
      .default(0.5)
      .describe('Replace credentials once this fraction of their lifetime has passed (env BERTH_REFRESH_FRACTION).'),
    namespace: z.string().min(1).optional().describe('Watch only this namespace (env BERTH_NAMESPACE); default all namespaces.'),
    workers: z.number().int().min(1).max(64).default(4).describe('Bindings reconciled in parallel (env BERTH_WORKERS).'),
    resyncSeconds: z
      .number()
      .int()
      .min(10)
      .default(600)
      .describe('Look at every binding at least this often, also when nothing is due (env BERTH_RESYNC_SECONDS).'),
    backoffBaseMs: z
      .number()
      .int()
      .min(10)
      .default(defaultBackoff.baseMs)
      .describe('First retry after a failed reconcile, in ms; doubles per failure (env BERTH_BACKOFF_BASE_MS).'),
    backoffMaxMs: z.number().int().min(100).default(defaultBackoff.maxMs).describe('Longest wait between retries, in ms (env BERTH_BACKOFF_MAX_MS).'),
    metricsAddr: z
      .string()
      .default('127.0.0.1:8080')
      .describe('HOST:PORT for /metrics (Prometheus), /healthz and /readyz (env BERTH_METRICS_ADDR); `off` for none.'),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info').describe('Log level (env BERTH_LOG_LEVEL).'),
    requireAttestations: z
      .boolean()
      .default(false)
      .describe(
        'Mint pull credentials only for repositories whose Berth policy requires attestations at pull (env BERTH_REQUIRE_ATTESTATIONS=true); a binding naming another repository is refused. See docs/attestations.md.',
      ),
  })
  .strict();

export type ControllerSettings = z.infer<typeof controllerSettingsSchema>;
export type ControllerSettingsInput = z.input<typeof controllerSettingsSchema>;

export class SettingsError extends Error {
  override name = 'SettingsError';
}

function number(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new SettingsError(`${name} must be a number, got ${JSON.stringify(value)}`);
  return n;
}

/** Flags over environment over defaults, validated. */
export function loadControllerSettings(flags: ControllerSettingsInput, env: NodeJS.ProcessEnv): ControllerSettings {
  const fromEnv: ControllerSettingsInput = {};
  const set = <K extends keyof ControllerSettingsInput>(key: K, value: ControllerSettingsInput[K] | undefined) => {
    if (value !== undefined) fromEnv[key] = value;
  };
  set('kubeconfig', env['KUBECONFIG'] || undefined);
  set(
    'allowedRegistries',
    env['BERTH_ALLOWED_REGISTRIES']
      ? env['BERTH_ALLOWED_REGISTRIES']
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : undefined,
  );
  set('audience', env['BERTH_TOKEN_AUDIENCE'] || undefined);
  set('tokenExpirationSeconds', number(env['BERTH_TOKEN_EXPIRATION_SECONDS'], 'BERTH_TOKEN_EXPIRATION_SECONDS'));
  set('refreshFraction', number(env['BERTH_REFRESH_FRACTION'], 'BERTH_REFRESH_FRACTION'));
  set('namespace', env['BERTH_NAMESPACE'] || undefined);
  set('workers', number(env['BERTH_WORKERS'], 'BERTH_WORKERS'));
  set('resyncSeconds', number(env['BERTH_RESYNC_SECONDS'], 'BERTH_RESYNC_SECONDS'));
  set('backoffBaseMs', number(env['BERTH_BACKOFF_BASE_MS'], 'BERTH_BACKOFF_BASE_MS'));
  set('backoffMaxMs', number(env['BERTH_BACKOFF_MAX_MS'], 'BERTH_BACKOFF_MAX_MS'));
  set('metricsAddr', env['BERTH_METRICS_ADDR'] || undefined);
  set('logLevel', (env['BERTH_LOG_LEVEL'] || undefined) as ControllerSettingsInput['logLevel']);
  set('requireAttestations', env['BERTH_REQUIRE_ATTESTATIONS'] ? env['BERTH_REQUIRE_ATTESTATIONS'] === 'true' : undefined);
  const merged: Record<string, unknown> = { ...fromEnv };
  for (const [key, value] of Object.entries(flags)) if (value !== undefined) merged[key] = value;
  const parsed = controllerSettingsSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SettingsError(`invalid controller setting ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

export function controllerOptions(settings: ControllerSettings): ControllerOptions {
  return {
    audience: settings.audience,
    tokenExpirationSeconds: settings.tokenExpirationSeconds,
    refreshFraction: settings.refreshFraction,
    allowedServers: settings.allowedRegistries,
    resyncMs: settings.resyncSeconds * 1000,
    namespace: settings.namespace,
    workers: settings.workers,
    backoff: { baseMs: settings.backoffBaseMs, maxMs: settings.backoffMaxMs },
    watchRestartMs: 2000,
  };
}
