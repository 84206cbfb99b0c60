/**
 * The separate listener of `metrics.addr`: `/metrics`, `/healthz` and `/readyz` only, so scrapes
 * and probes can be kept off the public address. Everything else is 404.
 */
import type { RequestListener } from 'node:http';
import type { Logger } from 'pino';
import { RegistryError } from '../oci/errors.js';
import { sendError } from './respond.js';
import { probeRoutes } from './routes/operations.js';
import type { Services } from './services.js';

export function operationsListener(services: Services, logger: Logger): RequestListener {
  const routes = probeRoutes('metrics');
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = routes.find((r) => r.method === req.method && r.path.test(path));
    const work = route
      ? route.handle({
          req,
          res,
          params: {},
          query: new URLSearchParams(),
          registry: services.registry,
          auth: services.auth,
          services,
          identity: undefined,
          logger,
          // Probes and scrapes are not throttled or audited by address: the peer is enough.
          clientAddress: req.socket.remoteAddress ?? 'unknown',
        })
      : Promise.reject(new RegistryError('NOT_FOUND', 'this listener serves /metrics, /healthz and /readyz only'));
    work.catch((err: unknown) => sendError(req, res, err, logger));
  };
}
