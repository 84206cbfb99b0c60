/**
 * Real parts for the webhook tests: an HTTP receiver on a loopback port that records every
 * delivery (and can be down, failing or slow), a Berth with loopback egress allowed and quick
 * retries, and small clients to push and delete images with a bearer token.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { urls } from '../../src/api/urls.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { ownerName, ownerPassword, startTestServer, type TestServer, type TestServerOptions } from '../support/server.js';
import { bearer, tokenFor } from '../auth/helpers.js';

export const loopbackEgress = { allow: ['127.0.0.1/32', '::1/128'] };

/** Quick retries for tests; timeouts are bounds on a broken run, never assertions on speed. */
export const quickWebhooks = {
  pollIntervalMs: 200,
  timeoutMs: 3000,
  maxAttempts: 20,
  backoff: { baseMs: 20, maxMs: 200 },
} satisfies ConfigInput['webhooks'];

export async function startWebhookServer(
  options: TestServerOptions & { webhooks?: ConfigInput['webhooks']; egress?: ConfigInput['egress'] } = {},
): Promise<TestServer> {
  const { webhooks, egress, config, ...rest } = options;
  return startTestServer({
    auth: true,
    ...rest,
    config: { ...config, egress: egress ?? loopbackEgress, webhooks: { ...quickWebhooks, ...webhooks } },
  });
}

export interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body, exactly as received (what the signature covers). */
  body: string;
  json: any;
}

export type ReceiverMode =
  { kind: 'ok' } | { kind: 'status'; status: number; body?: string } | { kind: 'hang' } | { kind: 'redirect'; location: string; status?: number };

/** A webhook receiver on 127.0.0.1: records every request and answers as `mode` says. */
export class Receiver {
  readonly received: Received[] = [];
  mode: ReceiverMode = { kind: 'ok' };
  private server: Server | undefined;
  private readonly hanging = new Set<() => void>();
  port = 0;

  static async start(port = 0): Promise<Receiver> {
    const receiver = new Receiver();
    await receiver.listen(port);
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async listen(port = this.port): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        this.received.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, json });
        const mode = this.mode;
        if (mode.kind === 'hang') {
          this.hanging.add(() => res.end());
          return;
        }
        if (mode.kind === 'redirect') {
          res.writeHead(mode.status ?? 307, { Location: mode.location }).end();
          return;
        }
        if (mode.kind === 'status') {
          res.writeHead(mode.status, { 'Content-Type': 'text/plain' }).end(mode.body ?? `status ${mode.status}`);
          return;
        }
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Stops listening (connections are refused) until `listen()` again on the same port. */
  async close(): Promise<void> {
    for (const release of this.hanging) release();
    this.hanging.clear();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  /** Answers every request held by the `hang` mode. */
  releaseHanging(): void {
    for (const release of this.hanging) release();
    this.hanging.clear();
  }

  /** Deliveries of events (by `Berth-Event-Id`), in arrival order. */
  eventIds(): string[] {
    return this.received.map((r) => String(r.headers['berth-event-id']));
  }
}

export { waitFor } from '../support/wait.js';

// ---------------------------------------------------------------------------------------------
// Pushing and deleting over the real registry API.

export const ociManifestType = 'application/vnd.oci.image.manifest.v1+json';

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** An access token for `scopes` as the bootstrapped owner. */
export async function ownerToken(base: string, scopes: string[]): Promise<string> {
  return String((await tokenFor(base, ownerName, ownerPassword, scopes))['token']);
}

export async function pushBlob(base: string, token: string, repository: string, data: Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha256(data);
  const res = await fetch(`${base}${urls.uploads(repository, { digest })}`, {
    method: 'POST',
    headers: { ...bearer(token), 'Content-Type': 'application/octet-stream' },
    body: data,
  });
  assert.equal(res.status, 201, await res.text());
  return { digest, size: data.length };
}

export interface Pushed {
  digest: string;
  size: number;
  mediaType: string;
}

/** Pushes a small random OCI image to `repository` under `reference` (a tag or its digest). */
export async function pushImage(base: string, repository: string, reference?: string, headers: Record<string, string> = {}): Promise<Pushed> {
  const token = await ownerToken(base, [`repository:${repository}:pull,push`]);
  const config = await pushBlob(
    base,
    token,
    repository,
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') })),
  );
  const layer = await pushBlob(base, token, repository, randomBytes(64));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: ociManifestType,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
    }),
  );
  const digest = sha256(manifest);
  const res = await fetch(`${base}${urls.manifest(repository, reference ?? digest)}`, {
    method: 'PUT',
    headers: { ...bearer(token), 'Content-Type': ociManifestType, ...headers },
    body: manifest,
  });
  assert.equal(res.status, 201, await res.text());
  return { digest, size: manifest.length, mediaType: ociManifestType };
}

export async function deleteManifest(base: string, repository: string, reference: string): Promise<void> {
  const token = await ownerToken(base, [`repository:${repository}:delete`]);
  const res = await fetch(`${base}${urls.manifest(repository, reference)}`, { method: 'DELETE', headers: bearer(token) });
  assert.equal(res.status, 202, await res.text());
}
