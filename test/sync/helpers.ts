/**
 * What the sync tests share: Berth instances configured for loopback sync, images built as OCI
 * layouts and pushed over the registry API, signed deliveries, and bounded polling waits.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { urls } from '../../src/api/urls.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { manifestAccept } from '../../src/remote/client.js';
import { signDelivery } from '../../src/shared/webhook-signature.js';
import { bearer, tokenFor } from '../auth/helpers.js';
import { Api } from '../admin/helpers.js';
import { initLayout, readBlob, writeImage, writeIndex, type Descriptor, type IndexFixture } from '../support/oci-layout.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';

/** Loopback is private: the sync tests allow it explicitly (one test shows it refused without). */
export const loopbackEgress = { allowPrivateNetworks: false, allow: ['127.0.0.1/32', '::1/128'] };

/** Short intervals so background work shows up quickly; never a timing assertion. */
export const fastSync: NonNullable<ConfigInput['sync']> = {
  workerIntervalMs: 100,
  minPollIntervalMs: 50,
  leaseMs: 10_000,
  retry: { initialDelayMs: 200, maxDelayMs: 1000, maxAttempts: 3 },
};

/**
 * A Berth with auth on (owner/owner-password-1), loopback egress allowed and fast sync loops;
 * `secrets` says where rules may reference files and variables (default: nowhere).
 */
export function startBerth(options: { egress?: boolean; sync?: ConfigInput['sync']; secrets?: ConfigInput['secrets'] } = {}): Promise<TestServer> {
  return startTestServer({
    auth: true,
    config: {
      ...(options.egress === false ? {} : { egress: loopbackEgress }),
      sync: { ...fastSync, ...options.sync },
      ...(options.secrets ? { secrets: options.secrets } : {}),
    },
  });
}

/** A multi-arch image (an OCI index over linux/amd64 and linux/arm64/v8) in a fresh OCI layout. */
export interface BuiltImage {
  dir: string;
  index: IndexFixture;
  /** The index's digest and each platform manifest's digest. */
  digests: string[];
  dispose(): Promise<void>;
}

export async function buildMultiArchImage(seed: string): Promise<BuiltImage> {
  const parent = await mkdtemp(join(tmpdir(), 'berth-sync-image-'));
  const dir = join(parent, 'layout');
  await initLayout(dir);
  const amd64 = await writeImage(dir, { architecture: 'amd64', os: 'linux' }, seed);
  const arm64 = await writeImage(dir, { architecture: 'arm64', os: 'linux', variant: 'v8' }, seed);
  const index = await writeIndex(dir, [amd64, arm64]);
  return {
    dir,
    index,
    digests: [index.index.digest, amd64.manifest.digest, arm64.manifest.digest],
    dispose: () => rm(parent, { recursive: true, force: true }),
  };
}

/** A pull+push access token for `repository` on a test Berth, as the owner. */
export async function pushToken(base: string, repository: string): Promise<string> {
  return String((await tokenFor(base, ownerName, ownerPassword, [`repository:${repository}:pull,push`]))['token']);
}

/**
 * Pushes an image (index or manifest) from an OCI layout over the registry API: blobs by
 * POST + PUT upload, platform manifests by digest, then the root by `tag`. `token` undefined
 * pushes anonymously (a registry without auth).
 */
