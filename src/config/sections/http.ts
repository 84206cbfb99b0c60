import { isIP } from 'node:net';
import { z } from 'zod';
import { duration } from '../fields.js';

/** `address` or `address/prefix` (IPv4 or IPv6). */
function isAddressOrRange(value: string): boolean {
  const slash = value.indexOf('/');
  if (slash === -1) return isIP(value) !== 0;
  const family = isIP(value.slice(0, slash));
  const prefix = value.slice(slash + 1);
  return family !== 0 && /^[0-9]{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

/**
 * The HTTP server's bounds on clients: how long a client may take to send a request head or a
 * body, or to read a response, and whose `X-Forwarded-For` is believed.
 */
export const httpSection = () =>
  z
    .object({
      trustedProxies: z
        .array(z.string().refine(isAddressOrRange, 'expected an IP address or a CIDR range such as 10.0.0.0/8'))
        .default([])
        .describe(
          "Reverse proxies (IP addresses or CIDR ranges) whose `X-Forwarded-For` header is believed. The client address (login throttling, the audit log) is the connection's peer; when the peer is one of these, it is the rightmost `X-Forwarded-For` entry that is not itself a trusted proxy. Empty (the default): `X-Forwarded-For` is ignored, so a client cannot choose its own address.",
        ),
      headersTimeoutMs: duration(
        'The whole request head (request line and headers) must arrive within this from the connection or the previous request; a client that trickles it, or connects and sends nothing, gets 408 and is disconnected.',
        30_000,
      ),
      keepAliveTimeoutMs: duration('An idle kept-alive connection is closed after this.', 65_000),
      body: z
        .object({
          windowMs: duration(
            'While the server waits for a request body (a blob, a manifest, a form), at least `minBytes` of it must arrive in every window of this length; a client that sends less (stalls, or trickles a byte at a time) is disconnected. Time the server itself spends not reading (writing to slow storage) does not count against the client.',
            60_000,
          ),
          minBytes: z
            .number()
            .int()
            .positive()
            .default(16 * 1024)
            .describe('Bytes of a request body that must arrive per `windowMs` (the default, 16 KiB a minute, is far below any working link).'),
        })
        .default({})
        .describe('Request bodies: an inactivity and minimum-rate bound, on every route (blob uploads included).'),
      response: z
        .object({
          windowMs: duration(
            'While a response waits for the client to read (its send buffer is full), at least `minBytes` must be taken in every window of this length; a client that reads less (a blob pull that stopped, or trickles) is disconnected.',
            60_000,
          ),
          minBytes: z
            .number()
            .int()
            .positive()
            .default(16 * 1024)
            .describe('Bytes of a response the client must read per `windowMs` while the server waits for it.'),
        })
        .default({})
        .describe('Responses: the same bound on a client that stops reading (blob downloads included).'),
    })
    .default({})
    .describe('Bounds on slow or silent clients, and which proxies are trusted to name the client address.');
