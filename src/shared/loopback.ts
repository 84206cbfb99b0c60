/**
 * "Is this the local machine?": the one rule that decides when credentials may travel over plain
 * HTTP (a registry, an OIDC issuer or a token endpoint on loopback) and when `berth serve` warns
 * about plain HTTP. Loopback is `localhost`, 127.0.0.0/8 and `::1`; nothing else, in particular no
 * name that merely resolves to a loopback address.
 */

/** A hostname as `URL.hostname` gives it (IPv6 in brackets), without a port. */
export function isLoopbackHostname(hostname: string): boolean {
  const name = hostname.toLowerCase();
  return name === 'localhost' || name === '[::1]' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** `host[:port]` as it appears in an image reference, a URL's `host` or a listen address. */
export function isLoopbackHost(host: string): boolean {
  return isLoopbackHostname(hostOnly(host));
}

export function isLoopbackUrl(url: URL): boolean {
  return isLoopbackHostname(url.hostname);
}

/** `host[:port]` -> host (`[::1]:5000` -> `[::1]`, `::1` stays `::1`). */
function hostOnly(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? host : host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  return colon === -1 || host.indexOf(':', colon + 1) !== -1 ? host : host.slice(0, colon);
}
