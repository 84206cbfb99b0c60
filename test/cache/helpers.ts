/**
 * What the pull-through cache tests share: a Berth with cache rules (loopback egress allowed, a
 * clock the test moves), an upstream CNCF Distribution with its access log (to count what the
 * cache asked the upstream), images pushed there over the registry API, and raw registry GETs.
 */
import { urls } from '../../src/api/urls.js';
import type { ConfigInput } from '../../src/config/schema.js';
import type { Clock } from '../../src/shared/clock.js';
import { manifestAccept } from '../../src/remote/client.js';
import { pushImage, type TestImage } from '../import/fixtures.js';
import { startReferenceRegistry, type LoggedRequest, type ReferenceRegistry, type ReferenceRegistryOptions } from '../support/reference-registry.js';
import { startTestServer, type TestServer } from '../support/server.js';

/** Loopback is private: the cache tests allow it explicitly. */
export const loopbackEgress = { allowPrivateNetworks: false, allow: ['127.0.0.1/32', '::1/128'] };

/** Time the test moves (freshness windows, stale limits); starts at the real time. */
export class ManualClock implements Clock {
  private at = Date.now();
  now(): number {
    return this.at;
  }
  advance(ms: number): void {
    this.at += ms;
  }
}

export type RuleConfig = NonNullable<NonNullable<ConfigInput['cache']>['rules']>[number];

export interface CacheServerOptions {
  rules: RuleConfig[];
  auth?: boolean;
  clock?: Clock;
  cache?: Omit<NonNullable<ConfigInput['cache']>, 'rules'>;
  config?: ConfigInput;
}

/** A Berth with `rules` in its configuration file. */
export function startCacheServer(options: CacheServerOptions): Promise<TestServer> {
  return startTestServer({
    auth: options.auth ?? false,
    ...(options.clock ? { clock: options.clock } : {}),
    config: { egress: loopbackEgress, cache: { ...options.cache, rules: options.rules }, ...options.config },
  });
}

/** CNCF Distribution with its access log on. */
export function startUpstream(options: ReferenceRegistryOptions = {}): Promise<ReferenceRegistry> {
  return startReferenceRegistry({ ...options, accessLog: true });
}

/** Pushes `image` to `registry` as `repository:tag`. */
export function publish(registry: { url: string }, repository: string, tag: string, image: TestImage, authorization?: string): Promise<void> {
  return pushImage(registry.url, repository, tag, image, authorization);
}

export interface Fetched {
  status: number;
  headers: Headers;
  body: Buffer;
}

/** GET (or HEAD) of a registry path with the manifest Accept header. */
export async function registryGet(base: string, path: string, init: { method?: string; headers?: Record<string, string> } = {}): Promise<Fetched> {
  const res = await fetch(`${base}${path}`, { method: init.method ?? 'GET', headers: { accept: manifestAccept, ...init.headers } });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

export function manifestPath(repository: string, reference: string): string {
  return urls.manifest(repository, reference);
}

/** The state word of a `Berth-Cache` header (`hit`, `miss`, `stale`), or undefined. */
export function cacheState(headers: Headers): string | undefined {
  return headers.get('berth-cache')?.split(';')[0]?.trim();
}

/** How many requests the upstream served for `method path` (query excluded). */
export function served(upstream: { requests(): LoggedRequest[] }, method: string, path: string): number {
  return upstream.requests().filter((r) => r.method === method && r.path === path).length;
}

/** Multi-arch images as OCI layouts (real gzipped tar layers, so skopeo and podman copy them byte for byte), pushed over the registry API. */
export { buildMultiArchImage, pushImage as pushLayout, type BuiltImage } from '../sync/helpers.js';

/** Every blob (configs and layers) of a built multi-arch image. */
export function blobsOf(image: { index: { images: Array<{ config: { digest: string }; layers: Array<{ digest: string }> }> } }): string[] {
  return [...new Set(image.index.images.flatMap((i) => [i.config.digest, ...i.layers.map((l) => l.digest)]))];
}
