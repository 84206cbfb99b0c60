/**
 * Bounds on clients that hold a connection open by sending or reading too slowly. Node bounds the
 * request head itself (`headersTimeout`, set in app.ts); this watches what follows, on every route:
 *
 * - **Request bodies.** While the server waits for body bytes, at least `minBytes` must arrive in
 *   every window of `windowMs`; otherwise the connection is destroyed. A window in which the server
 *   is not reading (bytes already received wait in the request stream, because the handler is busy
 *   or storage applies backpressure) does not count against the client.
 * - **Responses.** While a response waits for the client to read (its buffer is full), at least
 *   `minBytes` must leave in every window; otherwise the connection is destroyed.
 *
 * Progress is read from the socket's byte counters, never by listening to the request stream (a
 * `data` listener would switch it to flowing mode under the handler's feet). Written by hand: Node's
 * own timeouts are either whole-request (`requestTimeout`, which large layers over slow links must
 * not hit) or socket idleness (which a byte a minute keeps alive, and which also fires while the
 * server itself is busy, say assembling a large blob on S3).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { announcesBody } from './request.js';

export interface RateBound {
  windowMs: number;
  minBytes: number;
}

export interface SlowClientLimits {
  body: RateBound;
  response: RateBound;
}

/** Watches one request/response pair until both are done; see the module comment. */
export function guardSlowClient(req: IncomingMessage, res: ServerResponse, limits: SlowClientLimits, logger: Logger): void {
  const socket = req.socket;
  const timers: NodeJS.Timeout[] = [];
  const cut = (what: string) => {
    logger.info({ method: req.method, url: req.url?.slice(0, 200), what }, 'disconnected a client that was too slow');
    for (const timer of timers) clearInterval(timer);
    socket.destroy();
  };

  // The body is watched until it has all arrived, even after the response (Node then reads and
  // discards the rest of it on the same connection).
  if (announcesBody(req)) {
    let seen = socket.bytesRead;
    const timer = setInterval(() => {
      if (req.complete || socket.destroyed) return clearInterval(timer);
      const now = socket.bytesRead;
      const arrived = now - seen;
      seen = now;
      // Bytes wait unread: the server is the one not reading, the window is not the client's.
      if (req.readableLength > 0) return;
      if (arrived < limits.body.minBytes) cut(`request body: ${arrived} bytes in ${limits.body.windowMs} ms`);
    }, limits.body.windowMs);
    timer.unref();
    timers.push(timer);
    const stop = () => clearInterval(timer);
    req.once('end', stop);
    req.once('close', stop);
  }

  let sent = socket.bytesWritten;
  const responseTimer = setInterval(() => {
    const now = socket.bytesWritten;
    const taken = now - sent;
    sent = now;
    if (res.writableNeedDrain && taken < limits.response.minBytes) cut(`response: ${taken} bytes read in ${limits.response.windowMs} ms`);
  }, limits.response.windowMs);
  responseTimer.unref();
  timers.push(responseTimer);
  res.once('close', () => clearInterval(responseTimer));
}
