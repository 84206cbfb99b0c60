/**
 * `berth controller`: the Kubernetes pull-secret controller, in a cluster (in-cluster service
 * account) or as a plain `node` process with a kubeconfig. Runs until SIGINT/SIGTERM, then lets
 * in-flight reconciles finish. See docs/kubernetes.md.
 */
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
  requireAttestations?: boolean;
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
      requireAttestations: flags.requireAttestations,
    } as ControllerSettingsInput,
    env,
  );
  const logger = createLogger(settings.logLevel).child({ component: 'controller' });
  const running = await runController(settings, logger, { processMetrics: true });
  stopOnSignals(logger, () => running.stop());
}
