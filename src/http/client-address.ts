/**
 * Which address a request comes from, for login throttling and the audit log. Rule: the
 * connection's peer address, unless the peer is a configured trusted proxy; then the rightmost
 * `X-Forwarded-For` entry that is not itself a trusted proxy (each proxy appends the address it
 * saw, so entries left of the first untrusted one were written by the client and prove nothing).
 * Without trusted proxies `X-Forwarded-For` is ignored: a client cannot pick its own address and
 * so its own throttling bucket. IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) read as IPv4.
 */
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';

export type ClientAddressOf = (req: IncomingMessage) => string;

/** Builds the resolver for `trustedProxies` (addresses or CIDR ranges, validated by the config schema). */
export function clientAddressResolver(trustedProxies: readonly string[]): ClientAddressOf {
  if (trustedProxies.length === 0) return (req) => normalize(req.socket.remoteAddress) ?? 'unknown';
  const trusted = new BlockList();
  for (const entry of trustedProxies) {
    const [address = '', prefix] = entry.split('/');
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) trusted.addAddress(address, family);
    else trusted.addSubnet(address, Number(prefix), family);
  }
  const isTrusted = (address: string) => trusted.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
  return (req) => {
    const peer = normalize(req.socket.remoteAddress);
    if (peer === undefined) return 'unknown';
    if (!isTrusted(peer)) return peer;
    const forwarded = forwardedFor(req);
    // Walk from the proxy nearest to us towards the client; stop at the first hop not trusted.
    let client = peer;
    for (let i = forwarded.length - 1; i >= 0; i--) {
      const hop = normalize(forwarded[i]);
      if (hop === undefined) break; // garbage: the last well-formed hop is the best we know
      client = hop;
      if (!isTrusted(hop)) break;
    }
    return client;
  };
}

/** Longest `X-Forwarded-For` read (all headers of that name, joined); longer ones are cut from the left. */
const maxForwardedLength = 4096;

function forwardedFor(req: IncomingMessage): string[] {
  const raw = req.headers['x-forwarded-for'];
  const joined = Array.isArray(raw) ? raw.join(',') : (raw ?? '');
  return joined
    .slice(-maxForwardedLength)
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
}

/** A bare IP address (IPv4-mapped IPv6 as IPv4), or undefined if `value` is not one. */
function normalize(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(value);
  const address = mapped ? (mapped[1] as string) : value;
  return isIP(address) === 0 ? undefined : address;
}
