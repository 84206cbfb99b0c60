/**
 * The egress policy: every request Berth makes on a user's behalf (webhook deliveries, import and
 * sync sources) goes through `Egress.dispatcher`, so a push or a configured URL cannot be used to
 * reach the machine's own network (SSRF). By default only public unicast addresses are allowed;
 * private, loopback, link-local, unique-local, CGNAT, multicast, reserved and unspecified ranges
 * (IPv4-mapped IPv6 included) are refused unless the config allows them.
 *
 * The check runs when the socket is opened, on the address actually connected to: names are
 * resolved once and every resolved address must pass (a name that resolves to one public and one
 * private address is refused), so DNS rebinding between a check and the connect cannot slip
 * through, and neither can a redirect into a private range (each hop opens its own connection).
 * Range classification is ipaddr.js's; only the policy is ours.
 *
 * undici is loaded when the dispatcher is first used, not with this module: `berth serve` builds an
 * egress at start but most registries never send a webhook, import or sync, and undici alone is
 * about 2.5 MiB of heap and 40 ms of start-up. It is a CommonJS package, so `require` loads it
 * synchronously (the same instance `import 'undici'` gets elsewhere).
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import type * as Undici from 'undici';
import type { Dispatcher } from 'undici';

const requireModule = createRequire(import.meta.url);

export interface EgressPolicy {
  /** Allow every private/loopback/link-local destination (trusted networks, tests). */
  allowPrivateNetworks: boolean;
  /** Destinations allowed although private: CIDRs (`10.1.0.0/16`, `::1/128`), hosts (`registry.internal`) or `host:port`. */
  allow: readonly string[];
}

/** Thrown (also inside a request's error) when the policy refuses a destination. */
export class EgressRefused extends Error {
  readonly code = 'EGRESS_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'EgressRefused';
  }
}

export interface Egress {
  /** An undici dispatcher that opens connections only to allowed addresses; use it for every outbound request. */
  readonly dispatcher: Dispatcher;
  /**
   * Throws EgressRefused, with a message naming the refused range, if `url` is not http(s) or its
   * host resolves to an address the policy refuses. For configuration time (a webhook target, an
   * import or sync source), so a bad URL is refused with a clear error when it is entered; the
   * dispatcher checks again at every connect.
   */
  check(url: string | URL): Promise<void>;
  /** Closes the dispatcher's pooled connections. */
  close(): Promise<void>;
}

interface CompiledPolicy {
  allowPrivate: boolean;
  cidrs: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]>;
  hosts: Set<string>;
}

export function compilePolicy(policy: EgressPolicy): CompiledPolicy {
  const cidrs: CompiledPolicy['cidrs'] = [];
  const hosts = new Set<string>();
  for (const entry of policy.allow) {
    const value = entry.trim().toLowerCase();
    if (value.includes('/')) {
      try {
        const [address, bits] = ipaddr.parseCIDR(value);
        cidrs.push([address, bits]);
      } catch {
        throw new Error(`egress.allow: ${JSON.stringify(entry)} is not a valid CIDR`);
      }
    } else if (isIP(value)) {
      const address = ipaddr.process(value);
      cidrs.push([address, address.kind() === 'ipv4' ? 32 : 128]);
    } else {
      hosts.add(value.replace(/^\[(.*)\]/, '$1'));
    }
  }
  return { allowPrivate: policy.allowPrivateNetworks, cidrs, hosts };
}

/** Why `address` is refused (e.g. "loopback"), or undefined when it is allowed. */
export function refusalReason(policy: CompiledPolicy, address: string): string | undefined {
  if (!ipaddr.isValid(address)) return 'not an IP address';
  const parsed = ipaddr.process(address);
  const range = parsed.range();
  if (range === 'unicast' || policy.allowPrivate) return undefined;
  for (const [network, bits] of policy.cidrs) {
    if (network.kind() === parsed.kind() && parsed.match(network, bits)) return undefined;
  }
  return range;
}

function hostAllowed(policy: CompiledPolicy, hostname: string, port: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return policy.hosts.has(host) || policy.hosts.has(`${host}:${port}`);
}

function refusal(host: string, address: string, reason: string): EgressRefused {
  const shown = host === address ? address : `${host} (${address})`;
  return new EgressRefused(
    `refusing to connect to ${shown}: ${reason} addresses are not allowed by the egress policy (allow it with egress.allow or egress.allowPrivateNetworks)`,
  );
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** TLS settings for every connection of one egress (a private CA bundle for a configured issuer). */
export interface EgressTls {
  ca?: string | undefined;
}

export function createEgress(policy: EgressPolicy, tls: EgressTls = {}): Egress {
  const compiled = compilePolicy(policy);

  // net.connect resolves names through this: every resolved address must pass.
  const guardedLookup = (hostname: string, options: LookupOptions, callback: LookupCallback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      for (const { address } of addresses) {
        const reason = refusalReason(compiled, address);
        if (reason) return callback(refusal(hostname, address, reason), '');
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`${hostname} has no addresses`), { code: 'ENOTFOUND' }), '');
      callback(null, first.address, first.family);
    });
  };
  const tlsOptions = tls.ca !== undefined ? { ca: tls.ca } : {};
  const build = (): Dispatcher => {
    const { Agent, buildConnector } = requireModule('undici') as typeof Undici;
    const open = buildConnector({ ...tlsOptions, lookup: guardedLookup as never });
    const openUnchecked = buildConnector(tlsOptions);
    const connect: Undici.buildConnector.connector = (options, callback) => {
      const host = options.hostname.replace(/^\[(.*)\]$/, '$1');
      if (hostAllowed(compiled, host, options.port)) return openUnchecked(options, callback);
      // IP literals never reach `lookup`: check them here.
      if (isIP(host)) {
        const reason = refusalReason(compiled, host);
        if (reason) return callback(refusal(host, host, reason), null);
      }
      open(options, callback);
    };
    return new Agent({ connect });
  };
  let dispatcher: Dispatcher | undefined;

  return {
    get dispatcher() {
      return (dispatcher ??= build());
    },
    async check(url) {
      let parsed: URL;
      try {
        parsed = typeof url === 'string' ? new URL(url) : url;
      } catch {
        throw new EgressRefused(`${JSON.stringify(String(url).slice(0, 200))} is not a valid URL`);
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new EgressRefused(`${parsed.protocol} URLs are not allowed: use http or https`);
      const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
      const port = parsed.port || (parsed.protocol === 'https:' ? '443' : '80');
      if (hostAllowed(compiled, host, port)) return;
      const addresses = isIP(host) ? [host] : await resolveAll(host);
      for (const address of addresses) {
        const reason = refusalReason(compiled, address);
        if (reason) throw refusal(host, address, reason);
      }
    },
    close: async () => {
      await dispatcher?.close();
    },
  };
}

async function resolveAll(host: string): Promise<string[]> {
  return new Promise((ok, fail) =>
    dnsLookup(host, { all: true }, (err, addresses) => {
      if (err) fail(new EgressRefused(`cannot resolve ${host}: ${err.code ?? err.message}`));
      else ok(addresses.map((a) => a.address));
    }),
  );
}
