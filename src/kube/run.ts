/**
 * Wiring for `berth controller`: kubeconfig (file or in-cluster), the Kubernetes client, the Berth
 * exchange, metrics, the controller, and a small HTTP server for `/metrics`, `/healthz` and
 * `/readyz`. Kept apart from the CLI so tests start the same thing in-process.
 */
import { createServer, type Server } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Controller } from './controller.js';
import { exchangeAtBerth, requireAttestationsAtBerth, type Exchanger } from './exchange.js';
import { KubeClusterApi } from './kube-client.js';
import { ControllerMetrics } from './metrics.js';
import { controllerOptions, type ControllerSettings } from './options.js';

export interface RunningController {
  controller: Controller;
  metrics: ControllerMetrics;
  /** `http://host:port` of the metrics server, if one runs. */
  metricsUrl: string | undefined;
  stop(): Promise<void>;
}

export function loadKubeConfig(file: string | undefined): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (file) kubeConfig.loadFromFile(file);
  else kubeConfig.loadFromCluster();
  return kubeConfig;
}

export async function runController(
  settings: ControllerSettings,
  logger: Logger,
  overrides: { kubeConfig?: KubeConfig; exchange?: Exchanger; processMetrics?: boolean } = {},
): Promise<RunningController> {
  if (settings.allowedRegistries.length === 0) {
    logger.warn('no registry is allowed (--allowed-registry): every PullBinding will be refused with RegistryServerNotAllowed');
  }
  const kubeConfig = overrides.kubeConfig ?? loadKubeConfig(settings.kubeconfig);
  const metrics = new ControllerMetrics(Date.now, { processMetrics: overrides.processMetrics ?? false });
  const controller = new Controller(controllerOptions(settings), {
    kubeConfig,
    api: new KubeClusterApi(kubeConfig, logger),
    exchange: overrides.exchange ?? (settings.requireAttestations ? requireAttestationsAtBerth(exchangeAtBerth) : exchangeAtBerth),
    metrics,
    logger,
  });
  let server: Server | undefined;
  let metricsUrl: string | undefined;
  if (settings.metricsAddr !== 'off') {
    server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      } else if (path === '/metrics') {
        metrics.text().then(
          (text) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(text),
          () => res.writeHead(500).end(),
        );
      } else if (path === '/healthz') {
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      } else if (path === '/readyz') {
        const ready = controller.ready;
        res.writeHead(ready ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ready ? 'ok' : 'watches not synced');
      } else {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      }
    });
    const { host, port } = splitAddr(settings.metricsAddr);
    await new Promise<void>((resolve, reject) => {
      server?.once('error', reject);
      server?.listen(port, host, () => resolve());
    });
    const address = server.address();
    const actualPort = typeof address === 'object' && address ? address.port : port;
    metricsUrl = `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
    logger.info({ url: metricsUrl }, 'metrics listening');
  }
  await controller.start();
  return {
    controller,
    metrics,
    metricsUrl,
    async stop() {
      await controller.stop();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    },
  };
}

function splitAddr(addr: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!match) throw new Error(`--metrics-addr must be HOST:PORT or off, got ${JSON.stringify(addr)}`);
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port: Number(match[3]) };
}
