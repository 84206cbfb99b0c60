/**
 * Real parts for the lifecycle tests: a Berth with auth on (the management API needs it), lifecycle
 * settings that let a test see effects at once (no minimum age, quick last-pull flushes), a clock a
 * test can move (images "pushed a month ago"), and a small registry client that pushes and pulls
 * over the real API with the owner's (or any principal's) tokens.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { urls } from '../../src/api/urls.js';
import type { ConfigInput } from '../../src/config/schema.js';
import type { Clock } from '../../src/shared/clock.js';
import { Api } from '../admin/helpers.js';
import { bearer, tokenFor } from '../auth/helpers.js';
import { ownerName, ownerPassword, startTestServer, type TestServer, type TestServerOptions } from '../support/server.js';
import { waitFor } from '../support/wait.js';

export { Api, waitFor };

export const day = 86_400_000;

/** A clock the test moves; starts at the real time. */
export class ManualClock implements Clock {
  private offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
  /** Moves the clock by `ms` (negative: into the past, to push "old" images). */
  shift(ms: number): void {
    this.offset += ms;
  }
  reset(): void {
    this.offset = 0;
  }
}

export async function startLifecycleServer(options: TestServerOptions & { lifecycle?: ConfigInput['lifecycle'] } = {}): Promise<TestServer> {
  const { lifecycle, config, ...rest } = options;
  return startTestServer({
    auth: true,
    ...rest,
    config: {
      ...config,
      egress: { allow: ['127.0.0.1/32', '::1/128'] },
      webhooks: { pollIntervalMs: 100, timeoutMs: 3000, maxAttempts: 20, backoff: { baseMs: 20, maxMs: 200 } },
      lifecycle: {
        pollIntervalMs: 100,
        policyCacheMs: 50,
        ...lifecycle,
        retention: { minimumAgeMs: 0, ...lifecycle?.retention },
        lastPull: { flushIntervalMs: 50, ...lifecycle?.lastPull },
        usage: { refreshIntervalMs: 3_600_000, ...lifecycle?.usage },
      },
    },
  });
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export const ociManifestType = 'application/vnd.oci.image.manifest.v1+json';
export const ociIndexType = 'application/vnd.oci.image.index.v1+json';

export interface Image {
  digest: string;
  bytes: Buffer;
  size: number;
  blobs: Array<{ digest: string; size: number }>;
}

export interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

/** Pushes and pulls over the registry API as one principal (tokens per repository, cached). */
export class RegistryClient {
  private readonly tokens = new Map<string, { token: string; at: number }>();

  /** `clock`: the server's, when a test moves it (a token is valid only near the time it was issued). */
  constructor(
    readonly base: string,
    private readonly credentials: { user: string; password: string } = { user: ownerName, password: ownerPassword },
    private readonly clock: Clock = { now: () => Date.now() },
  ) {}

  async token(repository: string): Promise<string> {
    const cached = this.tokens.get(repository);
    if (cached && Math.abs(this.clock.now() - cached.at) < 60_000) return cached.token;
    const at = this.clock.now();
    const token = String((await tokenFor(this.base, this.credentials.user, this.credentials.password, [`repository:${repository}:pull,push,delete`]))['token']);
    this.tokens.set(repository, { token, at });
    return token;
  }

  async call(repository: string, method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Answer> {
    const res = await fetch(`${this.base}${path}`, { method, headers: { ...bearer(await this.token(repository)), ...headers }, ...(body ? { body } : {}) });
    const text = method === 'HEAD' ? '' : await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, headers: res.headers, body: parsed };
  }

  /** A monolithic blob upload (`POST ?digest=`). */
  async blob(repository: string, data: Buffer): Promise<Answer & { digest: string; size: number }> {
    const digest = sha256(data);
    const answer = await this.call(repository, 'POST', urls.uploads(repository, { digest }), data, { 'Content-Type': 'application/octet-stream' });
    return { ...answer, digest, size: data.length };
  }

  /** A session upload (POST, then PUT with the bytes): the path chunked clients take. */
  async sessionBlob(repository: string, data: Buffer): Promise<Answer & { digest: string; location: string }> {
    const digest = sha256(data);
    const started = await this.call(repository, 'POST', urls.uploads(repository));
    assert.equal(started.status, 202, JSON.stringify(started.body));
    const location = started.headers.get('location') ?? '';
    const answer = await this.call(repository, 'PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, data, {
      'Content-Type': 'application/octet-stream',
    });
    return { ...answer, digest, location };
  }

  /** Builds an image over fresh blobs (uploaded now) without pushing its manifest. */
  async prepare(
    repository: string,
    options: { layers?: number[]; subject?: { digest: string; size: number; mediaType: string }; artifactType?: string } = {},
  ): Promise<Image> {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }));
    const blobs = [];
    for (const data of [config, ...(options.layers ?? [64]).map((size) => randomBytes(size))]) {
      const pushed = await this.blob(repository, data);
      assert.equal(pushed.status, 201, JSON.stringify(pushed.body));
      blobs.push({ digest: pushed.digest, size: pushed.size });
    }
    const [configBlob, ...layers] = blobs as [{ digest: string; size: number }, ...Array<{ digest: string; size: number }>];
    const document: Record<string, unknown> = {
      schemaVersion: 2,
      mediaType: ociManifestType,
      ...(options.artifactType ? { artifactType: options.artifactType } : {}),
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configBlob },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l })),
      ...(options.subject ? { subject: options.subject } : {}),
    };
    const bytes = Buffer.from(JSON.stringify(document));
    return { digest: sha256(bytes), bytes, size: bytes.length, blobs };
  }

  async putManifest(repository: string, reference: string, bytes: Buffer, options: { tags?: string[]; mediaType?: string } = {}): Promise<Answer> {
    return this.call(repository, 'PUT', urls.manifest(repository, reference, options.tags), bytes, { 'Content-Type': options.mediaType ?? ociManifestType });
  }

  /** Prepares and pushes an image; asserts 201. */
  async image(repository: string, reference?: string, options: Parameters<RegistryClient['prepare']>[1] & { tags?: string[] } = {}): Promise<Image> {
    const image = await this.prepare(repository, options);
    const answer = await this.putManifest(repository, reference ?? image.digest, image.bytes, options);
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    return image;
  }

  /** An index over `children` (already pushed), pushed under `reference`. */
  async index(repository: string, reference: string, children: Image[]): Promise<Image> {
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: ociIndexType,
        manifests: children.map((c, i) => ({
          mediaType: ociManifestType,
          digest: c.digest,
          size: c.size,
          platform: { os: 'linux', architecture: `arch${i}` },
        })),
      }),
    );
    const answer = await this.putManifest(repository, reference, bytes, { mediaType: ociIndexType });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    return { digest: sha256(bytes), bytes, size: bytes.length, blobs: [] };
  }

  get(repository: string, reference: string): Promise<Answer> {
    return this.call(repository, 'GET', urls.manifest(repository, reference), undefined, { Accept: `${ociManifestType}, ${ociIndexType}` });
  }

  async tags(repository: string): Promise<string[]> {
    const answer = await this.call(repository, 'GET', urls.tags(repository));
    return answer.status === 200 ? ((answer.body as { tags: string[] | null }).tags ?? []) : [];
  }

  headBlob(repository: string, digest: string): Promise<Answer> {
    return this.call(repository, 'HEAD', urls.blob(repository, digest));
  }
}

/** Waits for a lifecycle run to finish; returns its detail (run and every action). */
export async function finishedRun(api: Api, id: string): Promise<{ run: any; actions: any[] }> {
  return waitFor(`lifecycle run ${id}`, async () => {
    const res = await api.get(`/lifecycle/runs/${id}?limit=10000`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.run.status === 'succeeded' || res.body.run.status === 'failed' ? res.body : undefined;
  });
}
