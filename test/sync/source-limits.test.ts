import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { ServerProcess } from '../support/berth-process.js';
import { startReferenceRegistry } from '../support/reference-registry.js';
import type { TestServer } from '../support/server.js';
import { Api, buildMultiArchImage, headDigest, imageStatus, pullToken, pushImage, startBerth, waitFor, type BuiltImage } from './helpers.js';

/**
 * A loopback proxy in front of a real registry that can answer for it: 429 + Retry-After, or a
 * failure for chosen paths. It records every request it sees, with the time it arrived.
 */
class MeddlingProxy {
  readonly seen: Array<{ at: number; method: string; path: string; answered: number }> = [];
  /** Decides an answer of its own for a request, or undefined to forward it. */
  meddle: (req: IncomingMessage) => { status: number; headers?: Record<string, string> } | undefined = () => undefined;
  private server: Server | undefined;

  constructor(private readonly upstream: string) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((ok) => this.server?.listen(0, '127.0.0.1', ok));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((ok) => {
      this.server?.close(() => ok());
      this.server?.closeAllConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const own = this.meddle(req);
    this.seen.push({ at: Date.now(), method: req.method ?? '', path: req.url ?? '', answered: own?.status ?? 0 });
    if (own) {
      req.resume();
      res.writeHead(own.status, { 'Content-Length': '0', ...own.headers });
      res.end();
      return;
    }
    const target = new URL(req.url ?? '/', this.upstream);
    const forward = httpRequest(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (upstream) => {
      res.writeHead(upstream.statusCode ?? 502, upstream.headers);
      upstream.pipe(res);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  }
}

describe('per-source limits: 429 + Retry-After, and per-image errors', () => {
  let distribution: ServerProcess;
  let proxy: MeddlingProxy;
  let proxyUrl = '';
  let customer: TestServer;
  let api: Api;
  let image: BuiltImage;
  /** Another image, so its blobs are not already in the customer's store (they would be linked, not fetched). */
  let other: BuiltImage;

  before(async () => {
    [distribution, customer] = await Promise.all([startReferenceRegistry(), startBerth()]);
    proxy = new MeddlingProxy(distribution.url);
    proxyUrl = await proxy.start();
    api = await Api.asOwner(customer.url);
    [image, other] = await Promise.all([buildMultiArchImage('limits'), buildMultiArchImage('limits-other')]);
    await pushImage(distribution.url, undefined, 'vendor/app', '1.0', image.dir, image.index.index);
  });

  after(async () => {
    await Promise.all([customer?.stop(), proxy?.stop()]);
    await distribution?.stop();
    await Promise.all([image?.dispose(), other?.dispose()]);
  });

  it("honours the source's 429 + Retry-After: no request reaches the source before the pause is over", async () => {
    let throttled = false;
    proxy.meddle = (req) => {
      if (!throttled && req.url?.startsWith('/v2/vendor/app/manifests/')) {
        throttled = true;
        return { status: 429, headers: { 'Retry-After': '1' } };
      }
      return undefined;
    };
    const created = await api.post('/sync/rules', {
      name: 'throttled',
      source: { url: proxyUrl },
      repositories: ['vendor/app'], // no wildcard: the catalog is not needed
      triggers: { pollIntervalMs: 60_000 },
      limits: { requestsPerSecond: 50, concurrency: 2 },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(created.body.rule.limits, { requestsPerSecond: 50, concurrency: 2 });

    const token = await pullToken(customer.url, 'vendor/app');
    assert.equal(await waitFor('the image', () => headDigest(customer.url, token, 'vendor/app', '1.0')), image.index.index.digest);

    const refusals = proxy.seen.filter((r) => r.answered === 429);
    assert.equal(refusals.length, 1);
    const pausedAt = refusals[0]?.at as number;
    const next = proxy.seen.find((r) => r.at > pausedAt);
    assert.ok(next, 'the source was asked again after the pause');
    // A lower bound only: the client may wait longer on a busy machine, never less (1 s, minus timer granularity).
    assert.ok(next.at - pausedAt >= 950, `the next request came ${next.at - pausedAt} ms after the 429`);
    const row = (await imageStatus(api, 'throttled')).get('vendor/app:1.0');
    assert.equal(row.copies, 1);
    assert.equal(row.lastError, null);
  });

  it("records a failing image in its status and the rule's, retries it, and clears the error once it syncs", async () => {
    const layer = other.index.images[1]?.layers[0]?.digest as string;
    let broken = true;
    proxy.meddle = (req) => (broken && req.url === `/v2/vendor/other/blobs/${layer}` ? { status: 404 } : undefined);
    await pushImage(distribution.url, undefined, 'vendor/other', '1.0', other.dir, other.index.index);
    await pushImage(distribution.url, undefined, 'vendor/other', '1.1', other.dir, other.index.index);
    const created = await api.post('/sync/rules', {
      name: 'failing',
      source: { url: proxyUrl },
      repositories: ['vendor/other'],
      destinationPrefix: 'failing',
      triggers: { pollIntervalMs: 300 },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));

    // The image's status and the rule's are two writes: wait for both.
    const failed = await waitFor('the error in the image status and the rule', async () => {
      const rows = await imageStatus(api, 'failing');
      const ruleState = (await api.get('/sync/rules/failing')).body.state;
      return rows.get('vendor/other:1.0')?.lastError && ruleState.lastError ? rows : undefined;
    });
    const row = failed.get('vendor/other:1.0');
    assert.match(row.lastError, new RegExp(`blob ${layer} of .* does not exist on the source`));
    assert.ok(row.lastErrorAt);
    assert.equal(row.copies, 0);
    assert.equal(row.digest, null);
    assert.equal(row.sourceDigest, other.index.index.digest);
    const rule = (await api.get('/sync/rules/failing')).body;
    assert.match(rule.state.lastError, /vendor\/other:1\.\d: blob/);
    assert.ok(rule.state.lastErrorAt);
    const token = await pullToken(customer.url, 'failing/vendor/other');
    assert.equal(await headDigest(customer.url, token, 'failing/vendor/other', '1.0'), undefined, 'nothing half-copied is tagged');

    broken = false;
    const healed = await waitFor('the image to sync after the source recovers', async () => {
      const rows = await imageStatus(api, 'failing');
      const a = rows.get('vendor/other:1.0');
      const b = rows.get('vendor/other:1.1');
      return a?.copies === 1 && b?.copies === 1 && a.lastError === null && b.lastError === null ? rows : undefined;
    });
    assert.equal(healed.get('vendor/other:1.0').digest, other.index.index.digest);
    assert.equal(await headDigest(customer.url, token, 'failing/vendor/other', '1.0'), other.index.index.digest);
    // The rule's error stays while an image fails (reconciles meanwhile were clean but found work
    // pending), and goes with the first reconcile that finds every image here.
    await waitFor("the rule's error to clear", async () => ((await api.get('/sync/rules/failing')).body.state.lastError === null ? true : undefined));
  });
});
