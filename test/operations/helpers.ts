/**
 * What the operability tests share: a Prometheus text-format reader (the real scrape is what the
 * tests look at), pushing and pulling a small image over the registry API, and a bounded wait.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { urls } from '../../src/api/urls.js';
import { bearer } from '../auth/helpers.js';

/** One scrape: every sample by `name{label="value",…}` (labels sorted), and the declared family names. */
export interface Scrape {
  samples: Map<string, number>;
  families: Set<string>;
  text: string;
}

export function parseScrape(text: string): Scrape {
  const samples = new Map<string, number>();
  const families = new Set<string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      families.add(line.split(' ')[2] ?? '');
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `a sample line: ${line}`);
    const labels = [...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => `${k}="${v}"`).sort();
    samples.set(`${match[1]}{${labels.join(',')}}`, Number(match[3]));
  }
  return { samples, families, text };
}

export async function scrape(url: string, token?: string): Promise<Scrape> {
  const res = await fetch(`${url}/metrics`, { headers: token ? bearer(token) : {} });
  assert.equal(res.status, 200, await res.clone().text());
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  return parseScrape(await res.text());
}

/** The value of a sample (0 when absent: a counter not yet moved). */
export function sample(scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  const key = `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',')}}`;
  return scrape.samples.get(key) ?? 0;
}

/** The sum of every sample of `name` whose labels include `labels`. */
export function total(scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const [key, value] of scrape.samples) {
    const brace = key.indexOf('{');
    if (key.slice(0, brace) !== name) continue;
    const have = key.slice(brace + 1, -1).split(',');
    if (wanted.every((w) => have.includes(w))) sum += value;
  }
  return sum;
}

const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** A one-layer OCI image pushed over the registry API (POST + PUT per blob, then the manifest by tag). */
export async function pushSmallImage(
  base: string,
  token: string | undefined,
  repository: string,
  tag: string,
  seed = tag,
): Promise<{ digest: string; layer: string }> {
  const headers = token ? bearer(token) : {};
  const layer = Buffer.from(`layer of ${repository}:${tag} (${seed})\n`.repeat(200));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] }, seed }));
  for (const blob of [layer, config]) {
    const started = await fetch(`${base}${urls.uploads(repository)}`, { method: 'POST', headers });
    assert.equal(started.status, 202, await started.text());
    const location = new URL(started.headers.get('location') ?? '', base);
    location.searchParams.set('digest', sha256(blob));
    const put = await fetch(location, { method: 'PUT', headers: { ...headers, 'Content-Type': 'application/octet-stream' }, body: blob });
    assert.equal(put.status, 201, await put.text());
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
    }),
  );
  const res = await fetch(`${base}${urls.manifest(repository, tag)}`, {
    method: 'PUT',
    headers: { ...headers, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  assert.equal(res.status, 201, await res.text());
  return { digest: sha256(manifest), layer: sha256(layer) };
}

/** Pulls the manifest by tag and its layer, checking the bytes arrive. */
export async function pullSmallImage(base: string, token: string | undefined, repository: string, tag: string): Promise<void> {
  const headers = token ? bearer(token) : {};
  const res = await fetch(`${base}${urls.manifest(repository, tag)}`, { headers: { ...headers, Accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(res.status, 200, await res.clone().text());
  const manifest = (await res.json()) as { layers: Array<{ digest: string; size: number }> };
  for (const layer of manifest.layers) {
    const blob = await fetch(`${base}${urls.blob(repository, layer.digest)}`, { headers });
    assert.equal(blob.status, 200);
    assert.equal((await blob.arrayBuffer()).byteLength, layer.size);
  }
}

/** Polls `check` until it returns something other than undefined/false; a bound on a broken run, never a timing assertion. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
