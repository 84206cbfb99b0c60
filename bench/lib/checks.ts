/**
 * Untimed protocol checks run on each server before measuring (they also warm
 * up both servers alike). A failed check is reported with the exact exchange.
 */
import { imageJson, MT, randomBlobs } from './fixtures.js';
import { describeExchange, ProtocolError, pushBlob, putManifest, request } from './registry.js';
import { pushMany } from './scenarios.js';
import type { Server } from './servers.js';

export interface CheckFailure {
  server: string;
  check: string;
  message: string;
  exchange: string;
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

export async function runChecks(srv: Server): Promise<CheckFailure[]> {
  const failures: CheckFailure[] = [];
  const base = srv.url;
  const repo = 'bench/check';
  const attempt = async (check: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (e) {
      const exchange = e instanceof ProtocolError && e.exchange !== null ? describeExchange(e.exchange) : '';
      failures.push({ server: srv.label, check, message: e instanceof Error ? e.message : String(e), exchange });
    }
  };

  const [layer] = randomBlobs(1, 1024);
  if (layer === undefined) throw new Error('unreachable');
  const img = imageJson({ digest: layer.digest, size: layer.data.length }, 'check');

  await attempt('blob push (POST + PUT ?digest=)', async () => {
    await pushBlob(base, repo, layer.data, layer.digest);
    await pushBlob(base, repo, img.config.bytes, img.config.ref.digest);
  });
  await attempt('blob HEAD', async () => {
    const r = await request(`${base}/v2/${repo}/blobs/${layer.digest}`, { method: 'HEAD' });
    if (r.status !== 200) throw new ProtocolError(`expected 200, got ${r.status}`, r.exchange);
    if (header(r.headers, 'content-length') !== String(layer.data.length)) {
      throw new ProtocolError(`Content-Length ${String(header(r.headers, 'content-length'))} != ${layer.data.length}`, r.exchange);
    }
  });
  await attempt('blob GET', async () => {
    const r = await request(`${base}/v2/${repo}/blobs/${layer.digest}`, { method: 'GET' });
    if (r.status !== 200 || !r.body.equals(layer.data)) {
      throw new ProtocolError(`expected 200 and the pushed bytes, got ${r.status} with ${r.body.length} bytes`, r.exchange);
    }
  });
  await attempt('blob GET unknown digest → 404', async () => {
    const r = await request(`${base}/v2/${repo}/blobs/sha256:${'0'.repeat(64)}`, { method: 'GET' });
    if (r.status !== 404) throw new ProtocolError(`expected 404, got ${r.status}`, r.exchange);
  });
  await attempt('manifest PUT by tag', async () => {
    await putManifest(base, repo, 'v1', img.manifest.bytes, MT.manifest);
  });
  await attempt('manifest GET by tag', async () => {
    const r = await request(`${base}/v2/${repo}/manifests/v1`, { method: 'GET', headers: { accept: MT.manifest } });
    if (r.status !== 200) throw new ProtocolError(`expected 200, got ${r.status}`, r.exchange);
    if (!r.body.equals(img.manifest.bytes)) throw new ProtocolError('body differs from the pushed manifest', r.exchange);
    const ct = header(r.headers, 'content-type');
    if (ct !== MT.manifest) throw new ProtocolError(`Content-Type ${String(ct)} != ${MT.manifest}`, r.exchange);
    const dg = header(r.headers, 'docker-content-digest');
    if (dg !== img.manifest.ref.digest) throw new ProtocolError(`Docker-Content-Digest ${String(dg)} != ${img.manifest.ref.digest}`, r.exchange);
  });
  await attempt('manifest HEAD by tag', async () => {
    const r = await request(`${base}/v2/${repo}/manifests/v1`, { method: 'HEAD', headers: { accept: MT.manifest } });
    if (r.status !== 200) throw new ProtocolError(`expected 200, got ${r.status}`, r.exchange);
    if (header(r.headers, 'content-length') !== String(img.manifest.ref.size)) {
      throw new ProtocolError(`Content-Length ${String(header(r.headers, 'content-length'))} != ${img.manifest.ref.size}`, r.exchange);
    }
    if (header(r.headers, 'docker-content-digest') !== img.manifest.ref.digest) {
      throw new ProtocolError('Docker-Content-Digest missing or wrong', r.exchange);
    }
  });
  await attempt('manifest GET by digest', async () => {
    const r = await request(`${base}/v2/${repo}/manifests/${img.manifest.ref.digest}`, { method: 'GET', headers: { accept: MT.manifest } });
    if (r.status !== 200 || !r.body.equals(img.manifest.bytes)) throw new ProtocolError(`expected 200 and the pushed manifest, got ${r.status}`, r.exchange);
  });
  await attempt('warm-up: 64 small blobs, concurrency 8', async () => {
    await pushMany(base, 'bench/warmup', randomBlobs(64, 64 * 1024), 8, 60_000);
  });
  return failures;
}
