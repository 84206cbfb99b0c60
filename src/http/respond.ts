/**
 * Writing responses. The single error serialiser lives here: a CodedError (RegistryError, ApiError) becomes its status,
 * headers and the spec's `{"errors":[{code,message,detail}]}`; anything else becomes an opaque 500
 * whose cause is logged and never sent.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { OAuthError } from '../auth/token-endpoint.js';
import { isCodedError } from '../shared/coded-error.js';
import { announcesBody } from './request.js';

export type Headers = Record<string, string | number>;

export const apiVersionHeader = { 'Docker-Distribution-API-Version': 'registry/2.0' } as const;

/** Sends a complete response. HEAD responses keep their headers (Content-Length included) but no body. */
export function send(res: ServerResponse, status: number, headers: Headers, body?: Buffer | string): void {
  const bytes = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body);
  // Object.assign, not `{ ...apiVersionHeader, ...headers }`: a literal that starts with a spread makes
  // every response's header object survive young collections (eslint.config.js: the request path's object rule).
  const all: Headers = Object.assign({}, apiVersionHeader, headers);
  if (bytes !== undefined && all['Content-Length'] === undefined) all['Content-Length'] = bytes.length;
  if (bytes === undefined && all['Content-Length'] === undefined && status !== 204 && status !== 304) all['Content-Length'] = 0;
  res.writeHead(status, all);
  if (bytes !== undefined && res.req.method !== 'HEAD') res.end(bytes);
  else res.end();
}

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Headers = {}): void {
  send(res, status, { 'Content-Type': 'application/json', ...headers }, JSON.stringify(value));
}

export function sendError(req: IncomingMessage, res: ServerResponse, err: unknown, logger: Logger): void {
  if (res.headersSent) {
    // Mid-body failure (client gone, storage error while streaming): the only honest signal left.
    logger.warn({ err, method: req.method, url: req.url }, 'request failed after the response started');
    res.destroy();
    return;
  }
  const headers: Headers = {};
  // A body we did not read to the end cannot be skipped safely on a kept-alive connection.
  // A request that announced no body has none left, even while Node has not yet marked it complete
  // (an error thrown before dispatch's first `await` is answered inside the parser's callback).
  const unread = !req.complete && announcesBody(req);
  if (unread) headers['Connection'] = 'close';
  if (err instanceof OAuthError) {
    // The token service speaks OAuth 2.0 errors (RFC 6749 section 5.2), not the registry's.
    sendJson(res, err.status, { error: err.error, error_description: err.message }, Object.assign(headers, err.headers, { 'Cache-Control': 'no-store' }));
  } else if (isCodedError(err)) {
    if (err.status >= 500) logger.error({ err, method: req.method, url: req.url }, 'request failed');
    const entry: Record<string, unknown> = { code: err.wireCode, message: err.message };
    if (err.detail !== undefined) entry['detail'] = err.detail;
    sendJson(res, err.status, { errors: [entry] }, Object.assign(headers, err.headers));
  } else {
    logger.error({ err, method: req.method, url: req.url }, 'internal error');
    sendJson(res, 500, { errors: [{ code: 'UNKNOWN', message: 'internal server error' }] }, headers);
  }
  if (unread) res.once('finish', () => req.destroy());
}
