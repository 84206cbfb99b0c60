/**
 * The request listener: match a route, run its handler, send every failure through the one error
 * serialiser. No framework: the registry's routes cannot be expressed in most routers (names
 * contain `/`), and blob bodies must stay raw Node streams end to end.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { RegistryError } from '../oci/errors.js';
import type { AccessClaims } from '../auth/tokens.js';
import type { ClientAddressOf } from './client-address.js';
import { authorizeRequest } from './console-session.js';
import { sendError } from './respond.js';
import type { ObservedRequest, RequestObserver } from './observe.js';
import type { RouteContext } from './route.js';
import { matchRoute, requiredAccess } from './routes.js';
import { pullThrough } from './routes/cache.js';
import type { Services } from './services.js';
import { LatestRequest } from './latest-request.js';
import { guardSlowClient, type SlowClientLimits } from './slow-clients.js';

export interface ListenerOptions {
  /** Bounds on clients that send bodies or read responses too slowly (`slow-clients.ts`). */
  slowClients: SlowClientLimits;
  /** Who is calling, by address (`client-address.ts`): the peer, or what trusted proxies say. */
  clientAddress: ClientAddressOf;
  /** Records each request's id, metrics, span, access log line and registry audit entries (`observe.ts`). */
  observer?: RequestObserver | undefined;
}

export function registryListener(services: Services, logger: Logger, options: ListenerOptions): RequestListener {
  const { observer } = options;
  const latest = new LatestRequest();
  return (req: IncomingMessage, res: ServerResponse) => {
    latest.keep(req, res);
    guardSlowClient(req, res, options.slowClients, logger);
    const observed = observer?.begin(req, res);
    const handle = () =>
      dispatch(req, res, services, logger, options.clientAddress, observed).catch((err: unknown) => {
        // Last resort: a bug in error handling must never become an unhandled rejection.
        logger.error({ err, method: req.method, url: req.url, requestId: observed?.id }, 'request handling failed');
        res.destroy();
      });
    if (observed) observed.run(handle);
    else void handle();
  };
}

async function dispatch(
  req: IncomingMessage,
  res: ServerResponse,
  services: Services,
  rootLogger: Logger,
  clientAddressOf: ClientAddressOf,
  observed?: ObservedRequest,
): Promise<void> {
  // Lines a request logs carry its id; the child logger is made only if something is logged.
  const requestLogger = () => observed?.logger ?? rootLogger;
  try {
    const rawUrl = req.url ?? '/';
    const queryStart = rawUrl.indexOf('?');
    const path = queryStart === -1 ? rawUrl : rawUrl.slice(0, queryStart);
    const query = new URLSearchParams(queryStart === -1 ? '' : rawUrl.slice(queryStart + 1));
    const match = matchRoute(req.method ?? 'GET', path);
    if (match.kind === 'not-found') throw new RegistryError('NOT_FOUND', undefined, { path: path.slice(0, 200) });
    if (match.kind === 'method-not-allowed') {
      throw new RegistryError('METHOD_NOT_ALLOWED', undefined, { method: req.method }, { Allow: match.allow.join(', ') });
    }
    // The pull-through cache's one hook: mirror requests renamed into a rule's prefix, pulls under a prefix served by the cache.
    const { route, params } = await pullThrough(match.route, match.params, query, services.cache);
    observed?.matched(route, params);
    const identity = route.guard !== 'public' ? await authorizeRequest(req, services, requiredAccess(route, params, query)) : undefined;
    observed?.identified(identity);
    await route.handle(
      new RequestContext(
        req,
        res,
        params,
        query,
        services,
        identity,
        // Resolved once per request: the observer already has it for its audit entries.
        observed?.clientAddress ?? clientAddressOf(req),
        requestLogger,
      ),
    );
  } catch (err) {
    if (isClientGone(err, req, res)) {
      requestLogger().debug({ method: req.method, url: req.url }, 'client went away');
      if (!res.headersSent) res.destroy();
      return;
    }
    sendError(req, res, err, requestLogger());
  }
}

/**
 * What a handler gets. A class rather than an object literal: a literal with a getter (`get logger()`)
 * gets its own accessor pair and shape each time, and on Node 20 those survive into the old generation
 * (eslint.config.js: the request path's object rule, with the measurements); the class's getter is shared.
 */
class RequestContext implements RouteContext {
  readonly registry: Services['registry'];
  readonly auth: Services['auth'];

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly params: Record<string, string>,
    readonly query: URLSearchParams,
    readonly services: Services,
    readonly identity: AccessClaims | undefined,
    readonly clientAddress: string,
    private readonly loggerOf: () => Logger,
  ) {
    this.registry = services.registry;
    this.auth = services.auth;
  }

  /** Lines a request logs carry its id; the child logger is made only if something is logged. */
  get logger(): Logger {
    return this.loggerOf();
  }
}

/**
 * A request whose client aborted; nothing useful can be sent back. The connection's socket is what
 * tells, and either side may have let go of it: the request stream reads "destroyed" after any
 * complete read and drops its socket when a body read is abandoned, and `res.socket` is null while
 * a response waits behind the previous one on a kept-alive connection.
 */
function isClientGone(err: unknown, req: IncomingMessage, res: ServerResponse): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const socket = res.socket ?? req.socket;
  return code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || !socket || socket.destroyed;
}