export async function pushImage(base: string, token: string | undefined, repository: string, tag: string, dir: string, root: Descriptor): Promise<void> {
  const headers = token === undefined ? {} : bearer(token);
  const pushBlob = async (digest: string) => {
    const head = await fetch(`${base}${urls.blob(repository, digest)}`, { method: 'HEAD', headers });
    if (head.status === 200) return;
    // POST then PUT ?digest= (Distribution does not take the body on the POST).
    const started = await fetch(`${base}${urls.uploads(repository)}`, { method: 'POST', headers });
    assert.equal(started.status, 202, `start upload of ${digest}: ${await started.text()}`);
    const location = new URL(started.headers.get('location') ?? '', base);
    location.searchParams.set('digest', digest);
    const res = await fetch(location, {
      method: 'PUT',
      headers: { ...headers, 'Content-Type': 'application/octet-stream' },
      body: await readBlob(dir, digest),
    });
    assert.equal(res.status, 201, `push blob ${digest}: ${await res.text()}`);
  };
  const pushManifest = async (descriptor: Descriptor, reference: string) => {
    const bytes = await readBlob(dir, descriptor.digest);
    const doc = JSON.parse(bytes.toString('utf8')) as { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
    for (const child of doc.manifests ?? []) await pushManifest(child, child.digest);
    if (doc.config) await pushBlob(doc.config.digest);
    for (const layer of doc.layers ?? []) await pushBlob(layer.digest);
    const res = await fetch(`${base}${urls.manifest(repository, reference)}`, {
      method: 'PUT',
      headers: { ...headers, 'Content-Type': descriptor.mediaType },
      body: bytes,
    });
    assert.equal(res.status, 201, `push manifest ${repository}:${reference}: ${await res.text()}`);
  };
  await pushManifest(root, tag);
}

/** The digest a registry serves for repository:reference (HEAD with every manifest type accepted), or undefined on 404. */
export async function headDigest(base: string, token: string | undefined, repository: string, reference: string): Promise<string | undefined> {
  const res = await fetch(`${base}${urls.manifest(repository, reference)}`, {
    method: 'HEAD',
    headers: { ...(token === undefined ? {} : bearer(token)), Accept: manifestAccept },
  });
  if (res.status === 404) return undefined;
  assert.equal(res.status, 200, `HEAD ${repository}:${reference}`);
  return res.headers.get('docker-content-digest') ?? undefined;
}

/** A pull token for `repository` (customer-side checks). */
export async function pullToken(base: string, repository: string): Promise<string> {
  return String((await tokenFor(base, ownerName, ownerPassword, [`repository:${repository}:pull`]))['token']);
}

/** Polls `probe` until it returns a value that is not undefined; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** Sends a delivery to a rule's receiver, signed with `secret` (or with the given headers instead). */
export async function deliver(
  base: string,
  rule: string,
  body: unknown,
  auth: { secret: string; eventId?: string; at?: number } | { headers: Record<string, string> },
): Promise<{ status: number; headers: Headers; body: any }> {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if ('secret' in auth) {
    headers['Berth-Signature'] = signDelivery([auth.secret], text, auth.at ?? Date.now());
    if (auth.eventId) headers['Berth-Event-Id'] = auth.eventId;
    headers['Berth-Event'] = 'push';
  } else {
    Object.assign(headers, auth.headers);
  }
  const res = await fetch(`${base}${urls.api.syncWebhook(rule)}`, { method: 'POST', headers, body: text });
  const raw = await res.text();
  return { status: res.status, headers: res.headers, body: raw ? JSON.parse(raw) : undefined };
}

/** An ACR-shaped push event, as Berth's and ACR's webhooks send it. */
export function pushEvent(
  repository: string,
  tag: string | undefined,
  digest: string,
  id = `evt-${Math.random().toString(36).slice(2)}`,
): Record<string, unknown> {
  return {
    id,
    timestamp: new Date().toISOString(),
    action: 'push',
    target: { mediaType: 'application/vnd.oci.image.index.v1+json', size: 100, digest, length: 100, repository, ...(tag !== undefined ? { tag } : {}) },
    request: { id: 'r1', host: 'vendor.example', method: 'PUT', useragent: 'test' },
  };
}

/**
 * Waits until an on-demand run asked for at `requestedAt` (ISO) has been reconciled: the request
 * was taken, a reconcile started after it and finished, and the images it queued are done.
 */
export async function waitForRun(api: Api, rule: string, requestedAt: string): Promise<any> {
  return waitFor(`the on-demand run of ${rule}`, async () => {
    const status = (await api.get(`/sync/rules/${rule}/status`)).body;
    const state = status.rule.state;
    const finished =
      state.runRequestedAt === null &&
      state.lastReconcileStartedAt !== null &&
      state.lastReconcileStartedAt >= requestedAt &&
      state.lastReconcileAt !== null &&
      state.lastReconcileAt >= state.lastReconcileStartedAt &&
      !state.reconciling;
    return finished && status.queue.pending === 0 ? status : undefined;
  });
}

/** The customer's per-image status rows of a rule, keyed `repository:tag`. */
export async function imageStatus(api: Api, rule: string): Promise<Map<string, any>> {
  const res = await api.get(`/sync/rules/${rule}/status`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return new Map((res.body.images as any[]).map((image) => [`${image.repository}:${image.tag}`, image]));
}

export { Api };
