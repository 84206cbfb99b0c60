/**
 * Keeps the latest request's objects reachable until the next request arrives.
 *
 * Why: V8's optimised code for the request path is specialised on the hidden classes ("maps") of
 * the objects it handles (the request, the response, their socket and stream states) and holds
 * them weakly. A full collection at a moment with no request in flight (the quiet-time collection,
 * shared/idle-collection.ts, or V8's memory reducer) finds no object of those classes alive, frees
 * them, and throws the code away; the next burst compiles it again. One request's objects keep
 * their classes, and the chain each was reached through, alive. Measured (scratch, one Berth,
 * six runs of 1,000 64 KiB pushes with 4 s of quiet before every other one, `--trace-deopt`, two
 * rounds each): 219 functions deoptimised as "weak objects" without this, 67–68 with it (the rest:
 * code on objects that `stream.pipeline` creates inside an upload, and on the request's observer);
 * the runs after quiet made 581–639 blobs/s without it, 732–869 with it, against 797–1,236 for the
 * runs without a pause. A bare Node HTTP server: 210 and 43 (docs/operations.md, "Memory").
 *
 * Cost: one finished request's objects (a few KiB: headers, stream states, the socket wrapper)
 * until the next request replaces them, and whatever they still reference: of a request abandoned
 * before its body was read, at most a stream's high-water mark of it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export class LatestRequest {
  private req: IncomingMessage | undefined;
  private res: ServerResponse | undefined;

  /** Keeps `req` and `res` in place of the request kept before. */
  keep(req: IncomingMessage, res: ServerResponse): void {
    this.req = req;
    this.res = res;
  }

  /** The request and response kept (tests look). */
  get kept(): { req: IncomingMessage; res: ServerResponse } | undefined {
    return this.req && this.res && { req: this.req, res: this.res };
  }
}
