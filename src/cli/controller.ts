/**
 * `berth controller`: the Kubernetes pull-secret controller, in a cluster (in-cluster service
 * account) or as a plain `node` process with a kubeconfig. Runs until SIGINT/SIGTERM, then lets
 * in-flight reconciles finish. See docs/kubernetes.md.
 */
import type { Command } from 'commander';
import { createLogger } from '../shared/logger.js';
import { loadControllerSettings, type ControllerSettingsInput } from '../kube/options.js';
import { runController } from '../kube/run.js';
import { stopOnSignals } from './shutdown.js';

export interface ControllerFlags {
  kubeconfig?: string;
  allowedRegistry?: string[];
  audience?: string;
  tokenExpirationSeconds?: number;
  refreshFraction?: number;
  namespace?: string;
  workers?: number;
  resyncSeconds?: number;
  metricsAddr?: string;
  logLevel?: string;
}

export async function controller(flags: ControllerFlags, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const settings = loadControllerSettings(
    {
      kubeconfig: flags.kubeconfig,
      allowedRegistries: flags.allowedRegistry,
      audience: flags.audience,
      tokenExpirationSeconds: flags.tokenExpirationSeconds,
      refreshFraction: flags.refreshFraction,
      namespace: flags.namespace,
      workers: flags.workers,
      resyncSeconds: flags.resyncSeconds,
      metricsAddr: flags.metricsAddr,
      logLevel: flags.logLevel as ControllerSettingsInput['logLevel'],
    } as ControllerSettingsInput,
    env,
  );
  const logger = createLogger(settings.logLevel).child({ component: 'controller' });
  const running = await runController(settings, logger, { processMetrics: true });
  stopOnSignals(logger, () => running.stop());
}

/** Registers `berth controller` on the program (bin/berth.ts calls this once). */
export function registerControllerCommand(program: Command): void {
  const collect = (value: string, previous: string[] = []) => [
    ...previous,
    ...value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  ];
  const num = (value: string) => {
    const n = Number(value);
    if (!Number.isFinite(n)) throw new Error(`expected a number, got ${value}`);
    return n;
  };
  program
    .command('controller')
    .description('run the Kubernetes pull-secret controller (PullBinding -> always-fresh image pull secrets; see docs/kubernetes.md)')
    .option('--kubeconfig <file>', 'kubeconfig (env KUBECONFIG; default: in-cluster service account)')
    .option(
      '--allowed-registry <host[:port]>',
      'a registry bindings may name, or *.domain (repeatable or comma-separated; env BERTH_ALLOWED_REGISTRIES)',
      collect,
    )
    .option('--audience <aud>', 'the only audience service-account tokens are requested for (default berth; env BERTH_TOKEN_AUDIENCE)')
    .option('--token-expiration-seconds <n>', 'TokenRequest lifetime, at least 600 (default 3600)', num)
    .option('--refresh-fraction <f>', "refresh after this fraction of the credentials' lifetime (default 0.5)", num)
    .option('--namespace <ns>', 'watch only this namespace (default all)')
    .option('--workers <n>', 'bindings reconciled in parallel (default 4)', num)
    .option('--resync-seconds <n>', 'look at every binding at least this often (default 600)', num)
    .option('--metrics-addr <host:port>', '/metrics, /healthz, /readyz (default 127.0.0.1:8080; off for none)')
    .option('--log-level <level>', 'trace, debug, info, warn, error (default info)')
    .action((flags: ControllerFlags) => controller(flags));
}
